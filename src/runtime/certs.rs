//! Reads the certificate files named by the Aastra parameters and checks them before the
//! phone starts: a missing, unreadable, non-PEM or expired file, or a key that does not
//! match its certificate, is an error naming the parameter and the file. A certificate
//! revocation list past its `nextUpdate` is used all the same and reported as a warning
//! (docs/configuration.md, "Certificate revocation").
//!
//! The private key is handled so that it cannot leak: the file's bytes and the decoded
//! key are wiped when dropped, the key is turned into rustls's signing key at once, no
//! `Debug` shows it, and no error message quotes anything read from the key file.

use super::der;
use crate::config::{CertificateFiles, TransportMode};
use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, InconsistentKeys};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// Aastra name of the trusted certificates file.
pub const TRUSTED_CERTIFICATES: &str = "sips trusted certificates";
/// Aastra name of the chain sent with the local certificate.
pub const ROOT_AND_INTERMEDIATE: &str = "sips root and intermediate certificates";
/// Aastra name of the phone's own certificate.
pub const LOCAL_CERTIFICATE: &str = "sips local certificate";
/// Aastra name of the private key of the local certificate.
pub const PRIVATE_KEY: &str = "sips private key";
/// Name of the certificate revocation lists file (an extension of the Aastra set).
pub const REVOCATION_LIST: &str = "sips certificate revocation list";

/// A certificate file that cannot be used, naming the parameter and the file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct CertFileError {
    /// The Aastra parameter that names the file.
    pub parameter: &'static str,
    /// The file, resolved against the base directory.
    pub file: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for CertFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file.as_os_str().is_empty() {
            write!(f, "`{}`: {}", self.parameter, self.problem)
        } else {
            write!(f, "`{}` ({}): {}", self.parameter, self.file.display(), self.problem)
        }
    }
}

/// The contents of the certificate files, checked.
#[derive(Debug)]
pub struct Credentials {
    /// The CAs that verify the proxy.
    pub roots: RootCertStore,
    /// The local certificate followed by the root and intermediate chain, with its
    /// signing key, when mutual TLS is configured. Its `Debug` names the key's algorithm,
    /// never the key.
    pub client: Option<Arc<CertifiedKey>>,
    /// The certificate revocation lists the proxy's chain is checked against (none: no
    /// revocation check).
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// What is usable but should be seen: a revocation list past its `nextUpdate`.
    pub warnings: Vec<String>,
}

/// A decoded private key, wiped when dropped (the DER the PEM file decodes to).
struct KeyDer(PrivateKeyDer<'static>);

impl Drop for KeyDer {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A configured file name, resolved: relative names are taken from `base_dir`.
pub fn resolve(base_dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) }
}

struct File {
    parameter: &'static str,
    path: PathBuf,
}

impl File {
    fn error(&self, problem: impl Into<String>) -> CertFileError {
        CertFileError { parameter: self.parameter, file: self.path.clone(), problem: problem.into() }
    }

    fn read(&self) -> Result<Vec<u8>, CertFileError> {
        std::fs::read(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => self.error("file not found"),
            std::io::ErrorKind::PermissionDenied => self.error("cannot read the file: permission denied"),
            _ => self.error(format!("cannot read the file: {e}")),
        })
    }

    /// Every certificate in the file, each checked to be in its validity period.
    fn certificates(&self, now_unix: i64) -> Result<Vec<CertificateDer<'static>>, CertFileError> {
        let bytes = self.read()?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(format!("not a PEM file: {}", pem_problem(&e))))?;
        if certs.is_empty() {
            return Err(self.error("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"));
        }
        for (i, cert) in certs.iter().enumerate() {
            let nth = if certs.len() == 1 { "the certificate".to_owned() } else { format!("certificate {}", i + 1) };
            let v = der::validity(cert).ok_or_else(|| self.error(format!("{nth} is not a valid X.509 certificate")))?;
            if v.not_after < now_unix {
                return Err(self.error(format!("{nth} expired on {}", utc(v.not_after))));
            }
            if v.not_before > now_unix {
                return Err(self.error(format!("{nth} is not valid before {}", utc(v.not_before))));
            }
        }
        Ok(certs)
    }

    /// Every certificate revocation list in the file, and a warning for each that is past
    /// its `nextUpdate`. Its signature is checked by the verifier when it is built.
    fn revocation_lists(
        &self,
        now_unix: i64,
    ) -> Result<(Vec<CertificateRevocationListDer<'static>>, Vec<String>), CertFileError> {
        let bytes = self.read()?;
        let crls: Vec<CertificateRevocationListDer<'static>> = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(format!("not a PEM file: {}", pem_problem(&e))))?;
        if crls.is_empty() {
            return Err(self.error("no PEM revocation list (-----BEGIN X509 CRL-----) in the file"));
        }
        let mut warnings = Vec::new();
        for (i, crl) in crls.iter().enumerate() {
            let nth =
                if crls.len() == 1 { "the revocation list".to_owned() } else { format!("revocation list {}", i + 1) };
            match der::crl_next_update(crl) {
                None => return Err(self.error(format!("{nth} is not a valid X.509 revocation list"))),
                Some(Some(next)) if next < now_unix => warnings.push(format!(
                    "`{}` ({}): {nth} expected its successor on {}; it is still used, so the certificates it revokes stay refused",
                    self.parameter,
                    self.path.display(),
                    utc(next)
                )),
                Some(_) => {}
            }
        }
        Ok((crls, warnings))
    }

    /// The key, from a buffer wiped on drop (`fs::read` sizes it from the file's length,
    /// so no earlier, smaller copy is left behind by a reallocation).
    fn private_key(&self) -> Result<KeyDer, CertFileError> {
        let bytes = Zeroizing::new(self.read()?);
        PrivateKeyDer::from_pem_slice(&bytes).map(KeyDer).map_err(|e| match e {
            pem::Error::NoItemsFound => self.error("no PEM private key (-----BEGIN … PRIVATE KEY-----) in the file"),
            e => self.error(format!("not a PEM private key: {}", key_pem_problem(&e))),
        })
    }
}

/// Like [`pem_problem`], but with fixed words only: the PEM errors may carry text read
/// from the file, which for a key file is key material.
fn key_pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line",
        pem::Error::Base64Decode(_) => "invalid base64 inside a PEM section",
        pem::Error::Io(_) => "the file cannot be read",
        _ => "the PEM structure is not valid",
    }
}

fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line".to_owned(),
        pem::Error::Base64Decode(_) => "invalid base64 inside a PEM section".to_owned(),
        e => e.to_string(),
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn configured(name: &Option<String>) -> Option<&str> {
    name.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The certificate of `cert_file` (its first; the rest is dropped) followed by `chain`,
/// with the key of `key_file`, checked to match.
fn certified_key(
    cert_file: &File,
    mut certs: Vec<CertificateDer<'static>>,
    key_file: &File,
    chain: Vec<CertificateDer<'static>>,
) -> Result<Arc<CertifiedKey>, CertFileError> {
    let key = key_file.private_key()?;
    certs.truncate(1);
    certs.extend(chain);
    // ring's loader borrows the DER (the provider's `load_private_key` would take an
    // unwiped copy), and the DER is wiped as soon as the signing key exists.
    let signing = rustls::crypto::ring::sign::any_supported_type(&key.0)
        .map_err(|_| key_file.error("not a usable private key (RSA, ECDSA P-256/P-384 or Ed25519 expected)"))?;
    drop(key);
    let certified = CertifiedKey::new(certs, signing);
    match certified.keys_match() {
        // As rustls itself does: a key type that cannot tell is not a mismatch.
        Ok(()) | Err(TlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(TlsError::InconsistentKeys(_)) => {
            return Err(key_file.error(format!(
                "the key does not match the certificate in `{}` ({})",
                cert_file.parameter,
                cert_file.path.display()
            )));
        }
        Err(e) => return Err(cert_file.error(format!("the certificate cannot be used: {e}"))),
    }
    Ok(Arc::new(certified))
}

/// What names the web interface's certificate in errors.
pub const WEB_CERTIFICATE: &str = "--web-cert";
/// What names the web interface's private key in errors.
pub const WEB_PRIVATE_KEY: &str = "--web-key";

/// The web interface's certificate (leaf first, then its chain) and key, checked as the
/// phone's own are (PEM, in their validity period, the key matching the certificate).
pub fn load_server_identity(cert: &Path, key: &Path, now_unix: i64) -> Result<Arc<CertifiedKey>, CertFileError> {
    let cert_file = File { parameter: WEB_CERTIFICATE, path: cert.to_path_buf() };
    let key_file = File { parameter: WEB_PRIVATE_KEY, path: key.to_path_buf() };
    // One read of the file: its leaf, and the chain that follows it.
    let certs = cert_file.certificates(now_unix)?;
    let chain = certs.get(1..).map(<[_]>::to_vec).unwrap_or_default();
    certified_key(&cert_file, certs, &key_file, chain)
}

/// Reads and checks every configured certificate file at `now_unix` (seconds since the
/// epoch). Relative names are resolved against `base_dir`.
pub fn load(
    files: &CertificateFiles,
    mode: TransportMode,
    base_dir: &Path,
    now_unix: i64,
) -> Result<Credentials, CertFileError> {
    let file = |parameter, name: &str| File { parameter, path: resolve(base_dir, name) };
    let Some(trusted) = configured(&files.trusted_certificates) else {
        let why = match mode {
            TransportMode::PersistentTls => "required: Persistent TLS verifies the proxy against these CAs",
            TransportMode::PerCallTls => "required: the proxy's certificate is always verified against these CAs",
        };
        return Err(CertFileError { parameter: TRUSTED_CERTIFICATES, file: PathBuf::new(), problem: why.to_owned() });
    };
    let trusted = file(TRUSTED_CERTIFICATES, trusted);
    let mut roots = RootCertStore::empty();
    for (i, cert) in trusted.certificates(now_unix)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| trusted.error(format!("certificate {} cannot be used as a trust anchor: {e}", i + 1)))?;
    }
    let chain = match configured(&files.root_and_intermediate) {
        Some(name) => file(ROOT_AND_INTERMEDIATE, name).certificates(now_unix)?,
        None => Vec::new(),
    };
    let client = match (configured(&files.local_certificate), configured(&files.private_key)) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(CertFileError {
                parameter: PRIVATE_KEY,
                file: PathBuf::new(),
                problem: "required: a local certificate is configured without its key".to_owned(),
            });
        }
        (None, Some(_)) => {
            return Err(CertFileError {
                parameter: LOCAL_CERTIFICATE,
                file: PathBuf::new(),
                problem: "required: a private key is configured without its certificate".to_owned(),
            });
        }
        (Some(cert_name), Some(key_name)) => {
            let cert_file = file(LOCAL_CERTIFICATE, cert_name);
            let certs = cert_file.certificates(now_unix)?;
            Some(certified_key(&cert_file, certs, &file(PRIVATE_KEY, key_name), chain)?)
        }
    };
    let (crls, warnings) = match configured(&files.revocation_list) {
        Some(name) => {
            let lists = file(REVOCATION_LIST, name);
            let (crls, warnings) = lists.revocation_lists(now_unix)?;
            // The verifier parses each list as it is built: a list it cannot use is named
            // here, with its file, rather than when the first connection is made.
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots.clone()), provider)
                .with_crls(crls.clone())
                .build()
                .map_err(|e| lists.error(format!("cannot be used: {e}")))?;
            (crls, warnings)
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(Credentials { roots, client, crls, warnings })
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_868_800), "2000-03-01 00:00:00 UTC");
        assert_eq!(utc(2_524_607_999), "2049-12-31 23:59:59 UTC");
    }
}
