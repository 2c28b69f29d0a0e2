//! Just enough DER to read a certificate's validity period, so that an expired file is
//! a start-up error rather than a handshake failure later, and when a certificate
//! revocation list expects its successor, so that a stale list is reported.
//!
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//! serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, … } … }.
//! CertificateList ::= SEQUENCE { tbsCertList SEQUENCE { version INTEGER OPTIONAL,
//! signature, issuer, thisUpdate, nextUpdate OPTIONAL, … } … } (RFC 5280 §5.1).

/// A certificate's validity period, in seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;
const INTEGER: u8 = 0x02;

/// The fields of a signed structure's to-be-signed SEQUENCE (`tbsCertificate`,
/// `tbsCertList`) after its optional version, whose tag is `version_tag`.
fn to_be_signed(signed: &[u8], version_tag: u8) -> Option<&[u8]> {
    let (tag, signed, _) = element(signed)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(signed)?;
    if tag != SEQUENCE {
        return None;
    }
    if tbs.first() == Some(&version_tag) {
        return Some(element(tbs)?.2);
    }
    Some(tbs)
}

/// The validity period of a DER certificate, or `None` when it cannot be read.
pub(crate) fn validity(cert: &[u8]) -> Option<Validity> {
    let mut tbs = to_be_signed(cert, VERSION)?;
    // serialNumber, signature algorithm, issuer.
    for _ in 0..3 {
        tbs = element(tbs)?.2;
    }
    let (tag, validity, _) = element(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (t1, before, rest) = element(validity)?;
    let (t2, after, _) = element(rest)?;
    Some(Validity { not_before: time(t1, before)?, not_after: time(t2, after)? })
}

/// The `nextUpdate` of a DER certificate revocation list: `Some(None)` when the list
/// names none, `None` when the list cannot be read.
pub(crate) fn crl_next_update(crl: &[u8]) -> Option<Option<i64>> {
    let mut tbs = to_be_signed(crl, INTEGER)?;
    // signature algorithm, issuer.
    for _ in 0..2 {
        tbs = element(tbs)?.2;
    }
    let (tag, this_update, rest) = element(tbs)?;
    time(tag, this_update)?;
    match element(rest) {
        Some((tag @ (UTC_TIME | GENERALIZED_TIME), next_update, _)) => Some(Some(time(tag, next_update)?)),
        _ => Some(None),
    }
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
    };
    let (year, rest) = match tag {
        UTC_TIME if text.len() == 13 => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME if text.len() == 15 => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_time_forms() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(GENERALIZED_TIME, b"20000301000000Z"), Some(951_868_800));
        assert_eq!(time(UTC_TIME, b"7001010000Z"), None);
        assert_eq!(time(UTC_TIME, b"701301000000Z"), None);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(validity(b""), None);
        assert_eq!(validity(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(validity(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
