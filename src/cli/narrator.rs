//! The step-by-step report of `sip-ptls demo` and `sip-ptls simulate`: one `[ok]` or
//! `[FAILED]` line per checked step, notes under them, an optional summary, and the
//! verdict that becomes the exit status.

/// Prints the steps as they are checked and remembers which failed.
#[derive(Debug, Default)]
pub struct Narrator {
    failures: Vec<String>,
    summary: Vec<String>,
}

impl Narrator {
    /// Prints one checked step; returns `ok` so that a caller can stop at a failure.
    pub fn step(&mut self, ok: bool, what: &str) -> bool {
        println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            self.failures.push(what.to_owned());
        }
        ok
    }

    /// Prints a detail of the last step, indented under it.
    pub fn note(&self, text: &str) {
        println!("        {text}");
    }

    /// Keeps a line for the summary printed by [`Narrator::finish`].
    pub fn summarize(&mut self, line: String) {
        self.summary.push(line);
    }

    /// Whether any step failed so far.
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    /// Prints the summary (if any) and the verdict of `command`; true if every step
    /// happened.
    pub fn finish(&self, command: &str) -> bool {
        if !self.summary.is_empty() {
            println!("summary");
            for line in &self.summary {
                println!("  {line}");
            }
        }
        if self.failures.is_empty() {
            println!("{command}: every step happened");
            true
        } else {
            println!("{command}: {} step(s) failed: {}", self.failures.len(), self.failures.join("; "));
            false
        }
    }
}
