//! HTTP Digest authentication as used by SIP (RFC 3261 §22, RFC 2617 `qop=auth`,
//! RFC 8760 bringing the RFC 7616 SHA-256 algorithms to SIP): challenge parsing and
//! choice, client `Authorization` values, and the server-side check used by test servers.
//!
//! The cnonce is a parameter rather than generated here, so the core stays deterministic
//! (it comes from the seeded generator). `auth-int` is not supported: it would need the
//! body hash and no registrar in scope requires it.

use md5::{Digest, Md5};
use sha2::Sha256;

/// Hash algorithm of a digest challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617), the default when a challenge names none.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The token used in the `algorithm=` parameter.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses an `algorithm=` token, case-insensitively.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Preference when several challenges are offered (RFC 8760 §2.4: strongest first).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
        }
    }

    /// Lower-case hex digest of `data`.
    fn hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]).map(char::from).collect()
    }
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Challenge {
    /// Protection space; also selects the credentials.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo back unchanged.
    pub opaque: Option<String>,
    /// Hash algorithm (MD5 if the challenge names none).
    pub algorithm: Algorithm,
    /// The server offered `qop=auth` (then cnonce and nc are sent).
    pub qop_auth: bool,
    /// The previous nonce expired but the credentials were right: retry without asking
    /// the user.
    pub stale: bool,
}

/// Why a Digest header value could not be used.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DigestError {
    /// The authentication scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A required parameter is absent.
    #[error("digest parameter `{0}` is missing")]
    MissingParameter(&'static str),
    /// The algorithm is not one of MD5, MD5-sess, SHA-256, SHA-256-sess.
    #[error("digest algorithm `{0}` is not supported")]
    UnsupportedAlgorithm(String),
    /// The qop offered or used is not `auth`.
    #[error("digest qop `{0}` is not supported (only `auth` is)")]
    UnsupportedQop(String),
    /// The parameter list does not follow the auth-param grammar.
    #[error("malformed digest header: {0}")]
    Malformed(String),
}

/// Splits `Digest k=v, k="v", ...` into lower-case names and unquoted values.
fn parse_digest_params(value: &str) -> Result<Vec<(String, String)>, DigestError> {
    let value = value.trim_start();
    let scheme_end = value.find(char::is_whitespace).unwrap_or(value.len());
    if !value[..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(DigestError::NotDigest);
    }
    let chars: Vec<char> = value[scheme_end..].chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(out);
        }
        let name_start = i;
        while chars.get(i).is_some_and(|c| super::syntax::is_token_char(*c)) {
            i += 1;
        }
        let name: String = chars[name_start..i].iter().collect();
        if name.is_empty() {
            return Err(DigestError::Malformed(format!(
                "unexpected `{}` where a parameter name was expected",
                chars[i]
            )));
        }
        skip_ws(&mut i);
        if chars.get(i) != Some(&'=') {
            return Err(DigestError::Malformed(format!("parameter `{name}` has no value")));
        }
        i += 1;
        skip_ws(&mut i);
        let mut val = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(DigestError::Malformed(format!("unterminated quoted value of `{name}`")));
                    }
                    Some('"') => break,
                    Some('\\') => {
                        i += 1;
                        if let Some(c) = chars.get(i) {
                            val.push(*c);
                        }
                    }
                    Some(c) => val.push(*c),
                }
                i += 1;
            }
            i += 1;
        } else {
            while let Some(c) = chars.get(i).filter(|c| !c.is_whitespace() && **c != ',') {
                val.push(*c);
                i += 1;
            }
            if val.is_empty() {
                return Err(DigestError::Malformed(format!("parameter `{name}` is empty")));
            }
        }
        skip_ws(&mut i);
        if chars.get(i).is_some_and(|c| *c != ',') {
            return Err(DigestError::Malformed(format!("missing comma after parameter `{name}`")));
        }
        out.push((name.to_ascii_lowercase(), val));
    }
}

/// First value of a parameter (duplicates are ignored).
fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn require(params: &[(String, String)], name: &'static str) -> Result<String, DigestError> {
    get(params, name).map(str::to_string).ok_or(DigestError::MissingParameter(name))
}

fn algorithm(params: &[(String, String)]) -> Result<Algorithm, DigestError> {
    match get(params, "algorithm") {
        None => Ok(Algorithm::Md5),
        Some(a) => Algorithm::from_name(a).ok_or_else(|| DigestError::UnsupportedAlgorithm(a.into())),
    }
}

/// Parses a `WWW-Authenticate` or `Proxy-Authenticate` value.
pub fn parse_challenge(value: &str) -> Result<Challenge, DigestError> {
    let params = parse_digest_params(value)?;
    let realm = require(&params, "realm")?;
    let nonce = require(&params, "nonce")?;
    let algorithm = algorithm(&params)?;
    let qop_auth = match get(&params, "qop") {
        None => false,
        Some(q) if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) => true,
        Some(q) => return Err(DigestError::UnsupportedQop(q.into())),
    };
    Ok(Challenge {
        realm,
        nonce,
        opaque: get(&params, "opaque").map(str::to_string),
        algorithm,
        qop_auth,
        stale: get(&params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// The strongest usable challenge among several header values (SHA-256 variants before
/// MD5; among equals the first, i.e. the server's order). `None` if none can be used.
pub fn best_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for ch in values.into_iter().filter_map(|v| parse_challenge(v).ok()) {
        if best.as_ref().is_none_or(|b| ch.algorithm.strength() > b.algorithm.strength()) {
            best = Some(ch);
        }
    }
    best
}

/// The request-digest of RFC 2617 §3.2.2.1 (same formulas for RFC 7616 hashes).
#[allow(clippy::too_many_arguments)]
fn response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    qop_nc_cnonce: Option<(&str, &str, &str)>,
    cnonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let mut ha1 = alg.hex(&format!("{username}:{realm}:{password}"));
    if alg.is_sess() {
        ha1 = alg.hex(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = alg.hex(&format!("{method}:{uri}"));
    match qop_nc_cnonce {
        Some((qop, nc, cnonce)) => alg.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => alg.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Escapes a value for a quoted-string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The `Authorization` / `Proxy-Authorization` value answering `ch` for a request with
/// this method and Request-URI. `nc` counts uses of this nonce (from 1); `cnonce` and `nc`
/// are sent when the server offered `qop=auth`, and the cnonce also for `-sess`
/// algorithms, which hash it into HA1.
pub fn authorization(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let nc = format!("{nc:08x}");
    let qop = ch.qop_auth.then_some(("auth", nc.as_str(), cnonce));
    let resp = response(ch.algorithm, username, &ch.realm, password, &ch.nonce, qop, cnonce, method, uri);
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{resp}\", algorithm={}",
        quote(username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(uri),
        ch.algorithm.name()
    );
    if ch.qop_auth {
        out.push_str(&format!(", cnonce={}, qop=auth, nc={nc}", quote(cnonce)));
    } else if ch.algorithm.is_sess() {
        out.push_str(&format!(", cnonce={}", quote(cnonce)));
    }
    if let Some(opaque) = &ch.opaque {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    out
}

/// A parsed `Authorization` / `Proxy-Authorization` Digest value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authorization {
    /// User name.
    pub username: String,
    /// Realm from the challenge.
    pub realm: String,
    /// Nonce from the challenge.
    pub nonce: String,
    /// digest-uri: the Request-URI the client hashed.
    pub uri: String,
    /// The request-digest, hex.
    pub response: String,
    /// Algorithm (MD5 if absent).
    pub algorithm: Algorithm,
    /// Client nonce.
    pub cnonce: Option<String>,
    /// Nonce count, 8 hex digits as sent.
    pub nc: Option<String>,
    /// `auth` when quality of protection is used.
    pub qop: Option<String>,
    /// Opaque value echoed from the challenge.
    pub opaque: Option<String>,
}

/// Parses an `Authorization` or `Proxy-Authorization` value.
pub fn parse_authorization(value: &str) -> Result<Authorization, DigestError> {
    let params = parse_digest_params(value)?;
    let opt = |name: &str| get(&params, name).map(str::to_string);
    let auth = Authorization {
        username: require(&params, "username")?,
        realm: require(&params, "realm")?,
        nonce: require(&params, "nonce")?,
        uri: require(&params, "uri")?,
        response: require(&params, "response")?,
        algorithm: algorithm(&params)?,
        cnonce: opt("cnonce"),
        nc: opt("nc"),
        qop: opt("qop"),
        opaque: opt("opaque"),
    };
    if let Some(qop) = &auth.qop {
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(DigestError::UnsupportedQop(qop.clone()));
        }
        if auth.cnonce.is_none() {
            return Err(DigestError::MissingParameter("cnonce"));
        }
        if auth.nc.is_none() {
            return Err(DigestError::MissingParameter("nc"));
        }
    }
    if auth.algorithm.is_sess() && auth.cnonce.is_none() {
        return Err(DigestError::MissingParameter("cnonce"));
    }
    Ok(auth)
}

/// Server side: recomputes the response from the stored password and compares it.
/// Checking that the nonce is one the server issued (and fresh) is the caller's job.
pub fn verify(auth: &Authorization, password: &str, method: &str) -> bool {
    let cnonce = auth.cnonce.as_deref().unwrap_or("");
    let qop = match (&auth.qop, &auth.nc) {
        (Some(qop), Some(nc)) => Some((qop.as_str(), nc.as_str(), cnonce)),
        (Some(_), None) => return false,
        (None, _) => None,
    };
    let expected =
        response(auth.algorithm, &auth.username, &auth.realm, password, &auth.nonce, qop, cnonce, method, &auth.uri);
    // Length check first; the fold then compares every byte, whatever matches early.
    expected.len() == auth.response.len()
        && expected.bytes().zip(auth.response.bytes()).fold(true, |ok, (a, b)| ok & a.eq_ignore_ascii_case(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rfc2617() -> Challenge {
        Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: Algorithm::Md5,
            qop_auth: true,
            stale: false,
        }
    }

    #[test]
    fn rfc2617_example() {
        let ch = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(ch, rfc2617());
        let value = authorization(&ch, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b");
        assert_eq!(
            value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, \
             cnonce=\"0a4f113b\", qop=auth, nc=00000001, \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        let auth = parse_authorization(&value).unwrap();
        assert_eq!(auth.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(auth.nc.as_deref(), Some("00000001"));
        assert!(verify(&auth, "Circle Of Life", "GET"));
        assert!(!verify(&auth, "Circle of Life", "GET"));
        assert!(!verify(&auth, "Circle Of Life", "POST"));
    }

    #[test]
    fn rfc7616_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = parse_challenge(&format!(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="{nonce}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        ))
        .unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        let value = authorization(&sha, "Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, cnonce);
        assert!(value.contains("response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""));
        assert!(value.contains("algorithm=SHA-256"));
        assert!(verify(&parse_authorization(&value).unwrap(), "Circle of Life", "GET"));
        let md5 = Challenge { algorithm: Algorithm::Md5, ..sha };
        let value = authorization(&md5, "Mufasa", "Circle of Life", "GET", "/dir/index.html", 1, cnonce);
        assert!(value.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""));
    }

    #[test]
    fn challenge_variants() {
        let md5 = parse_challenge(r#"digest realm="sip.example.com",nonce="n1""#).unwrap();
        assert_eq!(md5.algorithm, Algorithm::Md5);
        assert!(!md5.qop_auth && !md5.stale && md5.opaque.is_none());

        let sha =
            parse_challenge(r#"Digest realm="r", nonce="n", algorithm=sha-256-SESS, qop=auth, stale=TRUE"#).unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha256Sess);
        assert!(sha.qop_auth && sha.stale);
        assert_eq!(parse_challenge(r#"Digest realm="r", nonce="n", stale=false"#).map(|c| c.stale), Ok(false));

        assert_eq!(
            parse_challenge(r#"Digest realm="r", nonce="n", qop="auth-int""#),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert_eq!(parse_challenge(r#"Basic realm="r""#), Err(DigestError::NotDigest));
        assert_eq!(parse_challenge(""), Err(DigestError::NotDigest));
        assert_eq!(parse_challenge("Digest"), Err(DigestError::MissingParameter("realm")));
        assert_eq!(parse_challenge(r#"Digest realm="r""#), Err(DigestError::MissingParameter("nonce")));
        assert_eq!(
            parse_challenge(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        for bad in [
            r#"Digest realm="r"#,
            r#"Digest realm"#,
            r#"Digest realm="r" nonce="n""#,
            r#"Digest =x"#,
            r#"Digest realm=, nonce=n"#,
        ] {
            assert!(matches!(parse_challenge(bad), Err(DigestError::Malformed(_))), "{bad}");
        }
        assert!(DigestError::MissingParameter("nonce").to_string().contains("nonce"));
    }

    #[test]
    fn strongest_challenge_wins() {
        let md5 = r#"Digest realm="r", nonce="a", algorithm=MD5"#;
        let sha = r#"Digest realm="r", nonce="b", algorithm=SHA-256"#;
        let sha2 = r#"Digest realm="r", nonce="c", algorithm=SHA-256-sess"#;
        let bad = r#"Digest realm="r", nonce="d", algorithm=SHA-512-256"#;
        assert_eq!(best_challenge([md5, bad, sha, sha2]).map(|c| c.nonce), Some("b".into()));
        assert_eq!(best_challenge([bad, md5]).map(|c| c.nonce), Some("a".into()));
        assert_eq!(best_challenge([bad, "Basic x=y"]), None);
        assert_eq!(best_challenge(Vec::<&str>::new()), None);
    }

    #[test]
    fn without_qop_and_sess() {
        let ch = Challenge { qop_auth: false, opaque: None, ..rfc2617() };
        let value = authorization(&ch, "u\"x", "pw", "REGISTER", "sip:example.com", 1, "cn");
        assert!(!value.contains("qop") && !value.contains("cnonce") && !value.contains("opaque"));
        assert!(value.starts_with(r#"Digest username="u\"x", "#));
        let auth = parse_authorization(&value).unwrap();
        assert_eq!(auth.username, "u\"x");
        assert!(verify(&auth, "pw", "REGISTER"));

        let sess = Challenge { algorithm: Algorithm::Md5Sess, ..ch };
        let value = authorization(&sess, "u", "pw", "REGISTER", "sip:example.com", 7, "cn");
        assert!(value.contains("algorithm=MD5-sess, cnonce=\"cn\""));
        assert!(verify(&parse_authorization(&value).unwrap(), "pw", "REGISTER"));
    }

    #[test]
    fn authorization_parse_errors() {
        assert_eq!(
            parse_authorization(r#"Digest username="u", realm="r", nonce="n", uri="x""#),
            Err(DigestError::MissingParameter("response"))
        );
        assert_eq!(
            parse_authorization(r#"Digest username="u", realm="r", nonce="n", uri="x", response="0", qop=auth, nc=1"#),
            Err(DigestError::MissingParameter("cnonce"))
        );
        assert_eq!(
            parse_authorization(
                r#"Digest username="u", realm="r", nonce="n", uri="x", response="0", qop=auth-int, nc=1, cnonce="c""#
            ),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
    }

    proptest! {
        #![proptest_config(crate::sip::test_proptest_config())]

        #[test]
        fn client_and_verifier_agree(
            alg in prop_oneof![
                Just(Algorithm::Md5), Just(Algorithm::Md5Sess),
                Just(Algorithm::Sha256), Just(Algorithm::Sha256Sess),
            ],
            realm in "[ -~é]{0,20}",
            nonce in "[ -~]{1,20}",
            opaque in proptest::option::of("[ -~]{0,10}"),
            qop_auth in any::<bool>(),
            user in "[ -~é]{0,12}",
            password in "[ -~]{0,12}",
            nc in any::<u32>(),
            cnonce in "[!-~]{1,12}",
        ) {
            let ch = Challenge { realm, nonce, opaque, algorithm: alg, qop_auth, stale: false };
            let value = authorization(&ch, &user, &password, "REGISTER", "sips:example.com", nc, &cnonce);
            let auth = parse_authorization(&value);
            prop_assert!(auth.is_ok(), "{:?} from {}", auth, value);
            let auth = auth.unwrap();
            prop_assert_eq!(&auth.username, &user);
            prop_assert_eq!(&auth.opaque, &ch.opaque);
            prop_assert!(verify(&auth, &password, "REGISTER"));
            let wrong = format!("{password}x");
            prop_assert!(!verify(&auth, &wrong, "REGISTER"));
        }

        #[test]
        fn parsers_never_panic(s in "(Digest )?[ -~é]{0,80}") {
            let _ = (parse_challenge(&s), parse_authorization(&s), best_challenge([s.as_str()]));
        }
    }
}
