//! Replays every committed fuzz input as an ordinary test on the stable toolchain: each
//! file of `fuzz/corpus/<target>/` and of `fuzz/artifacts/<target>/` (reproducers of
//! what the fuzzers found) goes through the same body the cargo-fuzz target runs
//! (`fuzz/bodies/<target>.rs`, included here by path, so there is one copy). A missing or
//! empty corpus fails, so that deleting one cannot pass unnoticed. See docs/fuzzing.md.

#[path = "../fuzz/bodies/aastra.rs"]
mod aastra;
#[path = "../fuzz/bodies/core.rs"]
mod core_body;
#[path = "../fuzz/bodies/digest.rs"]
mod digest;
#[path = "../fuzz/bodies/framer.rs"]
mod framer;
#[path = "../fuzz/bodies/input.rs"]
mod input;
#[path = "../fuzz/bodies/message.rs"]
mod message;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The files directly inside `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `body` on every committed input of `target`; fails naming each input that panics.
fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = root.join("corpus").join(target);
    let mut inputs = files_in(&corpus);
    assert!(!inputs.is_empty(), "the fuzz corpus {} is missing or empty", corpus.display());
    inputs.extend(files_in(&root.join("artifacts").join(target)));
    let mut failed = Vec::new();
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of `{target}` fail:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

#[test]
fn framer_corpus() {
    replay("framer", framer::run);
}

#[test]
fn message_corpus() {
    replay("message", message::run);
}

#[test]
fn digest_corpus() {
    replay("digest", digest::run);
}

#[test]
fn aastra_corpus() {
    replay("aastra", aastra::run);
}

#[test]
fn core_corpus() {
    replay("core", core_body::run);
}
