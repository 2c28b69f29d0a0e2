//! Reads the Aastra configuration files named on the command line and loads them,
//! reporting every problem with its file and line.

use sip_ptls::config::aastra::{self, Loaded, Source};
use std::path::{Path, PathBuf};

/// The files read, in order, and what loading them gave.
pub struct Configuration {
    /// Directory of the first configuration file: relative certificate file names are
    /// resolved against it.
    pub base_dir: PathBuf,
    /// The loaded configuration, or every error with file and line.
    pub loaded: Result<Loaded, Vec<String>>,
}

/// The directory that relative certificate names are taken from.
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads `paths` (aastra.cfg, then model, then MAC file) and loads them.
pub fn read(paths: &[PathBuf]) -> Configuration {
    let base_dir = paths.first().map_or_else(|| PathBuf::from("."), |p| directory_of(p));
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::read(p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => texts.push((p.display().to_string(), text)),
                Err(e) => errors.push(format!(
                    "{}: not a text file (invalid UTF-8 at byte {})",
                    p.display(),
                    e.utf8_error().valid_up_to()
                )),
            },
            Err(e) => errors.push(format!("{}: cannot read the file: {e}", p.display())),
        }
    }
    if !errors.is_empty() {
        return Configuration { base_dir, loaded: Err(errors) };
    }
    let sources: Vec<Source<'_>> = texts.iter().map(|(name, text)| Source { name, text }).collect();
    let loaded = aastra::load(&sources).map_err(|ds| ds.iter().map(ToString::to_string).collect());
    Configuration { base_dir, loaded }
}
