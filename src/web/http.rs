//! Small HTTP helpers of the interface: responses, bounded request bodies, urlencoded
//! forms and cookies.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use std::convert::Infallible;

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest form the interface reads.
pub const MAX_FORM: usize = 16 * 1024;

/// A response with `status`, a content type and a body. The headers keep pages out of
/// caches and frames, and scripts to the page's own.
pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_str(content_type).unwrap_or(TEXT));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", header::HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", header::HeaderValue::from_static("nosniff"));
    h.insert(
        "content-security-policy",
        header::HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    r
}

const TEXT: header::HeaderValue = header::HeaderValue::from_static("text/plain; charset=utf-8");

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body.into())
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

/// A redirect to `to` after a form (303 See Other).
pub fn redirect(to: &'static str) -> Response<Body> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    r.headers_mut().insert(header::LOCATION, header::HeaderValue::from_static(to));
    r
}

/// The request's body, if it is at most `limit` bytes.
pub async fn body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<Body>> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(text(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is over {limit} bytes"))),
    }
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
pub fn form_value(body: &[u8], name: &str) -> Option<String> {
    super::form::urlencoded(body).fields.remove(name)
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    })
}

/// True when a request that changes something comes from the interface's own pages:
/// its `Origin`, when the browser sent one, names the host it was sent to.
pub fn same_origin(req: &Request<Incoming>) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        let body = b"line=1&target=sip%3A2000%40pbx.example&note=a+b&bad=%zz";
        assert_eq!(form_value(body, "line").as_deref(), Some("1"));
        assert_eq!(form_value(body, "target").as_deref(), Some("sip:2000@pbx.example"));
        assert_eq!(form_value(body, "note").as_deref(), Some("a b"));
        assert_eq!(form_value(body, "bad"), None);
        assert_eq!(form_value(body, "missing"), None);
        assert_eq!(form_value(b"flag", "flag").as_deref(), Some(""));
    }
}
