//! Test certificates, generated at test time (the library's `TestPki`) so that no
//! private key is ever committed: a CA, server certificates for the primary and the backup (a name plus the
//! IP SAN 127.0.0.1, the address the phone dials), a client certificate for mutual TLS,
//! and the negative ones (a wrong name, an expired one, one from another CA); for DNS
//! location, certificates naming the SIP domain (one of them revoked by a revocation
//! list our CA signs, one from the other CA) and one naming only an SRV target.

pub use sip_ptls::registrar::PemFiles as CertFiles;
use sip_ptls::registrar::{CertKey, RegistrarError, TestDir, TestPki};
use std::path::PathBuf;

/// Name of the primary in its certificate (besides the IP SAN 127.0.0.1).
pub const PRIMARY_NAME: &str = "primary.sip-ptls.test";
/// Name of the backup in its certificate (besides the IP SAN 127.0.0.1).
pub const BACKUP_NAME: &str = "backup.sip-ptls.test";

/// The SIP domain of a phone that locates its proxies by DNS: the name every proxy's
/// certificate carries (RFC 5922), whatever its SRV target is called.
pub const DNS_DOMAIN: &str = "example.test";

/// The backup's SIP domain when located by DNS: its certificate names it (RFC 5922).
pub const DNS_BACKUP_DOMAIN: &str = "backup.test";

/// An SRV target of [`DNS_DOMAIN`]: the only name of [`ServerCert::SrvTargetOnly`].
pub const DNS_TARGET: &str = "sip1.example.test";

/// The serial number of [`ServerCert::DomainRevoked`], which [`Pki::crl`] revokes.
pub const REVOKED_SERIAL: u64 = 0x5e1;

/// Which server certificate an instance presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCert {
    /// Valid, for `primary.sip-ptls.test` and 127.0.0.1.
    Primary,
    /// Valid, for `backup.sip-ptls.test` and 127.0.0.1.
    Backup,
    /// Valid, for the SIP domain `example.test` only (no address, no host name).
    Domain,
    /// Valid, for the backup's SIP domain `backup.test` only.
    BackupDomain,
    /// Signed by our CA but for `wrong.sip-ptls.test` only: no SAN matches 127.0.0.1.
    WrongName,
    /// Right names, signed by our CA, but it expired in 2001.
    Expired,
    /// Right names, but issued by a CA the phone does not trust.
    OtherCa,
    /// For the SIP domain `example.test` only, signed by our CA, serial
    /// [`REVOKED_SERIAL`]: refused by a phone given [`Pki::crl`].
    DomainRevoked,
    /// For the SIP domain `example.test` only, issued by the other CA.
    DomainOtherCa,
    /// Signed by our CA for the SRV target [`DNS_TARGET`] only, not the SIP domain:
    /// refused under RFC 5922.
    SrvTargetOnly,
}

/// Every file the tests need, written into one directory.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA the phone trusts (also the CA Kamailio checks client certificates against).
    pub ca: PathBuf,
    /// The other CA, trusted by nobody.
    pub other_ca: PathBuf,
    /// Server certificates by kind.
    pub primary: CertFiles,
    /// See [`ServerCert::Backup`].
    pub backup: CertFiles,
    /// See [`ServerCert::Domain`].
    pub domain: CertFiles,
    /// See [`ServerCert::BackupDomain`].
    pub backup_domain: CertFiles,
    /// See [`ServerCert::WrongName`].
    pub wrong_name: CertFiles,
    /// See [`ServerCert::Expired`].
    pub expired: CertFiles,
    /// See [`ServerCert::OtherCa`].
    pub other_ca_server: CertFiles,
    /// The phone's own certificate for mutual TLS, signed by our CA.
    pub client: CertFiles,
    /// A client certificate from the other CA (Kamailio must refuse it).
    pub client_other_ca: CertFiles,
    /// See [`ServerCert::DomainRevoked`].
    pub domain_revoked: CertFiles,
    /// See [`ServerCert::DomainOtherCa`].
    pub domain_other_ca: CertFiles,
    /// See [`ServerCert::SrvTargetOnly`].
    pub srv_target_only: CertFiles,
    /// A revocation list (PEM) our CA signs, naming [`REVOKED_SERIAL`] only, current
    /// until 2099.
    pub crl: PathBuf,
}

impl Pki {
    /// The files of a server certificate kind.
    pub fn server(&self, which: ServerCert) -> &CertFiles {
        match which {
            ServerCert::Primary => &self.primary,
            ServerCert::Backup => &self.backup,
            ServerCert::Domain => &self.domain,
            ServerCert::BackupDomain => &self.backup_domain,
            ServerCert::WrongName => &self.wrong_name,
            ServerCert::Expired => &self.expired,
            ServerCert::OtherCa => &self.other_ca_server,
            ServerCert::DomainRevoked => &self.domain_revoked,
            ServerCert::DomainOtherCa => &self.domain_other_ca,
            ServerCert::SrvTargetOnly => &self.srv_target_only,
        }
    }
}

/// Generates every certificate into `dir` (fresh keys each time), with the same CA code
/// as the embedded registrar's tests.
pub fn generate(dir: &TestDir) -> Pki {
    let ca = TestPki::new().expect("CA");
    let other = TestPki::other_ca().expect("other CA");
    let write = |name: &str, cert: Result<CertKey, RegistrarError>| {
        dir.write_cert(name, &cert.expect("leaf certificate")).expect("write certificate")
    };
    Pki {
        ca: dir.write("ca.pem", &ca.ca_pem).expect("write CA"),
        other_ca: dir.write("other-ca.pem", &other.ca_pem).expect("write other CA"),
        primary: write("primary", ca.server_cert(&[PRIMARY_NAME, "127.0.0.1"])),
        backup: write("backup", ca.server_cert(&[BACKUP_NAME, "127.0.0.1"])),
        domain: write("domain", ca.server_cert(&[DNS_DOMAIN])),
        backup_domain: write("backup-domain", ca.server_cert(&[DNS_BACKUP_DOMAIN])),
        wrong_name: write("wrong-name", ca.server_cert(&["wrong.sip-ptls.test"])),
        expired: write("expired", ca.expired_server_cert(&[PRIMARY_NAME, "127.0.0.1"])),
        other_ca_server: write("other-ca-server", other.server_cert(&[PRIMARY_NAME, "127.0.0.1"])),
        client: write("client", ca.client_cert("phone.sip-ptls.test")),
        client_other_ca: write("client-other-ca", other.client_cert("phone.sip-ptls.test")),
        domain_revoked: write("domain-revoked", ca.server_cert_with_serial(&[DNS_DOMAIN], REVOKED_SERIAL)),
        domain_other_ca: write("domain-other-ca", other.server_cert(&[DNS_DOMAIN])),
        srv_target_only: write("srv-target-only", ca.server_cert(&[DNS_TARGET])),
        crl: dir
            .write("revoked.crl", ca.revocation_list(&[REVOKED_SERIAL], false).expect("revocation list"))
            .expect("write the revocation list"),
    }
}
