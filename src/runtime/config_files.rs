//! The configuration files of a phone: the Aastra files given on the command line (read,
//! never written) and the local file that the web interface writes its changes into,
//! read after them so that it wins. Loading reports every problem with the parameter it
//! concerns, so that a settings page can show each next to its field; writing the local
//! file is atomic and keeps the previous version.

use super::ClientTls;
use crate::config::aastra::{self, Loaded, Source};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The name of the local file when none is given: beside the first configuration file.
pub const LOCAL_FILE: &str = "sip-ptls-local.cfg";

/// One problem found while loading, with the Aastra parameter it concerns when there is
/// one (a settings page shows it next to that parameter's field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The parameter's canonical name (`sip proxy ip`, `sip line2 user name`, …).
    pub parameter: Option<String>,
    /// What is wrong, naming the file and line where it was set.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The given files, in increasing precedence, and the local file after them.
#[derive(Clone, Debug)]
pub struct ConfigFiles {
    given: Vec<PathBuf>,
    local: Option<PathBuf>,
}

impl ConfigFiles {
    /// The files `given` (aastra.cfg, then model, then MAC file) and, when `local` is
    /// set, that local file after them (missing is the same as empty).
    pub fn new(given: Vec<PathBuf>, local: Option<PathBuf>) -> ConfigFiles {
        ConfigFiles { given, local }
    }

    /// The local file beside the first given file ([`LOCAL_FILE`]).
    pub fn default_local(given: &[PathBuf]) -> PathBuf {
        directory_of(given.first().map_or(Path::new("."), PathBuf::as_path)).join(LOCAL_FILE)
    }

    /// The given files.
    pub fn given(&self) -> &[PathBuf] {
        &self.given
    }

    /// The local file, if there is one.
    pub fn local(&self) -> Option<&Path> {
        self.local.as_deref()
    }

    /// The directory of the first given file: relative certificate names are taken from it.
    pub fn base_dir(&self) -> PathBuf {
        directory_of(self.given.first().map_or(Path::new("."), PathBuf::as_path))
    }

    /// The local file's text: empty when there is no local file or it does not exist yet.
    ///
    /// # Errors
    ///
    /// The file exists and cannot be read, or is not UTF-8.
    pub fn read_local(&self) -> Result<String, Problem> {
        let Some(path) = &self.local else { return Ok(String::new()) };
        match std::fs::read(path) {
            Ok(bytes) => text_of(path, bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(general(format!("{}: cannot read the file: {e}", path.display()))),
        }
    }

    /// Loads the given files and the local file as it is on disk.
    ///
    /// # Errors
    ///
    /// Every problem: a file that cannot be read, each error of [`aastra::load`].
    pub fn load(&self) -> Result<Loaded, Vec<Problem>> {
        let local = self.read_local().map_err(|p| vec![p])?;
        self.load_with_local(&local)
    }

    /// Loads the given files with `local` as the local file's text (a change to be
    /// checked before it is written).
    ///
    /// # Errors
    ///
    /// As [`ConfigFiles::load`].
    pub fn load_with_local(&self, local: &str) -> Result<Loaded, Vec<Problem>> {
        let mut texts = Vec::new();
        let mut problems = Vec::new();
        for p in &self.given {
            match std::fs::read(p).map_err(|e| general(format!("{}: cannot read the file: {e}", p.display()))) {
                Ok(bytes) => match text_of(p, bytes) {
                    Ok(text) => texts.push((p.display().to_string(), text)),
                    Err(e) => problems.push(e),
                },
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if let Some(path) = &self.local {
            texts.push((path.display().to_string(), local.to_owned()));
        }
        let sources: Vec<Source<'_>> = texts.iter().map(|(name, text)| Source { name, text }).collect();
        aastra::load(&sources).map_err(|ds| {
            ds.into_iter().map(|d| Problem { parameter: d.parameter.clone(), message: d.to_string() }).collect()
        })
    }

    /// Checks the certificate files that `loaded` names as the phone does at start-up.
    ///
    /// # Errors
    ///
    /// The first file that cannot be used, with its parameter.
    pub fn check_certificates(&self, loaded: &Loaded) -> Result<ClientTls, Problem> {
        ClientTls::load(&loaded.config.certificates, loaded.config.mode, &self.base_dir())
            .map_err(|e| Problem { parameter: Some(e.parameter.to_owned()), message: e.to_string() })
    }

    /// Replaces the local file with `text`, atomically, keeping the previous version as
    /// `<file>.bak`. The file is readable by its owner only: it may hold a line's
    /// password, as the given files do.
    ///
    /// # Errors
    ///
    /// There is no local file, or the file system refused.
    pub fn write_local(&self, text: &str) -> std::io::Result<()> {
        let Some(path) = &self.local else {
            return Err(std::io::Error::other("no local configuration file is set"));
        };
        if path.exists() {
            let backup = with_suffix(path, ".bak");
            write_atomically(&backup, &std::fs::read(path)?)?;
        }
        write_atomically(path, text.as_bytes())
    }

    /// Writes an uploaded file named `name` into the local file's directory, atomically
    /// and readable by its owner only, and returns its path.
    ///
    /// # Errors
    ///
    /// There is no local file, `name` is not a plain file name, or the file system
    /// refused.
    pub fn write_beside_local(&self, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let Some(local) = &self.local else {
            return Err(std::io::Error::other("no local configuration file is set"));
        };
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(std::io::Error::other(format!("not a plain file name: {name:?}")));
        }
        let path = directory_of(local).join(name);
        write_atomically(&path, bytes)?;
        Ok(path)
    }
}

fn general(message: String) -> Problem {
    Problem { parameter: None, message }
}

fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, Problem> {
    String::from_utf8(bytes).map_err(|e| {
        general(format!("{}: not a text file (invalid UTF-8 at byte {})", path.display(), e.utf8_error().valid_up_to()))
    })
}

/// The directory that relative names are taken from.
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `bytes` to a new file beside `path`, flushes it to disk, then renames it over
/// `path`: a reader sees the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = with_suffix(path, &format!(".new-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sip-ptls-config-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const GIVEN: &str = "sip transport protocol: 4\nsips persistent tls: 1\nsips trusted certificates: ca.pem\n\
                         sip proxy ip: pbx.example\nsip proxy port: 5061\nsip line1 user name: 1001\n";

    #[test]
    fn the_local_file_wins_and_its_problems_name_their_parameter() {
        let dir = scratch("layers");
        let given = dir.join("aastra.cfg");
        std::fs::write(&given, GIVEN).unwrap();
        let files = ConfigFiles::new(vec![given.clone()], Some(ConfigFiles::default_local(&[given])));
        assert_eq!(files.local(), Some(dir.join(LOCAL_FILE).as_path()));
        let loaded = files.load().unwrap();
        assert_eq!(loaded.config.proxy.as_ref().map(|p| p.host.as_str()), Some("pbx.example"));
        files.write_local("sip proxy ip: other.example\n").unwrap();
        let loaded = files.load().unwrap();
        assert_eq!(loaded.config.proxy.as_ref().map(|p| p.host.as_str()), Some("other.example"));
        let problems = files.load_with_local("sip transaction timer: 10\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].parameter.as_deref(), Some("sip transaction timer"));
        assert!(problems[0].message.contains(LOCAL_FILE), "{}", problems[0].message);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn writing_keeps_the_previous_version_and_the_owner_alone_reads_it() {
        let dir = scratch("write");
        let given = dir.join("aastra.cfg");
        std::fs::write(&given, GIVEN).unwrap();
        let files = ConfigFiles::new(vec![given], Some(dir.join("local.cfg")));
        files.write_local("sip proxy port: 5062\n").unwrap();
        files.write_local("sip proxy port: 5063\n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("local.cfg")).unwrap(), "sip proxy port: 5063\n");
        assert_eq!(std::fs::read_to_string(dir.join("local.cfg.bak")).unwrap(), "sip proxy port: 5062\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("local.cfg")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
        assert!(files.write_beside_local("../escape.pem", b"x").is_err());
        assert!(files.write_beside_local(".hidden", b"x").is_err());
        let pem = files.write_beside_local("uploaded.pem", b"pem").unwrap();
        assert_eq!(pem, dir.join("uploaded.pem"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
