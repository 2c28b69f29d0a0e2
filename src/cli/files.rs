//! Reads the Aastra configuration files named on the command line (and, for `run`, the
//! web interface's local file after them) and loads them, reporting every problem with
//! its file and line.

use sip_ptls::config::aastra::Loaded;
use sip_ptls::runtime::ConfigFiles;
use std::path::PathBuf;

/// The files read, in order, and what loading them gave.
pub struct Configuration {
    /// Directory of the first configuration file: relative certificate file names are
    /// resolved against it.
    pub base_dir: PathBuf,
    /// The loaded configuration, or every error with file and line.
    pub loaded: Result<Loaded, Vec<String>>,
}

/// Reads `paths` (aastra.cfg, then model, then MAC file) and loads them.
pub fn read(paths: &[PathBuf]) -> Configuration {
    read_files(&ConfigFiles::new(paths.to_vec(), None))
}

/// Reads and loads `files`.
pub fn read_files(files: &ConfigFiles) -> Configuration {
    let loaded = files.load().map_err(|ps| ps.iter().map(ToString::to_string).collect());
    Configuration { base_dir: files.base_dir(), loaded }
}
