//! A submitted form, urlencoded or `multipart/form-data` (the TLS Support page uploads
//! files): its text fields and its files, read from a body already bounded in size.

use std::collections::BTreeMap;

/// The largest file a form may carry (a certificate chain is a few kilobytes).
pub const MAX_FILE: usize = 64 * 1024;
/// The largest settings form, files included.
pub const MAX_SETTINGS_FORM: usize = 5 * MAX_FILE;

/// One uploaded file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The name the browser gave (for messages only: never used as a path).
    pub file_name: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// A form's fields and files, by name. A name sent twice keeps its first value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form {
    /// Text fields.
    pub fields: BTreeMap<String, String>,
    /// Files chosen in file inputs (an input left empty sends none).
    pub files: BTreeMap<String, Upload>,
}

/// Reads `body` as the form its `content_type` says.
///
/// # Errors
///
/// A content type that is neither form kind, a malformed multipart body, a field that is
/// not UTF-8, or a file over [`MAX_FILE`].
pub fn parse(content_type: &str, body: &[u8]) -> Result<Form, String> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => Ok(urlencoded(body)),
        "multipart/form-data" => {
            let boundary = parameter(content_type, "boundary").ok_or("a multipart form without a boundary")?;
            multipart(&boundary, body)
        }
        _ => Err(format!("not a form: {mime:?}")),
    }
}

/// An `application/x-www-form-urlencoded` body; a pair that does not decode is left out.
pub fn urlencoded(body: &[u8]) -> Form {
    let mut form = Form::default();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let (Some(k), v) = (kv.next().and_then(decode), kv.next().map_or(Some(String::new()), decode)) else {
            continue;
        };
        if let Some(v) = v {
            form.fields.entry(k).or_insert(v);
        }
    }
    form
}

/// Percent-decoding, with `+` as a space; `None` for a bad escape or bad UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The value of `name=` in a header value's parameters, quotes removed.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// RFC 7578: parts between `--boundary` lines, each with its headers, a blank line and
/// its content.
fn multipart(boundary: &str, body: &[u8]) -> Result<Form, String> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err("a multipart boundary must have 1 to 70 characters".to_owned());
    }
    let delimiter = format!("--{boundary}");
    let separator = format!("\r\n--{boundary}");
    let start = find(body, delimiter.as_bytes()).ok_or("the multipart body has no boundary line")?;
    let mut rest = &body[start + delimiter.len()..];
    let mut form = Form::default();
    loop {
        if rest.starts_with(b"--") {
            return Ok(form);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or("a multipart boundary line must end with CRLF")?;
        let headers_end = find(rest, b"\r\n\r\n").ok_or("a multipart part without the end of its headers")?;
        let headers = std::str::from_utf8(&rest[..headers_end]).map_err(|_| "a multipart part header is not UTF-8")?;
        let content_start = headers_end + 4;
        let content_len =
            find(&rest[content_start..], separator.as_bytes()).ok_or("the multipart body is not closed")?;
        let content = &rest[content_start..content_start + content_len];
        rest = &rest[content_start + content_len + separator.len()..];
        let disposition = headers
            .split("\r\n")
            .find_map(|h| {
                let (name, value) = h.split_once(':')?;
                name.trim().eq_ignore_ascii_case("content-disposition").then_some(value)
            })
            .ok_or("a multipart part without Content-Disposition")?;
        let name = parameter(disposition, "name").ok_or("a multipart part without a name")?;
        match parameter(disposition, "filename") {
            // A file input left empty sends a part with an empty file name and no content.
            Some(file_name) if file_name.is_empty() && content.is_empty() => {}
            Some(file_name) => {
                if content.len() > MAX_FILE {
                    return Err(format!("the file {file_name:?} is over {} KiB", MAX_FILE / 1024));
                }
                form.files.entry(name).or_insert(Upload { file_name, bytes: content.to_vec() });
            }
            None => {
                let value =
                    String::from_utf8(content.to_vec()).map_err(|_| format!("the field {name:?} is not UTF-8"))?;
                form.fields.entry(name).or_insert(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_urlencoded_form_is_decoded() {
        let form = parse(
            "application/x-www-form-urlencoded",
            b"sip+proxy+ip=pbx.example&target=sip%3A2000%40x&bad=%zz&empty=&sip+proxy+ip=second",
        )
        .unwrap();
        assert_eq!(form.fields.get("sip proxy ip").map(String::as_str), Some("pbx.example"));
        assert_eq!(form.fields.get("target").map(String::as_str), Some("sip:2000@x"));
        assert_eq!(form.fields.get("empty").map(String::as_str), Some(""));
        assert!(!form.fields.contains_key("bad"));
    }

    #[test]
    fn a_multipart_form_gives_its_fields_and_files() {
        let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nab12\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"upload:sips trusted certificates\"; filename=\"ca.pem\"\r\n\
                    Content-Type: application/x-pem-file\r\n\r\n-----BEGIN CERTIFICATE-----\r\nAAAA\r\n\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"upload:sips private key\"; filename=\"\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n\r\n--XyZ--\r\n";
        let form = parse("multipart/form-data; boundary=XyZ", body.as_bytes()).unwrap();
        assert_eq!(form.fields.get("csrf").map(String::as_str), Some("ab12"));
        let file = &form.files["upload:sips trusted certificates"];
        assert_eq!(file.file_name, "ca.pem");
        assert_eq!(file.bytes, b"-----BEGIN CERTIFICATE-----\r\nAAAA\r\n");
        assert!(!form.files.contains_key("upload:sips private key"), "an empty input sends no file");
    }

    #[test]
    fn malformed_forms_are_refused_with_a_reason() {
        for (ct, body) in [
            ("text/plain", "a=b"),
            ("multipart/form-data", "--x\r\n"),
            ("multipart/form-data; boundary=x", "no boundary here"),
            (
                "multipart/form-data; boundary=x",
                "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever closed",
            ),
            ("multipart/form-data; boundary=x", "--x\r\nX: y\r\n\r\nv\r\n--x--"),
        ] {
            assert!(parse(ct, body.as_bytes()).is_err(), "{ct} {body:?}");
        }
        let big = format!(
            "--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n{}\r\n--x--",
            "a".repeat(MAX_FILE + 1)
        );
        assert!(parse("multipart/form-data; boundary=x", big.as_bytes()).unwrap_err().contains("over 64 KiB"));
    }
}
