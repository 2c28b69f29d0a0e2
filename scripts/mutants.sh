#!/usr/bin/env bash
# Mutation testing of the core's decisions with cargo-mutants, in shards that can run
# one at a time and be resumed (docs/mutation-testing.md):
#
#   bash scripts/mutants.sh K N        shard K of N (0 <= K < N), then commits its results
#   bash scripts/mutants.sh all N      every shard of N not yet done, in order
#   bash scripts/mutants.sh --summary  totals and score over the shards in mutants/results
#   bash scripts/mutants.sh diff BASE  the mutants of the lines changed since BASE, the commit
#                                      of the mutated files at which every shard of a run was
#                                      made, then commits its results
#
# A shard runs in place (`cargo mutants --in-place`): it refuses a tree with uncommitted
# changes to the code or tests and leaves the tree clean, even when interrupted. Its
# caught, missed, timeout and unviable lists and a summary line go to
# mutants/results/shard-K-of-N/; a shard whose results were made at the same commit of
# the mutated files is skipped. MUTANTS_COMMIT=0 leaves the results uncommitted.
# Survivors are judged again by the model checker: scripts/mutants-judge.sh.
set -euo pipefail
# shellcheck source=scripts/mutants-common.sh
source "$(dirname "$0")/mutants-common.sh"

# Generous limits for a loaded 2-core machine: the tests take seconds, so a mutant that
# runs for minutes is a hang; a build is never cut short (a slow build is not a hang).
TEST_TIMEOUT=180
BUILD_TIMEOUT=1800

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# Runs shard $1 of $2 unless its results are current.
run_shard() {
    local k=$1 n=$2 dir="$RESULTS/shard-$1-of-$2" out="$SCRATCH/shard-$1-of-$2" source status=0
    source=$(source_commit)
    if [ -f "$dir/summary.txt" ] && [ "$(field "$dir/summary.txt" source)" = "$source" ]; then
        echo "shard $k/$n: done at this commit of the mutated files, skipped: $(cat "$dir/summary.txt")"
        return 0
    fi
    require_clean_tree
    echo "shard $k/$n: mutated files at ${source:0:12}, started $(date -Is)"
    local start=$SECONDS
    rm -rf "$out"
    # In place: one tree, hence one mutant at a time (cargo-mutants refuses -j with it), and
    # no copy of the tree and its target directory per run.
    # --baseline=skip: cargo-mutants would test the unmutated tree in the mutated package
    # only, where the small model check does not exist; the committed tree passes the
    # whole test command, which is the baseline that matters.
    run_cargo_mutants --in-place --shard "$k/$n" --colors never --baseline=skip \
        --timeout "$TEST_TIMEOUT" --build-timeout "$BUILD_TIMEOUT" --output "$out" || status=$?
    # A property test that fails under a mutant saves its seed in proptest-regressions/:
    # the seed is the mutant's, not the code's, and a dirty file would stop the next shard.
    git checkout -- proptest-regressions
    # 0: all caught; 2: some missed; 3: some timed out. Anything else (a failing baseline,
    # an interruption, an internal error) leaves no results.
    case $status in
        0 | 2 | 3) ;;
        *) die "shard $k/$n: cargo-mutants exited $status; see $out/mutants.out/debug.log" ;;
    esac
    local seconds=$((SECONDS - start)) m="$out/mutants.out" f
    # A mutant is unviable when it does not compile, never when a sound build fails to link:
    # that is rustc's incremental bug (.cargo/mutants.toml), and such results are wrong.
    if grep -lE 'undefined (hidden )?symbol|linking with .* failed' "$m"/log/*.log >"$out/link-failures" 2>/dev/null; then
        cat "$out/link-failures" >&2
        die "shard $k/$n: builds failed to link (logs above), results not recorded; run 'cargo clean -p sip-ptls' and the shard again"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    for f in caught missed timeout unviable; do
        if [ -f "$m/$f.txt" ]; then cp "$m/$f.txt" "$dir/"; else : >"$dir/$f.txt"; fi
    done
    local caught missed timeout unviable
    caught=$(count "$dir/caught.txt")
    missed=$(count "$dir/missed.txt")
    timeout=$(count "$dir/timeout.txt")
    unviable=$(count "$dir/unviable.txt")
    echo "shard=$k/$n mutants=$((caught + missed + timeout + unviable)) caught=$caught missed=$missed" \
        "timeout=$timeout unviable=$unviable source=$source head=$(git rev-parse HEAD)" \
        "seconds=$seconds finished=$(date -Is) tool=$(cargo mutants --version | tr ' ' '-')" >"$dir/summary.txt"
    echo "shard $k/$n: $(cat "$dir/summary.txt")"
    if [ "${MUTANTS_COMMIT:-1}" = 1 ]; then
        git add -- "$dir"
        git commit -q -m "mutants: shard $k/$n, $caught caught, $missed missed, $timeout timeout, $unviable unviable

Outcome of one shard of the mutation run (docs/mutation-testing.md), committed so that
the run can go on in parts: scripts/mutants.sh skips it while the mutated files stay at
${source:0:12}." -- "$dir"
    fi
}

# The mutants of the lines of the mutated files (and of files the configuration adds) that
# changed between $1, the commit at which the shards were made, and the current commit:
# `cargo mutants --in-diff`. With it, shards made at $1 still count (--summary): a change
# re-runs the mutants of the code it touched instead of every shard. The mutants of
# unchanged lines keep the outcome they had at $1.
run_diff() {
    local base source dir out status=0 start=$SECONDS m f files
    base=$(git rev-parse --verify "$1^{commit}") || die "diff: $1 is not a commit"
    source=$(source_commit)
    [ "$base" != "$source" ] || die "diff: the mutated files have not changed since ${base:0:12}"
    dir="$RESULTS/diff-${base:0:12}-${source:0:12}"
    out="$SCRATCH/diff"
    require_clean_tree
    rm -rf "$out"
    mkdir -p "$out"
    files=$(mutated_files)
    # shellcheck disable=SC2086 # one argument per file
    git diff "$base" "$source" -- $files >"$out/changes.diff"
    echo "diff: mutated files changed from ${base:0:12} to ${source:0:12}, started $(date -Is)"
    run_cargo_mutants --in-place --in-diff "$out/changes.diff" --colors never --baseline=skip \
        --timeout "$TEST_TIMEOUT" --build-timeout "$BUILD_TIMEOUT" --output "$out" || status=$?
    git checkout -- proptest-regressions
    case $status in
        0 | 2 | 3) ;;
        *) die "diff: cargo-mutants exited $status; see $out/mutants.out/debug.log" ;;
    esac
    m="$out/mutants.out"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$out/changes.diff" "$dir/"
    for f in caught missed timeout unviable; do
        if [ -f "$m/$f.txt" ]; then cp "$m/$f.txt" "$dir/"; else : >"$dir/$f.txt"; fi
    done
    echo "shard=diff mutants=$(($(count "$dir/caught.txt") + $(count "$dir/missed.txt") + $(count "$dir/timeout.txt") + $(count "$dir/unviable.txt")))" \
        "caught=$(count "$dir/caught.txt") missed=$(count "$dir/missed.txt") timeout=$(count "$dir/timeout.txt")" \
        "unviable=$(count "$dir/unviable.txt") base=$base source=$source head=$(git rev-parse HEAD)" \
        "seconds=$((SECONDS - start)) finished=$(date -Is) tool=$(cargo mutants --version | tr ' ' '-')" >"$dir/summary.txt"
    echo "diff: $(cat "$dir/summary.txt")"
    if [ "${MUTANTS_COMMIT:-1}" = 1 ]; then
        git add -- "$dir"
        git commit -q -m "mutants: the lines changed since ${base:0:12}, $(field "$dir/summary.txt" caught) caught, $(field "$dir/summary.txt" missed) missed

Outcome of the mutants of the code changed since the shards were made
(docs/mutation-testing.md): with it the shards made at ${base:0:12} still count." -- "$dir"
    fi
}

# The entries of the result file $1, if any.
whole() {
    [ ! -f "$1" ] || cat "$1"
}

# The entries of the result file $1 (of a shard made at the diff run's base) that the
# diff run does not supersede: a mutant on a line the change removed or rewrote, or one
# the diff run tested again (the same file and description), counts by the diff run's
# outcome, or not at all when its code is gone. Without a diff run, the whole file.
live() {
    [ -f "$1" ] || return 0
    if [ -z "$diff" ]; then
        cat "$1"
        return 0
    fi
    awk -v changes="$diff/changes.diff" -v redone="$diff/caught.txt $diff/missed.txt $diff/timeout.txt $diff/unviable.txt" '
        function key(entry,   parts) {
            split(entry, parts, ":")
            return parts[1] "|" substr(entry, index(entry, ": ") + 2)
        }
        BEGIN {
            while ((getline line < changes) > 0) {
                if (line ~ /^diff --git /) { header = 1; file = ""; continue }
                if (header && line ~ /^--- a\//) { file = substr(line, 7); continue }
                if (header && line ~ /^@@ /) {
                    header = 0
                    split(line, fields, " ")
                    split(substr(fields[2], 2), range, ",")
                    old = range[1]
                    continue
                }
                if (line ~ /^@@ /) {
                    split(line, fields, " ")
                    split(substr(fields[2], 2), range, ",")
                    old = range[1]
                    continue
                }
                if (header || file == "") continue
                mark = substr(line, 1, 1)
                if (mark == "-") { gone[file ":" old] = 1; old++ }
                else if (mark == " ") old++
            }
            n = split(redone, lists, " ")
            for (i = 1; i <= n; i++) while ((getline line < lists[i]) > 0) again[key(line)] = 1
        }
        {
            split($0, parts, ":")
            if (!((parts[1] ":" parts[2]) in gone) && !(key($0) in again)) print
        }' "$1"
}

# Totals per shard count N, over the shards whose results belong to the current commit of
# the mutated files; stale shards are named and left out.
summary() {
    local source n base="" diff="" f
    source=$(source_commit)
    echo "mutated files at ${source:0:12}"
    [ -d "$RESULTS" ] || { echo "no shard has run"; return 0; }
    # A diff run made at the current commit carries the shards of its base forward.
    for f in "$RESULTS"/diff-*/summary.txt; do
        if [ -f "$f" ] && [ "$(field "$f" source)" = "$source" ]; then
            base=$(field "$f" base)
            diff=$(dirname "$f")
            echo "changed lines since ${base:0:12}: $(cat "$f")"
        fi
    done
    for n in $(find "$RESULTS" -name summary.txt | sed -n 's/.*shard-[0-9]*-of-\([0-9]*\)\/summary.txt/\1/p' | sort -un); do
        local done=0 stale="" c=0 m=0 t=0 u=0 s=0 mc=0 mm=0 mt=0 rc=0 later=0 pm d keep
        local runs=("$RESULTS"/shard-*-of-"$n"/summary.txt) carried=""
        # The diff run belongs with the shard count whose shards it carries forward.
        if [ -n "$diff" ] && grep -qs "source=$base" "${runs[@]}"; then
            runs+=("$diff/summary.txt")
            carried=" (at ${base:0:12}) and the changed lines"
        fi
        for f in "${runs[@]}"; do
            if [ "$(field "$f" source)" != "$source" ] && { [ -z "$base" ] || [ "$(field "$f" source)" != "$base" ]; }; then
                stale="$stale $(field "$f" shard)"
                continue
            fi
            [ "$(field "$f" shard)" = diff ] || done=$((done + 1))
            s=$((s + $(field "$f" seconds)))
            d=$(dirname "$f")
            # A shard made at the diff run's base counts what the change left of it; the
            # diff run and shards made at the current commit count whole.
            keep=whole
            [ -z "$base" ] || [ "$(field "$f" source)" != "$base" ] || keep=live
            c=$((c + $($keep "$d/caught.txt" | grep -c . || true)))
            m=$((m + $($keep "$d/missed.txt" | grep -c . || true)))
            t=$((t + $($keep "$d/timeout.txt" | grep -c . || true)))
            u=$((u + $($keep "$d/unviable.txt" | grep -c . || true)))
            mc=$((mc + $($keep "$d/model-caught.txt" | grep -c . || true)))
            mm=$((mm + $($keep "$d/model-missed.txt" | grep -c . || true)))
            mt=$((mt + $($keep "$d/model-timeout.txt" | grep -c . || true)))
            rc=$((rc + $($keep "$d/retest-caught.txt" | grep -c . || true)))
            # A survivor killed later by a new test or by the model check counts once.
            later=$((later + $( ($keep "$d/model-caught.txt"; $keep "$d/retest-caught.txt") | sort -u | grep -c . || true)))
        done
        echo "N=$n: $done of $n shards done$carried, $((c + m + t + u)) mutants in $s s:" \
            "$c caught, $m missed, $t timeout, $u unviable"
        [ -z "$stale" ] || echo "  stale (made at another commit of the mutated files, not counted):$stale"
        if [ $((c + m + t)) -gt 0 ]; then
            # Integer per mille, printed as a percentage with one decimal. A mutant that
            # makes the tests hang is detected: a test run that never ends fails (as
            # PIT's TIMED_OUT and Stryker's Timeout count).
            pm=$((1000 * (c + t) / (c + m + t)))
            echo "  score (caught + timeout) / viable = $((c + t)) / $((c + m + t)) = $((pm / 10)).$((pm % 10)) %"
        fi
        if [ $((mc + mm + mt)) -gt 0 ]; then
            echo "  survivors judged by the model check (scripts/mutants-judge.sh): $((mc + mm + mt)) of $m:" \
                "$mc caught, $mm missed, $mt timeout"
        fi
        [ "$rc" -eq 0 ] || echo "  survivors killed by tests written since (scripts/mutants-retest.sh): $rc"
        if [ "$later" -gt 0 ]; then
            pm=$((1000 * (c + t + later) / (c + m + t)))
            echo "  score with them: $((c + t + later)) / $((c + m + t)) = $((pm / 10)).$((pm % 10)) %"
        fi
    done
}

case "${1:-}" in
    --summary)
        need_cargo_mutants
        summary
        ;;
    all)
        [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage
        need_cargo_mutants
        take_lock
        trap restore_tree EXIT
        for ((k = 0; k < $2; k++)); do run_shard "$k" "$2"; done
        ;;
    diff)
        [ -n "${2:-}" ] || usage
        need_cargo_mutants
        take_lock
        trap restore_tree EXIT
        run_diff "$2"
        ;;
    [0-9]*)
        [[ "$1" =~ ^[0-9]+$ && "${2:-}" =~ ^[1-9][0-9]*$ ]] && [ "$1" -lt "$2" ] || usage
        need_cargo_mutants
        take_lock
        trap restore_tree EXIT
        run_shard "$1" "$2"
        ;;
    *) usage ;;
esac
