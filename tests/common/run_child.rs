//! `sip-ptls run` as a child process of the tests: its log lines read on a thread, waits
//! for a line, Ctrl-C and the exit; and `WebRun`, the command started with its web
//! interface on a free loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Reads lines from a child's pipe on a thread of its own.
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits up to 15 s for the first line that `matches`, keeping every line in `seen`.
pub fn wait_line(rx: &Receiver<String>, seen: &mut Vec<String>, what: &str, matches: impl Fn(&str) -> bool) -> String {
    wait_line_for(rx, seen, what, Duration::from_secs(15), matches)
}

/// As [`wait_line`], waiting up to `limit`.
pub fn wait_line_for(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    limit: Duration,
    matches: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    }
    panic!("no {what} within {limit:?}; seen:\n{}", seen.join("\n"));
}

/// Ctrl-C (SIGINT), then the exit status, waited for up to 15 s.
pub fn interrupt(child: &mut Child) -> ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("send SIGINT").success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sip-ptls run did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `sip-ptls run` with its web interface.
pub struct WebRun {
    pub child: Child,
    /// `host:port` of the interface.
    pub addr: String,
    pub log: Receiver<String>,
    pub seen: Vec<String>,
}

impl WebRun {
    /// Starts `bin run --json --web 127.0.0.1:0 EXTRA… --config CFG` and waits for the
    /// interface's address (`scheme` is `http` or `https`).
    pub fn start(bin: &str, cfg: &Path, extra: &[&std::ffi::OsStr], scheme: &str) -> WebRun {
        let mut child = Command::new(bin)
            .args(["run", "--json", "--web", "127.0.0.1:0"])
            .args(extra)
            .arg("--config")
            .arg(cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sip-ptls run");
        let log = lines_of(child.stderr.take().expect("stderr"));
        let mut run = WebRun { child, addr: String::new(), log, seen: Vec::new() };
        let marker = format!("\"url\":\"{scheme}://");
        let line = run.wait_log("the web interface's address", |l| l.contains(&marker));
        run.addr = line.split(&marker).nth(1).and_then(|r| r.split('/').next()).expect("address").to_owned();
        run
    }

    /// Waits up to 15 s for a log line that `matches`.
    pub fn wait_log(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        wait_line(&self.log, &mut self.seen, what, matches)
    }

    /// Ctrl-C, then waits for a clean exit.
    pub fn stop(mut self) {
        let status = interrupt(&mut self.child);
        assert_eq!(status.code(), Some(0), "log:\n{}", self.seen.join("\n"));
    }
}
