//! Test certificates made at run time with rcgen: a CA, server and client certificates
//! it signs, an expired server certificate, an unrelated CA for "untrusted" tests, and
//! certificate revocation lists the CA signs.

use super::error::RegistrarError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};

/// A certificate chain and its private key, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertKey {
    /// The certificate (leaf first; the CA is not included).
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

/// A throw-away certificate authority that signs server and client certificates.
pub struct TestPki {
    /// The CA certificate, PEM: what a verifying client (or a mutual-TLS server) trusts.
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").field("ca_pem", &self.ca_pem).finish_non_exhaustive()
    }
}

fn cert_err(e: rcgen::Error) -> RegistrarError {
    RegistrarError::Certificate(e.to_string())
}

impl TestPki {
    /// A new CA named "sip-ptls test CA".
    pub fn new() -> Result<TestPki, RegistrarError> {
        TestPki::with_name("sip-ptls test CA")
    }

    /// An unrelated CA: certificates it signs are not trusted by clients of [`TestPki::new`].
    pub fn other_ca() -> Result<TestPki, RegistrarError> {
        TestPki::with_name("sip-ptls unrelated CA")
    }

    fn with_name(name: &str) -> Result<TestPki, RegistrarError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).map_err(cert_err)?;
        Ok(TestPki { ca_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// A server certificate for these names: DNS names and IP literals become SANs.
    pub fn server_cert(&self, names: &[&str]) -> Result<CertKey, RegistrarError> {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, false)
    }

    /// A client certificate (for mutual TLS) whose common name and DNS SAN is `name`.
    pub fn client_cert(&self, name: &str) -> Result<CertKey, RegistrarError> {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    /// A server certificate for these names that expired in 2001.
    pub fn expired_server_cert(&self, names: &[&str]) -> Result<CertKey, RegistrarError> {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, true)
    }

    /// A server certificate for these names with this serial number, so that a
    /// revocation list can name it.
    pub fn server_cert_with_serial(&self, names: &[&str], serial: u64) -> Result<CertKey, RegistrarError> {
        self.leaf_with(names, ExtendedKeyUsagePurpose::ServerAuth, false, Some(serial))
    }

    /// A certificate revocation list (PEM) signed by this CA that revokes these serial
    /// numbers; issued in 2020, expecting its successor in 2099, or in 2021 when
    /// `stale` (a list past its `nextUpdate`).
    pub fn revocation_list(&self, revoked: &[u64], stale: bool) -> Result<String, RegistrarError> {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: if stale { rcgen::date_time_ymd(2021, 1, 1) } else { rcgen::date_time_ymd(2099, 1, 1) },
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: rcgen::date_time_ymd(2020, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).map_err(cert_err)?.pem().map_err(cert_err)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool) -> Result<CertKey, RegistrarError> {
        self.leaf_with(names, usage, expired, None)
    }

    fn leaf_with(
        &self,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
        serial: Option<u64>,
    ) -> Result<CertKey, RegistrarError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(cert_err)?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.extended_key_usages = vec![usage];
        params.serial_number = serial.map(SerialNumber::from);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).map_err(cert_err)?;
        Ok(CertKey { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}
