#!/usr/bin/env bash
# The peer, beside us, in the same run (issue 14; docs/benchmarks.md, "7. The peer"):
# baresip and sip-ptls, one after the other, against the same pair of Kamailio TLS
# registrars, every figure for both with the ratio.
#
#   bash scripts/peer-bench.sh            # run what is not run yet at this commit, print the table
#   bash scripts/peer-bench.sh --fresh    # forget this commit's results and run everything again
#
# Each scenario (client x setup/kill/freeze) keeps its figures in target/peer-<commit>/, so
# a run cut short resumes where it stopped. The raw output is appended to
# docs/bench-runs/peer-<commit>.txt, <commit> being HEAD's short hash. About 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
commit=$(git rev-parse --short HEAD)
out=target/peer-$commit
raw=docs/bench-runs/peer-$commit.txt
if [ "${1:-}" = --fresh ]; then
    rm -rf "$out" "$raw"
fi
nice -n 10 cargo build --release --bin sip-ptls
nice -n 10 cargo build --release --features registrar --example peer
mkdir -p docs/bench-runs "$out"
{
    echo "# peer run at $commit, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# $(baresip -h 2>&1 | head -1); $(/usr/sbin/kamailio -v 2>&1 | head -1)"
    nice -n 10 target/release/examples/peer --out "$out" --sip-ptls target/release/sip-ptls
} 2>&1 | tee -a "$raw"
