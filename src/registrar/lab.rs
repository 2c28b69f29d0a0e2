//! The set-up shared by the demo, the runtime tests and the end-to-end benchmarks: a test
//! CA written as `ca.pem` into a fresh directory, registrars on loopback with certificates
//! it signs, and the base of a phone configuration that trusts it.

use super::error::RegistrarError;
use super::pki::{CertKey, TestPki};
use super::test_dir::TestDir;
use super::{Registrar, RegistrarConfig};
use crate::config::{AccountConfig, CertificateFiles, Config, ServerAddr};
use std::net::SocketAddr;

/// The names on a loopback registrar's certificate: the phone dials the IP literal.
pub const LOOPBACK_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The CA file's name in [`Lab::dir`], relative so that it resolves against the phone's
/// base directory.
pub const CA_FILE: &str = "ca.pem";

/// A test CA and the directory holding its certificate.
#[derive(Debug)]
pub struct Lab {
    /// The CA that signs every certificate of the lab.
    pub pki: TestPki,
    /// Holds [`CA_FILE`]; the phones' base directory.
    pub dir: TestDir,
}

impl Lab {
    /// A new CA, written into a new [`TestDir`] labelled `label`.
    pub fn new(label: &str) -> Result<Lab, RegistrarError> {
        let pki = TestPki::new()?;
        let dir = TestDir::new(label)?;
        dir.write(CA_FILE, &pki.ca_pem)?;
        Ok(Lab { pki, dir })
    }

    /// A server certificate for [`LOOPBACK_NAMES`], signed by the lab's CA.
    pub fn loopback_cert(&self) -> Result<CertKey, RegistrarError> {
        self.pki.server_cert(&LOOPBACK_NAMES)
    }

    /// Starts a registrar for `domain` and `users` with a [`Lab::loopback_cert`], its
    /// configuration changed by `adjust` first.
    pub fn registrar(
        &self,
        domain: &str,
        users: &[(&str, &str)],
        adjust: impl FnOnce(&mut RegistrarConfig),
    ) -> Result<Registrar, RegistrarError> {
        let mut config = RegistrarConfig::new(domain, users, self.loopback_cert()?);
        adjust(&mut config);
        Registrar::start(config)
    }
}

/// A phone that registers `accounts` at `domain` through `proxy` (and `backup`), trusting
/// the lab's [`CA_FILE`] relative to its base directory, with a fresh random seed. Timers
/// are the defaults: callers set their own.
///
/// # Panics
///
/// If the OS random source fails (see [`os_seed`](crate::runtime::os_seed)): a lab phone
/// is for the demo, the tests and the benchmarks, which cannot go on without it.
pub fn phone_config(
    domain: &str,
    accounts: Vec<AccountConfig>,
    proxy: SocketAddr,
    backup: Option<SocketAddr>,
) -> Config {
    let addr = |a: SocketAddr| ServerAddr::new(a.ip().to_string(), a.port());
    Config {
        proxy: Some(addr(proxy)),
        backup_proxy: backup.map(addr),
        registrar: Some(ServerAddr::new(domain, 0)),
        accounts,
        certificates: CertificateFiles { trusted_certificates: Some(CA_FILE.into()), ..Default::default() },
        seed: crate::runtime::os_seed().unwrap_or_else(|e| panic!("no seed from the OS random source: {e}")),
        ..Config::default()
    }
}
