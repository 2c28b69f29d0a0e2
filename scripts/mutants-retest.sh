#!/usr/bin/env bash
# Tests the survivors of a shard again with the tests as they are now, by the same judges
# as the shard (docs/mutation-testing.md, "Survivors and their judgement"):
#
#   bash scripts/mutants-retest.sh mutants/results/shard-K-of-N ...
#
# A test written for a survivor after its shard ran must be seen to kill it: this runs the
# shard's missed.txt alone, in place, with the repository's configuration, and writes the
# outcome to the shard's retest-caught.txt, retest-missed.txt and retest-timeout.txt, with
# the commit of the tests in retest-summary.txt (a new run replaces them). Each shard's
# outcome is committed (MUTANTS_COMMIT=0: not). Same guard as scripts/mutants.sh: clean
# tree first, clean tree after.
set -euo pipefail
# shellcheck source=scripts/mutants-common.sh
source "$(dirname "$0")/mutants-common.sh"

TEST_TIMEOUT=180
BUILD_TIMEOUT=1800

retest_shard() {
    local dir=$1 source out="$SCRATCH/retest" status=0 name f start=$SECONDS
    local -a filters=() files=()
    source=$(source_commit)
    [ -f "$dir/summary.txt" ] || die "$dir: no summary.txt"
    [ "$(field "$dir/summary.txt" source)" = "$source" ] ||
        die "$dir: made at another commit of the mutated files; run the shard again first"
    # cargo-mutants adds the names given with -F to the configuration's examine_re rather
    # than narrowing them, so the run reads a copy of the configuration without it (the
    # judges, features and exclusions stay); -f keeps it to the survivors' files, since
    # some kinds of mutant escape -F.
    mkdir -p "$SCRATCH"
    sed '/^examine_re = \[/,/^\]/d' .cargo/mutants.toml >"$SCRATCH/retest.toml"
    while IFS= read -r name; do
        [ -n "$name" ] || continue
        filters+=(-F "$(literal_re "$name")")
        files+=("${name%%:*}")
    done <"$dir/missed.txt"
    if [ ${#filters[@]} -eq 0 ]; then
        echo "$dir: no survivor"
        return 0
    fi
    for f in $(printf '%s\n' "${files[@]}" | sort -u); do filters+=(-f "$f"); done
    echo "$dir: $(count "$dir/missed.txt") survivors, started $(date -Is)"
    rm -rf "$out"
    run_cargo_mutants --config "$SCRATCH/retest.toml" --in-place --baseline=skip --colors never "${filters[@]}" \
        --timeout "$TEST_TIMEOUT" --build-timeout "$BUILD_TIMEOUT" --output "$out" || status=$?
    git checkout -- proptest-regressions
    case $status in
        0 | 2 | 3) ;;
        *) die "$dir: cargo-mutants exited $status; see $out/mutants.out/debug.log" ;;
    esac
    # Only the survivors' outcomes: anything else cargo-mutants let through is not kept.
    for f in caught missed timeout; do
        touch "$out/mutants.out/$f.txt"
        grep -xF -f "$dir/missed.txt" "$out/mutants.out/$f.txt" >"$dir/retest-$f.txt" || true
    done
    local tested
    tested=$(cat "$dir"/retest-{caught,missed,timeout}.txt | wc -l)
    [ "$tested" -eq "$(count "$dir/missed.txt")" ] ||
        die "$dir: cargo-mutants tested $tested of $(count "$dir/missed.txt") survivors (has the source moved?)"
    echo "retested=$tested caught=$(count "$dir/retest-caught.txt") missed=$(count "$dir/retest-missed.txt")" \
        "timeout=$(count "$dir/retest-timeout.txt") source=$source head=$(git rev-parse HEAD)" \
        "seconds=$((SECONDS - start)) finished=$(date -Is)" >"$dir/retest-summary.txt"
    echo "$dir: $(cat "$dir/retest-summary.txt")"
    if [ "${MUTANTS_COMMIT:-1}" = 1 ]; then
        git add -- "$dir"
        git commit -q -m "mutants: survivors of $(basename "$dir") tested again, $(count "$dir/retest-caught.txt") now caught

The tests written for them after the shard ran, seen to kill them (scripts/mutants-retest.sh)." -- "$dir"
    fi
}

[ $# -gt 0 ] || {
    sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
need_cargo_mutants
take_lock
require_clean_tree
trap restore_tree EXIT
for dir in "$@"; do retest_shard "${dir%/}"; done
