//! Reads a trace back one line at a time, and names the file, the line and what is wrong
//! with it when it cannot: a trace is a file from outside (edited, cut short, from another
//! version), never trusted to be well formed.

use super::format::{FORMAT, Header, Line};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The longest line read: a received chunk is at most 16 KiB and a transmitted message
/// 64 KiB, which JSON escaping can make six times longer.
const MAX_LINE: usize = 4 << 20;

/// A trace that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{}{}: {problem}", file.display(), line.map(|n| format!(":{n}")).unwrap_or_default())]
pub struct TraceError {
    /// The trace file.
    pub file: PathBuf,
    /// The line (from 1), when the problem is in one.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
}

/// A trace being read: its header, then [`TraceReader::next_line`].
pub(crate) struct TraceReader {
    lines: Lines,
    header: Header,
}

/// The numbered lines of a trace file.
struct Lines {
    file: PathBuf,
    reader: BufReader<File>,
    number: usize,
}

impl TraceReader {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<TraceReader, TraceError> {
        let file = File::open(path).map_err(|e| TraceError {
            file: path.to_path_buf(),
            line: None,
            problem: format!("cannot read the trace: {e}"),
        })?;
        let mut lines = Lines { file: path.to_path_buf(), reader: BufReader::new(file), number: 0 };
        let header = match lines.next()? {
            Some((_, Line::Header(h))) if h.format == FORMAT => h,
            Some((n, Line::Header(h))) => {
                return Err(lines.error(n, format!("format {} (this sip-ptls reads format {FORMAT})", h.format)));
            }
            Some((n, _)) => return Err(lines.error(n, "the first line is not the header".into())),
            None => return Err(lines.error(1, "the file is empty: no header".into())),
        };
        Ok(TraceReader { lines, header })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// An error about line `line` of this trace.
    pub fn error(&self, line: usize, problem: String) -> TraceError {
        self.lines.error(line, problem)
    }

    /// The next line and its number, `None` at the end of the file. Blank lines are
    /// skipped.
    pub fn next_line(&mut self) -> Result<Option<(usize, Line)>, TraceError> {
        self.lines.next()
    }
}

impl Lines {
    fn error(&self, line: usize, problem: String) -> TraceError {
        TraceError { file: self.file.clone(), line: Some(line), problem }
    }

    fn next(&mut self) -> Result<Option<(usize, Line)>, TraceError> {
        loop {
            self.number += 1;
            let n = self.number;
            let mut bytes = Vec::new();
            let read = (&mut self.reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut bytes);
            match read {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(self.error(n, format!("cannot read: {e}"))),
            }
            if bytes.len() > MAX_LINE {
                return Err(self.error(n, format!("longer than {} MiB", MAX_LINE >> 20)));
            }
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| self.error(n, format!("not UTF-8 text (byte {})", e.valid_up_to() + 1)))?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(text).map(|line| Some((n, line))).map_err(|e| self.error(n, json_problem(&e)));
        }
    }
}

/// serde_json's message without its "at line 1 column N" (the line is ours, and a trace
/// line is always line 1 for serde_json), with the column kept.
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = text.rfind(" at line ").map_or(text.as_str(), |at| &text[..at]);
    let kind = match e.classify() {
        serde_json::error::Category::Eof => "cut short: ",
        serde_json::error::Category::Syntax => "not JSON: ",
        serde_json::error::Category::Data | serde_json::error::Category::Io => "",
    };
    // Errors found after the whole object was read (a missing field) have no column.
    match e.column() {
        0 => format!("{kind}{what}"),
        column => format!("{kind}{what} (column {column})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(name: &str, text: &str) -> (PathBuf, Result<Vec<usize>, TraceError>) {
        let dir = std::env::temp_dir().join(format!("sip-ptls-reader-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("trace.jsonl");
        let _ = std::fs::write(&path, text);
        let read = TraceReader::open(&path).and_then(|mut r| {
            let mut numbers = Vec::new();
            while let Some((n, _)) = r.next_line()? {
                numbers.push(n);
            }
            Ok(numbers)
        });
        let _ = std::fs::remove_dir_all(&dir);
        (path, read)
    }

    const HEADER: &str = concat!(
        r#"{"type":"header","format":2,"crate_version":"0.1.0","seed":"00","instance_id":null,"#,
        r#""t":0,"unix_ms":null,"config_digest":"x"}"#,
        "\n"
    );

    #[test]
    fn lines_are_numbered_from_the_header_and_blank_ones_skipped() {
        let (_, read) =
            trace("ok", &format!("{HEADER}{{\"type\":\"start\",\"t\":0}}\n\n{{\"type\":\"timeout\",\"t\":5}}"));
        assert_eq!(read, Ok(vec![2, 4]));
    }

    #[test]
    fn a_bad_line_is_named_with_its_file_and_number() {
        let (path, read) = trace("cut", &format!("{HEADER}{{\"type\":\"start\",\"t\":0}}\n{{\"type\":\"timeo"));
        let e = read.expect_err("a line cut short");
        assert_eq!((e.file.as_path(), e.line), (path.as_path(), Some(3)));
        assert!(e.to_string().starts_with(&format!("{}:3: cut short", path.display())), "{e}");

        let (_, read) = trace("field", &format!("{HEADER}{{\"type\":\"input\",\"t\":0,\"input\":\"closed\"}}\n"));
        let e = read.expect_err("a missing field");
        assert!(e.line == Some(2) && e.problem.contains("missing field `conn`"), "{e}");

        let (_, read) = trace("first", "{\"type\":\"start\",\"t\":0}\n");
        assert!(read.is_err_and(|e| e.line == Some(1) && e.problem.contains("header")));
        let (_, read) = trace("empty", "");
        assert!(read.is_err_and(|e| e.line == Some(1) && e.problem.contains("empty")));
        let (_, read) = trace("binary", &format!("{HEADER}\u{0}\u{1}garbage\n"));
        assert!(read.is_err_and(|e| e.line == Some(2) && e.problem.contains("not JSON")));
        let (_, read) = trace("version", &HEADER.replace("\"format\":2", "\"format\":9"));
        assert!(read.is_err_and(|e| e.line == Some(1) && e.problem.contains("format 9")));
    }
}
