#!/usr/bin/env bash
# Every test of the project, in the order a failure is cheapest to read.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests run besides cargo (Kamailio, kill, the C compiler): installed when
# missing, so that they fail only on a real fault, never on a bare machine.
bash scripts/deps.sh

# The shipped code: unit tests, scenarios, property tests, runtime tests, doc tests.
cargo test --workspace

# Proof that the property tests bite: the same properties with each planted bug.
cargo test --features planted-bugs --test core_properties
cargo test --features planted-bugs --test locate_properties

# The model checker at release speed: the default-bounds exhaustive check, the pinned state
# counts, and the planted-bug suite (each bug must be caught, by the expected property).
cargo test --profile modelcheck -p sip-ptls-models --features planted-bugs

# The core alone builds without the runtime and pulls in none of its crates.
cargo build --no-default-features --lib
if cargo tree --no-default-features -e normal | grep -E '^[^a-z]*(smol|async-io|async-net|rustls|futures-rustls) v'; then
    echo "the core depends on a runtime crate" >&2
    exit 1
fi
