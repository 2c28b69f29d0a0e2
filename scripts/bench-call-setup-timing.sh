#!/usr/bin/env bash
# The call-setup scenario built with the `timing` feature (where the phone's own time goes),
# for the kept run (scripts/bench-run.sh): its figures are renamed `call_setup_timing/…`
# so that they stand beside the plain build's `call_setup/…` figures of the same run
# instead of replacing them (the table generator keeps the last value of a name).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench e2e --features timing -- call_setup 2>&1 | sed -u 's,^call_setup/,call_setup_timing/,'
