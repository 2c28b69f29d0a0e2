//! A firewall rule of the test's own (nftables) that drops TCP packets to one IPv6
//! address and port, as a network that swallows SYNs does: a connection attempt there
//! is neither accepted nor refused, it only times out.
//!
//! The rule lives in a table named after the test process (`ip6 sip_ptls_test_<pid>`),
//! so it touches nothing else on the machine, and deleting that table removes it whole:
//! when the guard drops (also while a failed test unwinds) and from a watchdog's last
//! clean-up ([`remove_all`]), which runs when the test process ends without destructors.
//! Needs root (the tests run as root, CI too) and `nft` (`scripts/deps.sh` installs
//! nftables); without them the test fails, it does not skip.
#![allow(dead_code)]

use std::net::SocketAddrV6;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where Debian's nftables puts the program.
pub const NFT: &str = "/usr/sbin/nft";

/// The table of this test process.
fn table() -> String {
    format!("sip_ptls_test_{}", std::process::id())
}

/// Runs `nft args…`, panicking with its error output when it fails.
fn nft(args: &[&str]) {
    assert!(
        Path::new(NFT).exists(),
        "{NFT} is missing: `bash scripts/deps.sh` installs it (Debian's nftables); this test needs it"
    );
    let out = Command::new(NFT).args(args).stdin(Stdio::null()).output().expect("run nft");
    assert!(
        out.status.success(),
        "nft {} failed ({}; the test must run as root): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TCP packets to one IPv6 address and port are dropped while this lives. One at a time
/// per test process (they share the process's table).
pub struct DropTcp {
    /// The address and port whose packets are dropped.
    pub to: SocketAddrV6,
}

impl DropTcp {
    /// Adds the table, its output chain and the rule dropping TCP packets to `to`.
    pub fn to(to: SocketAddrV6) -> DropTcp {
        // Made first: a failure below unwinds through its drop, which deletes the table.
        let guard = DropTcp { to };
        let table = table();
        nft(&["add", "table", "ip6", &table]);
        nft(&["add", "chain", "ip6", &table, "output", "{ type filter hook output priority 0; policy accept; }"]);
        let (ip, port) = (to.ip().to_string(), to.port().to_string());
        nft(&["add", "rule", "ip6", &table, "output", "ip6", "daddr", &ip, "tcp", "dport", &port, "drop"]);
        guard
    }

    /// The table as nft lists it (for failure messages).
    pub fn listing(&self) -> String {
        let out = Command::new(NFT).args(["list", "table", "ip6", &table()]).output().expect("run nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for DropTcp {
    fn drop(&mut self) {
        remove_all();
    }
}

/// Deletes this test process's table, if there is one: for a watchdog's last clean-up.
pub fn remove_all() {
    let _ = Command::new(NFT)
        .args(["delete", "table", "ip6", &table()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
