#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after the other (never two fuzzers at once),
# each for a number of executions or a time, whichever comes first, resuming from its
# corpus fuzz/corpus/<target> (new inputs are added there; minimise with --cmin before
# committing). Each run's log, with libFuzzer's final statistics (executions, exec/s,
# peak RSS), goes to fuzz/logs/<target>-<UTC time>.log. See docs/fuzzing.md.
#
#   bash scripts/fuzz.sh                      # every target, 10 million executions each
#   bash scripts/fuzz.sh -n 1000000 framer    # one target, 1 million executions
#   bash scripts/fuzz.sh -t 3600 core         # at most an hour
#   bash scripts/fuzz.sh -j 2 -n 4000000 core # two fuzzers side by side, 2 million each
#   bash scripts/fuzz.sh --cmin               # minimise every corpus instead of fuzzing
#
# Not part of the test command or CI: the committed corpora are replayed there on the
# stable toolchain by tests/fuzz_replay.rs. Exits non-zero if a target found a crash,
# a hang (-timeout) or a memory blow-up (-rss_limit_mb); the reproducer is then in
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=10000000
SECONDS_MAX=86400
CMIN=0
JOBS=1
TARGETS=()
while [ $# -gt 0 ]; do
    case $1 in
        -n) RUNS=$2; shift 2 ;;
        -t) SECONDS_MAX=$2; shift 2 ;;
        -j) JOBS=$2; shift 2 ;;
        --cmin) CMIN=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(framer message digest aastra core)

# cargo-fuzz and the nightly toolchain: installed only when asked for.
bash scripts/deps.sh --fuzz

# The largest input libFuzzer may make, per target: big enough to reach every limit the
# target checks, small enough to keep executions fast.
max_len() {
    case $1 in
        framer) echo 8192 ;;
        message) echo 8192 ;;
        digest) echo 1024 ;;
        aastra) echo 4096 ;;
        core) echo 2048 ;;
        *) echo 4096 ;;
    esac
}

# -s none: no sanitizer (the crate forbids unsafe code; the checks are the bodies' own
# assertions); -a: debug assertions and overflow checks on, as in the tests.
# --no-trace-compares for core: its inputs are decisions read with `%`, not bytes that
# must match magic values (the parsers' own targets keep comparison tracing), and the
# tracing halves its speed.
build_flags() {
    case $1 in
        core) echo "-s none -a --no-trace-compares" ;;
        *) echo "-s none -a" ;;
    esac
}
mkdir -p fuzz/logs
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    if [ "$CMIN" = 1 ]; then
        # -use_counters=0: keep one input per covered edge, not per hit-count bucket, so
        # that the committed corpus stays at a few hundred files.
        # shellcheck disable=SC2046
        nice -n 10 cargo +nightly fuzz cmin $(build_flags "$t") "$t" -- -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=1024 \
            -use_counters=0
        echo "$t: $(find "fuzz/corpus/$t" -type f | wc -l) files, $(du -sb "fuzz/corpus/$t" | cut -f1) bytes"
        continue
    fi
    # shellcheck disable=SC2046
    cargo +nightly fuzz build $(build_flags "$t") "$t"
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    # -j N: N fuzzers on the same corpus directory, each with its own log and an Nth of
    # the executions; libFuzzer rereads the directory, so they share what they find.
    pids=()
    logs=()
    for w in $(seq 1 "$JOBS"); do
        log="fuzz/logs/$t-$stamp.log"
        [ "$JOBS" = 1 ] || log="fuzz/logs/$t-$stamp-w$w.log"
        logs+=("$log")
        echo "fuzz.sh: $t for $((RUNS / JOBS)) executions or ${SECONDS_MAX}s, log $log" >&2
        (
            start=$(date +%s)
            rc=0
            # shellcheck disable=SC2046
            nice -n 10 cargo +nightly fuzz run $(build_flags "$t") "$t" -- \
                -runs="$((RUNS / JOBS))" -max_total_time="$SECONDS_MAX" -max_len="$(max_len "$t")" \
                -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1 || rc=$?
            echo "fuzz.sh: wall time $(($(date +%s) - start)) s, exit status $rc" >>"$log"
            exit "$rc"
        ) &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        # The figures docs/fuzzing.md tabulates.
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done|wall time' "${logs[$i]}" >&2 || true
        if [ "$rc" != 0 ]; then
            echo "fuzz.sh: $t failed (status $rc): see ${logs[$i]} and fuzz/artifacts/$t/" >&2
            status=1
        fi
    done
    echo "fuzz.sh: corpus $(find "fuzz/corpus/$t" -type f | wc -l) files, $(du -sb "fuzz/corpus/$t" | cut -f1) bytes" >&2
done
exit $status
