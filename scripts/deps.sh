#!/usr/bin/env bash
# Installs whatever the tests and benchmarks need and is missing: Debian packages, rustup
# components and cargo tools. Idempotent and non-interactive; when everything is present it
# only runs cheap local checks (no apt-get, no network), so every test run can call it.
# With --fuzz it also installs what scripts/fuzz.sh needs (the nightly toolchain and
# cargo-fuzz), which the tests and CI do not.
# A need that cannot be met stops it with a non-zero status naming it: the tests that
# rely on it must then fail, never skip.
set -euo pipefail

# Debian packages, one a line: the package, then what proves it is installed. A check is
# `cmd:NAME` (on PATH, or an absolute path) or `file:GLOB`; none means `dpkg-query`.
# Checking the files the tests use, not only the package state, catches a half-removed
# install.
APT_PACKAGES=(
    # The interop tests run the phone against Kamailio over TLS (tests/kamailio_*.rs)
    # and drive it with kamcmd; tests/kamailio/config.rs loads these two modules.
    "kamailio                  cmd:/usr/sbin/kamailio cmd:/usr/sbin/kamcmd"
    "kamailio-tls-modules      file:/usr/lib/*/kamailio/modules/tls.so"
    "kamailio-outbound-modules file:/usr/lib/*/kamailio/modules/outbound.so"
    # The web interface's browser test (tests/web_browser.rs) drives headless chromium
    # through chromedriver.
    "chromium                  cmd:/usr/bin/chromium"
    "chromium-driver           cmd:/usr/bin/chromedriver"
    # The peer benchmark (examples/peer.rs, docs/benchmarks.md) runs baresip beside
    # sip-ptls against the same Kamailio pair; it loads these modules from the package.
    "baresip                   cmd:/usr/bin/baresip file:/usr/lib/baresip/modules/ctrl_tcp.so file:/usr/lib/baresip/modules/aubridge.so"
    # The DNS tests against a real server (tests/dns_real_server.rs) start their own
    # dnsmasq on a loopback port. dnsmasq-base is Debian's dnsmasq program without the
    # `dnsmasq` package's system service, so installing it starts nothing on port 53 and
    # the tests depend on no daemon but their own.
    "dnsmasq-base              cmd:/usr/sbin/dnsmasq"
    # The Kamailio test of an IPv6 address that drops packets (tests/kamailio_dns_records.rs)
    # drops its own port's SYNs with a table of its own, removed when the test ends.
    "nftables                  cmd:/usr/sbin/nft"
    # kill(1) signals whole process groups (Kamailio's workers, the CLI under test).
    "procps                    cmd:kill"
    # ring compiles C code, and cargo links through cc.
    "gcc                       cmd:cc"
    "libc6-dev                 file:/usr/include/stdio.h"
)

# rustup components, one a line: the component, then the cargo subcommand it provides
# (.ci/run runs `cargo fmt --all --check` and `cargo clippy`).
RUSTUP_COMPONENTS=(
    "rustfmt fmt"
    "clippy  clippy"
)

# Cargo tools, one a line: the crate, then the command it provides.
CARGO_TOOLS=()

# With --fuzz only: the toolchain cargo-fuzz builds with (libFuzzer needs nightly's
# -Z flags), and cargo tools as above.
FUZZ_TOOLCHAIN=nightly
FUZZ_CARGO_TOOLS=(
    "cargo-fuzz cargo-fuzz"
)

FUZZ=0
for arg in "$@"; do
    case $arg in
        --fuzz) FUZZ=1 ;;
        *) echo "deps.sh: unknown argument $arg (the only one is --fuzz)" >&2; exit 2 ;;
    esac
done

die() {
    echo "deps.sh: $*" >&2
    exit 1
}

# Whether every check of a package line holds.
present() {
    local pkg=$1
    shift
    if [ $# -eq 0 ]; then
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ]
        return
    fi
    local check
    for check in "$@"; do
        case $check in
            # type -P, not command -v: a shell builtin (kill) must not count, the tests
            # run the program.
            cmd:*) type -P "${check#cmd:}" >/dev/null || return 1 ;;
            file:*) compgen -G "${check#file:}" >/dev/null || return 1 ;;
            *) die "unknown check '$check' for $pkg" ;;
        esac
    done
}

# Prints the packages of APT_PACKAGES whose checks fail.
missing_packages() {
    local line words
    for line in "${APT_PACKAGES[@]}"; do
        # read -a splits without expanding the globs of the checks.
        read -r -a words <<<"$line"
        present "${words[@]}" || echo "${words[0]}"
    done
}

# The prefix that gives root: nothing as root, `sudo -n` if it works without a password.
root_prefix() {
    if [ "$(id -u)" -eq 0 ]; then
        echo ""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "sudo -n"
    else
        return 1
    fi
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    [ ${#missing[@]} -eq 0 ] && return
    local sudo
    sudo=$(root_prefix) || die "missing ${missing[*]}, and installing needs root or password-less sudo"
    echo "deps.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq || die "apt-get update failed; missing ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed; missing ${missing[*]}"
    mapfile -t missing < <(missing_packages)
    [ ${#missing[@]} -eq 0 ] || die "still missing after apt-get install: ${missing[*]}"
}

install_components() {
    local line words
    for line in "${RUSTUP_COMPONENTS[@]}"; do
        read -r -a words <<<"$line"
        # `cargo SUBCOMMAND --version` goes through rustup's proxy for the active
        # toolchain, so it fails exactly when that toolchain lacks the component.
        cargo "${words[1]}" --version >/dev/null 2>&1 && continue
        command -v rustup >/dev/null 2>&1 || die "cargo ${words[1]} is missing and rustup is not installed"
        echo "deps.sh: adding rustup component ${words[0]}" >&2
        rustup component add "${words[0]}" || die "rustup component add ${words[0]} failed"
        cargo "${words[1]}" --version >/dev/null 2>&1 \
            || die "cargo ${words[1]} still missing after rustup component add ${words[0]}"
    done
}

install_cargo_tools() {
    local line words
    for line in "$@"; do
        read -r -a words <<<"$line"
        type -P "${words[1]}" >/dev/null && continue
        echo "deps.sh: cargo install ${words[0]}" >&2
        cargo install --locked "${words[0]}" || die "cargo install ${words[0]} failed"
        type -P "${words[1]}" >/dev/null || die "${words[1]} still missing after cargo install ${words[0]}"
    done
}

install_packages
command -v cargo >/dev/null 2>&1 || die "cargo is not installed (install Rust with rustup)"
install_components
install_cargo_tools ${CARGO_TOOLS[@]+"${CARGO_TOOLS[@]}"}

install_fuzz_toolchain() {
    cargo "+$FUZZ_TOOLCHAIN" --version >/dev/null 2>&1 && return
    command -v rustup >/dev/null 2>&1 || die "the $FUZZ_TOOLCHAIN toolchain is missing and rustup is not installed"
    echo "deps.sh: installing the $FUZZ_TOOLCHAIN toolchain" >&2
    rustup toolchain install "$FUZZ_TOOLCHAIN" --profile minimal || die "rustup toolchain install $FUZZ_TOOLCHAIN failed"
}

if [ "$FUZZ" = 1 ]; then
    install_fuzz_toolchain
    install_cargo_tools "${FUZZ_CARGO_TOOLS[@]}"
fi
