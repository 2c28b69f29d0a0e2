//! Writes the trace while the phone runs: the driver tells it every core call and every
//! output. A trace is a diagnostic, never a reason to stop a phone: the first write that
//! fails is logged and kept for `Status::trace_error`, and recording stops there.

use super::format::{CommandRecord, CommandResult, Header, Line, OutputRecord};
use crate::engine::{Input, Output};
use crate::time::Instant;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The write buffer, larger than the lines of nearly any one core call and its outputs:
/// the driver flushes after each, so a phone killed at any moment leaves whole lines.
const BUFFER: usize = 64 * 1024;

/// The trace being written.
pub(crate) struct Recorder {
    path: PathBuf,
    /// `None` once a write failed.
    out: Option<Box<dyn Write + Send>>,
    /// The time of the last core call, which its outputs carry.
    now: Instant,
    error: Option<String>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("path", &self.path).field("error", &self.error).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates `path`, which must not exist yet, readable and writable by its owner only
    /// (the trace holds the seed and the digest responses), and writes the header.
    ///
    /// Refusing an existing file means a trace never overwrites another one, and never
    /// follows a symbolic link planted at its name.
    pub fn create(path: &Path, header: Header) -> std::io::Result<Recorder> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Recorder::to_writer(path, Box::new(BufWriter::with_capacity(BUFFER, file)), header)
            .map_err(std::io::Error::other)
    }

    /// A recorder writing to `out` (named `path` in messages), after the header; or why
    /// the header could not be written.
    pub fn to_writer(path: &Path, mut out: Box<dyn Write + Send>, header: Header) -> Result<Recorder, String> {
        let now = Instant::from_millis(header.t);
        serde_json::to_writer(&mut out, &Line::Header(header))
            .map_err(|e| e.to_string())
            .and_then(|()| out.write_all(b"\n").and_then(|()| out.flush()).map_err(|e| e.to_string()))?;
        Ok(Recorder { path: path.to_path_buf(), out: Some(out), now, error: None })
    }

    /// The first write that failed, with the file's name.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// `Core::start(now)`.
    pub fn start(&mut self, now: Instant) {
        self.now = now;
        self.write(&Line::Start { t: now.as_millis() });
    }

    /// `Core::handle_timeout(now)`.
    pub fn timeout(&mut self, now: Instant) {
        self.now = now;
        self.write(&Line::Timeout { t: now.as_millis() });
    }

    /// `Core::handle_input(now, input)`.
    pub fn input(&mut self, now: Instant, input: &Input<'_>) {
        self.now = now;
        self.write(&Line::Input { t: now.as_millis(), input: input.into() });
    }

    /// A command given to the core at `now` and what it answered.
    pub fn command(&mut self, now: Instant, command: CommandRecord, result: CommandResult) {
        self.now = now;
        self.write(&Line::Command { t: now.as_millis(), command, result });
    }

    /// One output, at the time of the call that produced it.
    pub fn output(&mut self, output: &Output) {
        self.write(&Line::Output { t: self.now.as_millis(), output: OutputRecord::from(output) });
    }

    /// Pushes what is buffered to the file, so that a phone that dies leaves its trace.
    pub fn flush(&mut self) {
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush()
        {
            self.failed(&e.to_string());
        }
    }

    fn write(&mut self, line: &Line) {
        let Some(out) = self.out.as_mut() else { return };
        let written = serde_json::to_writer(&mut *out, line).map_err(|e| e.to_string());
        if let Err(e) = written.and_then(|()| out.write_all(b"\n").map_err(|e| e.to_string())) {
            self.failed(&e);
        }
    }

    fn failed(&mut self, why: &str) {
        let error = format!("cannot write the trace {}: {why}", self.path.display());
        tracing::error!("{error}; recording stops, the phone goes on");
        self.out = None;
        self.error = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::Event;

    /// Takes `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
        writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_stops_the_recording_once_and_is_reported() {
        let writes = std::sync::Arc::default();
        let out = Box::new(Full { room: 400, writes: std::sync::Arc::clone(&writes) });
        let header = Header::new(&Config::default(), Instant::ZERO, None);
        let mut r = Recorder::to_writer(Path::new("t.jsonl"), out, header).expect("the header fits");
        for ms in 0..50 {
            r.timeout(Instant::from_millis(ms));
            r.output(&Output::Event(Event::FailedOver));
        }
        let error = r.error().expect("the failure is kept").to_owned();
        assert!(error.contains("t.jsonl") && error.contains("No space left"), "{error}");
        let after = writes.load(std::sync::atomic::Ordering::SeqCst);
        r.timeout(Instant::from_millis(99));
        r.flush();
        assert_eq!(writes.load(std::sync::atomic::Ordering::SeqCst), after, "nothing written after the failure");
        assert_eq!(r.error(), Some(error.as_str()), "the first error is the one kept");
    }
}
