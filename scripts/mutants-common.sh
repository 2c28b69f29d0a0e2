# What scripts/mutants.sh and scripts/mutants-judge.sh share: where results live, which
# commit they belong to, and the guard that keeps an in-place run from touching work in
# progress and leaves the tree as it found it. Sourced, not run.

# Both scripts run from the repository's root.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RESULTS=mutants/results
# cargo-mutants' full output (logs, diffs, JSON) stays out of git: only the small text
# files are copied into $RESULTS.
SCRATCH=target/mutants
export CARGO_TERM_COLOR=never
# A caught mutant fails a property test: its counterexample need not be shrunk, which on
# a mutant can take longer than the tests themselves.
export PROPTEST_MAX_SHRINK_ITERS=32

die() {
    echo "mutants: $*" >&2
    exit 1
}

need_cargo_mutants() {
    if ! cargo mutants --version >/dev/null 2>&1; then
        echo "mutants: installing cargo-mutants" >&2
        nice -n 10 cargo install cargo-mutants --locked
    fi
}

# The files cargo-mutants mutates, as .cargo/mutants.toml selects them. Fails rather than
# answer nothing: with no files, source_commit would date only the configuration.
mutated_files() {
    local files
    files=$(nice -n 10 cargo mutants --list-files 2>/dev/null) && [ -n "$files" ] || {
        echo "mutants: cargo mutants --list-files failed or listed nothing" >&2
        return 1
    }
    echo "$files"
}

# The last commit that changed a mutated file or the configuration: results are valid for
# as long as it stays the same (a commit elsewhere moves neither the mutants nor their
# numbering in the shards).
source_commit() {
    local files
    files=$(mutated_files) || return 1
    # shellcheck disable=SC2086 # one argument per file
    git log -1 --format=%H -- .cargo/mutants.toml $files
}

# What decides a mutant's outcome: the code, the tests, their regression seeds and the
# configuration. An in-place run overwrites the mutated files and restores them from git
# on interruption, so uncommitted work there would be lost, and results would belong to
# no commit.
require_clean_tree() {
    local dirty
    dirty=$(git status --porcelain -- src tests proptest-regressions models .cargo Cargo.toml Cargo.lock)
    if [ -n "$dirty" ]; then
        echo "$dirty" >&2
        die "uncommitted changes above: commit or stash them first (cargo-mutants runs in place)"
    fi
    # From here on the tree holds nothing but HEAD, so restore_tree may reset it.
    TREE_CLEAN_AT_START=1
}

# One run at a time per tree: two in-place runs would mutate each other's files.
take_lock() {
    mkdir -p "$SCRATCH"
    exec 9>"$SCRATCH/lock"
    flock -n 9 || die "another mutation run holds $SCRATCH/lock"
}

# Puts back what a run may leave behind: a mutated file if cargo-mutants was killed before
# it could revert it, and the regression seeds the property tests write when a mutant
# fails them (proptest's failure persistence). Only once require_clean_tree has passed:
# then HEAD is what the tree held, and nothing of anyone's work can be lost.
restore_tree() {
    [ "${TREE_CLEAN_AT_START:-0}" = 1 ] || return 0
    local files
    # Without the list (cargo-mutants gone?), all of src/: it was clean at the start too.
    files=$(mutated_files) || files=src
    # shellcheck disable=SC2086 # one argument per file
    git checkout -q -- $files proptest-regressions
    git clean -fdq -- proptest-regressions
}

# Runs cargo-mutants in the background so that a signal reaches this script at once: it
# passes SIGTERM on (cargo-mutants treats it as Ctrl-C: it kills its cargo, reverts the
# mutant and exits) and waits for it before the EXIT trap restores the tree. SIGTERM, not
# SIGINT: a shell starts background commands with SIGINT ignored. Returns cargo-mutants'
# status.
run_cargo_mutants() {
    local child status=0
    nice -n 10 cargo mutants "$@" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null; wait "$child" || true; exit 130' INT TERM HUP
    wait "$child" || status=$?
    trap - INT TERM HUP
    return "$status"
}

# A mutant's `name` as a regular expression matching only itself.
literal_re() {
    printf '^%s$' "$(printf '%s' "$1" | sed -e 's/[][\\.+*?(){}|^$]/\\&/g')"
}

# Lines in a result file (0 when it is absent).
count() {
    if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

# The value of `key=` in a summary line.
field() {
    sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" "$1"
}
