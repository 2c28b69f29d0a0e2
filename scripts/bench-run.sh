#!/usr/bin/env bash
# One kept benchmark run (issue 14; docs/benchmarks.md): every scenario at one commit,
# one after the other, each resumable, the raw output kept in docs/bench-runs/<id>.txt
# and the tables of docs/benchmarks.md generated from that file.
#
#   bash scripts/bench-run.sh             # run the scenarios not run yet, then write the tables
#   bash scripts/bench-run.sh --fresh     # forget this commit's scenarios and run them all again
#   bash scripts/bench-run.sh --tables    # only write the tables again from the kept run
#   bash scripts/bench-run.sh --list      # the scenarios, and which are done
#
# <id> is the last commit that touched src/ or benches/ (`git log -1 -- src benches`):
# a change elsewhere (docs) keeps the run valid. The run refuses to start while src/ or
# benches/ differ from that commit. Each scenario's output is kept in
# target/bench-run-<id>/<scenario>.out and marked done when it ends, so a run cut short
# (a closed terminal, a time limit) starts again at the first scenario not done.
# About 48 minutes in all here, the idle windows (3 x 10 min) the longest part.
# The call-setup chart is written into docs/ only when SIP_PTLS_BENCH_CHART=1.
set -euo pipefail
cd "$(dirname "$0")/.."

id=$(git log -1 --format=%h -- src benches)
dir=target/bench-run-$id
raw=docs/bench-runs/$id.txt
idle_secs=${SIP_PTLS_BENCH_IDLE_SECS:-600}

# name and command of each scenario, in the order they run.
scenarios=(
    "core|cargo bench --bench core"
    "alloc|cargo bench --bench alloc"
    "call_setup|cargo bench --bench e2e -- call_setup"
    "failover|cargo bench --bench e2e -- failover"
    "idle_embedded|env SIP_PTLS_BENCH_IDLE_SECS=$idle_secs SIP_PTLS_BENCH_IDLE_PARTS=embedded cargo bench --bench e2e -- idle"
    "idle_run|env SIP_PTLS_BENCH_IDLE_SECS=$idle_secs SIP_PTLS_BENCH_IDLE_PARTS=run cargo bench --bench e2e -- idle"
    "idle_run_web|env SIP_PTLS_BENCH_IDLE_SECS=$idle_secs SIP_PTLS_BENCH_IDLE_PARTS=run_web cargo bench --bench e2e -- idle"
    "scale|cargo bench --bench e2e -- scale"
    "peer|bash scripts/peer-bench.sh"
    "call_move|cargo bench --bench call_move"
    "call_setup_timing|bash scripts/bench-call-setup-timing.sh"
)

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# TCP sockets in TIME_WAIT, IPv4 and IPv6.
time_waits() { awk '$4 == "06"' /proc/net/tcp /proc/net/tcp6 | wc -l; }

# Waits (3 minutes at most) until the sockets a scenario left in TIME_WAIT are gone: the
# scale scenario leaves tens of thousands, and a port taken from them by the next scenario's
# helpers (baresip binds without SO_REUSEADDR) fails with "Address already in use".
settle() {
    local waited=0
    while [ "$(time_waits)" -gt 100 ] && [ "$waited" -lt 180 ]; do
        sleep 5
        waited=$((waited + 5))
    done
    if [ "$waited" -gt 0 ]; then
        echo "== settled for $waited s ($(time_waits) sockets in TIME_WAIT), load average $(loadavg)"
    fi
}

# Writes the run file from the scenarios done so far.
assemble() {
    mkdir -p docs/bench-runs
    {
        cat "$dir/header"
        for entry in "${scenarios[@]}"; do
            name=${entry%%|*}
            if [ -f "$dir/$name.done" ]; then
                cat "$dir/$name.out"
            fi
        done
    } >"$raw"
}

tables() {
    cargo run --quiet --release --example bench_tables -- "$raw" docs/benchmarks.md
    echo "docs/benchmarks.md: tables written from $raw"
}

case "${1:-}" in
--fresh) rm -rf "$dir" ;;
--tables)
    tables
    exit 0
    ;;
--list)
    for entry in "${scenarios[@]}"; do
        name=${entry%%|*}
        if [ -f "$dir/$name.done" ]; then echo "done     $name"; else echo "to run   $name"; fi
    done
    exit 0
    ;;
"") ;;
*)
    echo "usage: bash scripts/bench-run.sh [--fresh | --tables | --list]" >&2
    exit 2
    ;;
esac

if [ -n "$(git status --porcelain -- src benches)" ]; then
    echo "src/ or benches/ differ from $id: commit them first, so that the run is named by the code it measured" >&2
    exit 1
fi

bash scripts/deps.sh
mkdir -p "$dir"
if [ ! -f "$dir/header" ]; then
    echo "# run at $id (the last commit touching src/ or benches/), started $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(rustc --version), load average $(loadavg)" >"$dir/header"
fi

for entry in "${scenarios[@]}"; do
    name=${entry%%|*}
    command=${entry#*|}
    if [ -f "$dir/$name.done" ]; then
        continue
    fi
    settle
    echo "== scenario $name: $command"
    started=$(date +%s)
    {
        echo "== scenario $name at $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(loadavg): $command"
        # shellcheck disable=SC2086
        $command 2>&1
        echo "== end of $name: $(($(date +%s) - started)) s, load average $(loadavg)"
    } | tee "$dir/$name.out"
    touch "$dir/$name.done"
    assemble
done

assemble
tables
