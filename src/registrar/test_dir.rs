//! Throw-away directories for the files of the demo, the tests and the benchmarks
//! (certificates, configurations, logs), and PEM certificate files written into them.

use super::error::RegistrarError;
use super::pki::CertKey;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// When a [`TestDir`] outlives its drop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Always removed.
    #[default]
    Never,
    /// Kept when dropped during a panic, so that a failed test's files can be read.
    OnPanic,
    /// Never removed.
    Always,
}

/// A fresh directory under the system's temporary directory, removed when dropped
/// (see [`Keep`]).
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
    keep: Keep,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistrarError + '_ {
    move |source| RegistrarError::File { path: path.to_path_buf(), source }
}

impl TestDir {
    /// Creates `$TMPDIR/sip-ptls-<label>-<pid>-<n>`. One left by an earlier process with
    /// the same id is emptied first: its files would otherwise leak into this run.
    pub fn new(label: &str) -> Result<TestDir, RegistrarError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sip-ptls-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(io_err(&path))?;
        Ok(TestDir { path, keep: Keep::Never })
    }

    /// The same directory, kept as `keep` says.
    pub fn keep(mut self, keep: Keep) -> TestDir {
        self.keep = keep;
        self
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` into it; returns the file's path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf, RegistrarError> {
        let path = self.path.join(name);
        std::fs::write(&path, contents).map_err(io_err(&path))?;
        Ok(path)
    }

    /// Writes a certificate and its key as `<name>.pem` and `<name>.key`.
    pub fn write_cert(&self, name: &str, cert: &CertKey) -> Result<PemFiles, RegistrarError> {
        let files = PemFiles::named(&self.path, name);
        std::fs::write(&files.cert, &cert.cert_pem).map_err(io_err(&files.cert))?;
        std::fs::write(&files.key, &cert.key_pem).map_err(io_err(&files.key))?;
        Ok(files)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let kept = match self.keep {
            Keep::Never => false,
            Keep::OnPanic => std::thread::panicking(),
            Keep::Always => true,
        };
        if !kept {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A certificate and its private key as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

impl PemFiles {
    /// `<dir>/<name>.pem` and `<dir>/<name>.key`, as [`TestDir::write_cert`] names them.
    pub fn named(dir: &Path, name: &str) -> PemFiles {
        PemFiles { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) }
    }

    /// Reads both files back.
    pub fn read(&self) -> Result<CertKey, RegistrarError> {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(io_err(p));
        Ok(CertKey { cert_pem: read(&self.cert)?, key_pem: read(&self.key)? })
    }
}
