#!/usr/bin/env bash
# Judges each survivor of the mutation run again, by the full model check
# (docs/mutation-testing.md, "Survivors and their judgement"):
#
#   bash scripts/mutants-judge.sh [mutants/results/shard-K-of-N ...]   (default: every shard)
#
# Each mutant of a shard's missed.txt is applied alone, in place, and judged by
# `cargo test --profile modelcheck -p sip-ptls-models --test model_check` (every bound the
# project checks: minutes per mutant). Its outcome is appended to the shard's
# model-caught.txt, model-missed.txt or model-timeout.txt; a mutant already in one of them
# is not judged again, so the run can be stopped and resumed. Each shard's judgements are
# committed (MUTANTS_COMMIT=0: not). Same guard as scripts/mutants.sh: clean tree first,
# clean tree after.
set -euo pipefail
# shellcheck source=scripts/mutants-common.sh
source "$(dirname "$0")/mutants-common.sh"

# The heaviest check takes about 80 s at release speed on an idle machine; a mutant that
# makes the state space explode is cut off here and recorded as a timeout, to be read by
# hand.
TEST_TIMEOUT=1800
BUILD_TIMEOUT=1800

# Judges one mutant, named as in missed.txt: sets VERDICT to caught, missed, timeout or
# unviable. (A variable, not output: in a $(subshell) a signal would not reach the
# handler that stops cargo-mutants.)
judge_one() {
    local name=$1 out="$SCRATCH/judge" status=0 f
    rm -rf "$out"
    # The repository's configuration names the core's tests as judges: --no-config, and the
    # model package's tests instead. The baseline is skipped: it would run in the mutated
    # package, which has no model_check target (the unmutated model check is part of
    # scripts/test-all.sh).
    run_cargo_mutants --no-config --in-place --baseline=skip --colors never \
        -f "${name%%:*}" -F "$(literal_re "$name")" \
        --test-package sip-ptls-models --profile modelcheck \
        --timeout "$TEST_TIMEOUT" --build-timeout "$BUILD_TIMEOUT" --output "$out" \
        -- --test model_check || status=$?
    case $status in
        0 | 2 | 3) ;;
        *) die "cargo-mutants exited $status on: $name; see $out/mutants.out/debug.log" ;;
    esac
    for f in caught missed timeout unviable; do
        if grep -qxF -- "$name" "$out/mutants.out/$f.txt" 2>/dev/null; then
            VERDICT=$f
            return 0
        fi
    done
    die "cargo-mutants did not test: $name (has the source moved since the shard ran?)"
}

judge_shard() {
    local dir=$1 source name judged=0 names
    source=$(source_commit)
    [ -f "$dir/summary.txt" ] || die "$dir: no summary.txt"
    [ "$(field "$dir/summary.txt" source)" = "$source" ] ||
        die "$dir: made at another commit of the mutated files; run the shard again first"
    # Read first: cargo-mutants and the tests must not inherit the list as their stdin.
    mapfile -t names <"$dir/missed.txt"
    for name in "${names[@]}"; do
        [ -n "$name" ] || continue
        if cat "$dir"/model-*.txt 2>/dev/null | grep -qxF -- "$name"; then
            continue
        fi
        echo "judging: $name"
        judge_one "$name"
        echo "$name" >>"$dir/model-$VERDICT.txt"
        echo "  model check: $VERDICT"
        judged=$((judged + 1))
    done
    if [ "$judged" -gt 0 ] && [ "${MUTANTS_COMMIT:-1}" = 1 ]; then
        git add -- "$dir"
        git commit -q -m "mutants: $judged survivors of $(basename "$dir") judged by the model check

Each was applied alone and run against every bound of models/tests/model_check.rs
(scripts/mutants-judge.sh); the verdicts are in $dir/model-*.txt." -- "$dir"
    fi
}

need_cargo_mutants
take_lock
trap restore_tree EXIT
require_clean_tree
if [ $# -eq 0 ]; then
    set -- "$RESULTS"/shard-*
fi
for dir in "$@"; do
    [ -d "$dir" ] || die "no such results directory: $dir"
    judge_shard "${dir%/}"
done
