//! `sip-ptls run --web 127.0.0.1:0` as the web tests start it: the child process, the
//! address its log gives for the interface, and its log lines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

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
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut run = WebRun { child, addr: String::new(), log, seen: Vec::new() };
        let marker = format!("\"url\":\"{scheme}://");
        let line = run.wait_log("the web interface's address", |l| l.contains(&marker));
        run.addr = line.split(&marker).nth(1).and_then(|r| r.split('/').next()).expect("address").to_owned();
        run
    }

    /// Waits up to 15 s for a log line that `matches`.
    pub fn wait_log(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(line) = self.log.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if matches(&line) {
                    return line;
                }
            }
        }
        panic!("no {what} within 15 s; log:\n{}", self.seen.join("\n"));
    }

    /// Ctrl-C, then waits for the exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().expect("send SIGINT").success());
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("sip-ptls run did not exit after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
