//! Test certificates, generated at test time with rcgen so that no private key is ever
//! committed: a CA, server certificates for the primary and the backup (a name plus the
//! IP SAN 127.0.0.1, the address the phone dials), a client certificate for mutual TLS,
//! and the negative ones (a wrong name, an expired one, one from another CA).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Name of the primary in its certificate (besides the IP SAN 127.0.0.1).
pub const PRIMARY_NAME: &str = "primary.sip-ptls.test";
/// Name of the backup in its certificate (besides the IP SAN 127.0.0.1).
pub const BACKUP_NAME: &str = "backup.sip-ptls.test";

/// A server or client certificate with its key, as PEM files in the test directory.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
}

/// Which server certificate an instance presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCert {
    /// Valid, for `primary.sip-ptls.test` and 127.0.0.1.
    Primary,
    /// Valid, for `backup.sip-ptls.test` and 127.0.0.1.
    Backup,
    /// Signed by our CA but for `wrong.sip-ptls.test` only: no SAN matches 127.0.0.1.
    WrongName,
    /// Right names, signed by our CA, but it expired in 2020.
    Expired,
    /// Right names, but issued by a CA the phone does not trust.
    OtherCa,
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
}

impl Pki {
    /// The files of a server certificate kind.
    pub fn server(&self, which: ServerCert) -> &CertFiles {
        match which {
            ServerCert::Primary => &self.primary,
            ServerCert::Backup => &self.backup,
            ServerCert::WrongName => &self.wrong_name,
            ServerCert::Expired => &self.expired,
            ServerCert::OtherCa => &self.other_ca_server,
        }
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn leaf_params(common_name: &str, names: &[&str], ip: bool, client: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    for name in names {
        params.subject_alt_names.push(SanType::DnsName((*name).try_into().expect("valid DNS name")));
    }
    if ip {
        params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    params
}

fn write(dir: &Path, name: &str, cert_pem: &str, key: &KeyPair) -> CertFiles {
    let cert = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert, cert_pem).expect("write certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    CertFiles { cert, key: key_path }
}

/// Generates every certificate into `dir` (fresh keys each time).
pub fn generate(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params("sip-ptls test CA").self_signed(&ca_key).expect("CA certificate");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).expect("write CA");
    let issuer = Issuer::new(ca_params("sip-ptls test CA"), ca_key);

    let other_key = KeyPair::generate().expect("other CA key");
    let other_cert = ca_params("sip-ptls untrusted CA").self_signed(&other_key).expect("other CA certificate");
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, other_cert.pem()).expect("write other CA");
    let other_issuer = Issuer::new(ca_params("sip-ptls untrusted CA"), other_key);

    let leaf = |name: &str, params: CertificateParams, by: &Issuer<'_, KeyPair>| {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, by).expect("leaf certificate");
        write(dir, name, &cert.pem(), &key)
    };
    let mut expired = leaf_params(PRIMARY_NAME, &[PRIMARY_NAME], true, false);
    expired.not_before = rcgen::date_time_ymd(2019, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2020, 1, 1);

    Pki {
        primary: leaf("primary", leaf_params(PRIMARY_NAME, &[PRIMARY_NAME], true, false), &issuer),
        backup: leaf("backup", leaf_params(BACKUP_NAME, &[BACKUP_NAME], true, false), &issuer),
        wrong_name: leaf(
            "wrong-name",
            leaf_params("wrong.sip-ptls.test", &["wrong.sip-ptls.test"], false, false),
            &issuer,
        ),
        expired: leaf("expired", expired, &issuer),
        other_ca_server: leaf(
            "other-ca-server",
            leaf_params(PRIMARY_NAME, &[PRIMARY_NAME], true, false),
            &other_issuer,
        ),
        client: leaf("client", leaf_params("phone.sip-ptls.test", &["phone.sip-ptls.test"], false, true), &issuer),
        client_other_ca: leaf(
            "client-other-ca",
            leaf_params("phone.sip-ptls.test", &["phone.sip-ptls.test"], false, true),
            &other_issuer,
        ),
        ca,
        other_ca,
    }
}
