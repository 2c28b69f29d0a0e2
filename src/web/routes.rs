//! The interface's routes: who may call each, and what each does through the embedding
//! API.

use super::Web;
use super::http::{self, Body, MAX_FORM};
use super::pages;
use super::session::{COOKIE, LoginError, Session};
use crate::engine::{CallStage, FlowState};
use crate::ids::CallId;
use bytes::Bytes;
use futures_lite::{FutureExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::json;
use std::time::{Duration, Instant};

/// How often an open status stream gets a fresh status.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Answers one request.
pub async fn handle(web: &Web, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/style.css") => return http::respond(StatusCode::OK, "text/css", pages::STYLE),
        (&Method::GET, "/app.js") => return http::respond(StatusCode::OK, "text/javascript", pages::SCRIPT),
        (&Method::GET, "/login") => {
            return if login_required(web) {
                http::respond(StatusCode::OK, "text/html; charset=utf-8", pages::login(None))
            } else {
                http::redirect("/status")
            };
        }
        (&Method::POST, "/login") => return login(web, req).await,
        _ => {}
    }
    let cookie = http::cookie(&req, COOKIE).map(str::to_owned);
    let session = web.shared.sessions.lock().ok().and_then(|mut s| s.find(cookie.as_deref(), Instant::now()));
    let Some(session) = session else {
        return if method == Method::GET && !path.starts_with("/events") && !path.ends_with(".json") {
            http::redirect("/login")
        } else {
            http::text(StatusCode::UNAUTHORIZED, "log in first")
        };
    };
    if path == "/settings" || path.starts_with("/settings/") {
        return super::configure::handle(web, req, &session).await;
    }
    if method == Method::POST {
        return changes(web, req, &session, cookie.as_deref()).await;
    }
    match path.as_str() {
        "/" => http::redirect("/status"),
        "/status" => {
            http::respond(StatusCode::OK, "text/html; charset=utf-8", pages::status(&session.csrf, login_required(web)))
        }
        "/status.json" => http::json(StatusCode::OK, &status_json(web).await),
        "/events" => events(web, cookie),
        _ => http::text(StatusCode::NOT_FOUND, format!("no page {path}")),
    }
}

fn login_required(web: &Web) -> bool {
    web.login_required()
}

async fn login(web: &Web, req: Request<Incoming>) -> Response<Body> {
    let Some(admin) = web.shared.options.admin_password.clone() else { return http::redirect("/status") };
    if !http::same_origin(&req) {
        return http::text(StatusCode::FORBIDDEN, "the login form comes from another site");
    }
    let body = match http::body(req, MAX_FORM).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let password = http::form_value(&body, "password").unwrap_or_default();
    let result = match web.shared.sessions.lock() {
        Ok(mut s) => s.login(&password, &admin, Instant::now()),
        Err(_) => Err(LoginError::NoRandom("the session table is unusable".to_owned())),
    };
    match result {
        Ok(token) => {
            let mut r = http::redirect("/status");
            let secure = if web.https() { "; Secure" } else { "" };
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(LoginError::WrongPassword) => {
            tracing::warn!("web interface: failed login");
            http::respond(StatusCode::UNAUTHORIZED, "text/html; charset=utf-8", pages::login(Some("Wrong password.")))
        }
        Err(LoginError::TooMany(wait)) => {
            let mut r = http::respond(
                StatusCode::TOO_MANY_REQUESTS,
                "text/html; charset=utf-8",
                pages::login(Some("Too many failed logins: wait a minute.")),
            );
            if let Ok(v) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(LoginError::NoRandom(e)) => {
            tracing::error!("web interface: {e}");
            http::text(StatusCode::INTERNAL_SERVER_ERROR, "no session can be opened: see the phone's log")
        }
    }
}

/// Requests that change something: from the interface's own pages, with the session's
/// CSRF token (a header from the page's script, a hidden field from a plain form).
async fn changes(web: &Web, req: Request<Incoming>, session: &Session, cookie: Option<&str>) -> Response<Body> {
    if !http::same_origin(&req) {
        return http::text(StatusCode::FORBIDDEN, "the request comes from another site");
    }
    let path = req.uri().path().to_owned();
    let header_token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = match http::body(req, MAX_FORM).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let token = header_token.or_else(|| http::form_value(&body, "csrf"));
    if token.as_deref() != Some(session.csrf.as_str()) {
        return http::text(StatusCode::FORBIDDEN, "missing or wrong CSRF token: reload the page");
    }
    let Some(phone) = web.phone() else { return http::text(StatusCode::SERVICE_UNAVAILABLE, "no phone") };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["logout"] => {
            if let Ok(mut s) = web.shared.sessions.lock() {
                s.logout(cookie);
            }
            let mut r = http::redirect("/login");
            let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
            if let Ok(v) = header::HeaderValue::from_str(&expired) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        ["calls", "dial"] => {
            let line = http::form_value(&body, "line").and_then(|l| l.trim().parse::<u8>().ok());
            let target = http::form_value(&body, "target").unwrap_or_default();
            let Some(line) = line.filter(|l| (1..=9).contains(l)) else {
                return http::text(StatusCode::BAD_REQUEST, "line: a line number from 1 to 9");
            };
            let Some(account) = crate::config::aastra::account_of_line(line, &web.lines()) else {
                return http::text(StatusCode::BAD_REQUEST, format!("line {line} is not configured"));
            };
            match phone.place_call(account, target.trim(), Vec::new()).await {
                Ok(call) => http::text(StatusCode::OK, format!("{call} placed from line {line} to {}", target.trim())),
                Err(e) => http::text(StatusCode::BAD_REQUEST, format!("dial: {e}")),
            }
        }
        ["calls", id, action] => {
            let Ok(call) = id.parse::<u32>().map(CallId) else {
                return http::text(StatusCode::NOT_FOUND, format!("no call {id}"));
            };
            let result = match *action {
                "answer" => phone.answer(call, Vec::new()).await,
                "reject" => phone.reject(call, 486).await,
                "hangup" => phone.hang_up(call).await,
                _ => return http::text(StatusCode::NOT_FOUND, format!("no action {action}")),
            };
            match result {
                Ok(()) => http::text(StatusCode::OK, format!("{action}: {call}")),
                Err(e) => http::text(StatusCode::CONFLICT, format!("{action} {call}: {e}")),
            }
        }
        _ => http::text(StatusCode::NOT_FOUND, format!("no action at {path}")),
    }
}

/// The phone's status and the calls in progress, as the status page draws them: all of
/// it from the phone's status (`Status`), times as seconds from the phone's clock.
async fn status_json(web: &Web) -> serde_json::Value {
    let status = match web.phone() {
        Some(phone) => phone.status().await,
        None => None,
    };
    let Some(s) = status else {
        return json!({ "connection": "the phone has stopped", "counters": [], "lines": [], "calls": [] });
    };
    let numbers = &web.lines();
    let line_of = |i: usize| numbers.get(i).copied().unwrap_or(i as u8 + 1);
    let lines: Vec<serde_json::Value> = s
        .registrations
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let expires = match s.binding_expiry.get(i).copied().flatten() {
                Some(at) => format!("{} s", at.saturating_since(s.now).as_secs()),
                None => String::new(),
            };
            json!({ "line": line_of(i), "state": r.to_string(), "expires_in": expires })
        })
        .collect();
    let calls: Vec<serde_json::Value> = s
        .calls
        .iter()
        .map(|c| {
            json!({
                "call": c.call.0,
                "incoming": !c.outgoing,
                "line": line_of(usize::from(c.account.0)),
                "peer": c.peer,
                "state": stage_name(c.stage),
            })
        })
        .collect();
    let link = s.link;
    let seconds = |d: crate::time::Duration| format!("{}.{:03} s", d.as_secs(), d.as_millis() % 1000);
    let age = link.up_since.map_or_else(|| "not up".to_owned(), |(_, since)| seconds(s.now.saturating_since(since)));
    let rtt = link.last_pong_rtt.map_or_else(|| "none yet".to_owned(), |d| format!("{} ms", d.as_millis()));
    let retry = s.next_retry.map_or_else(|| "not waiting".to_owned(), |at| seconds(at.saturating_since(s.now)));
    let up = s.connections.iter().filter(|(_, _, up)| *up).count();
    // The node of the state diagram to light (status.html's `data-state`).
    let state = match s.flow {
        FlowState::Idle => "idle".to_owned(),
        FlowState::Connecting { server } => format!("connecting-{server}"),
        FlowState::Up { server } => format!("up-{server}"),
        FlowState::Switching => "switching".to_owned(),
        FlowState::Waiting => "waiting".to_owned(),
        FlowState::Closed => "closed".to_owned(),
    };
    json!({
        "connection": s.flow.to_string(),
        "state": state,
        "counters": [
            ["Connection age", age],
            ["Pings sent", link.pings_sent.to_string()],
            ["Pongs received", link.pongs_received.to_string()],
            ["Last pong round trip", rtt],
            ["Next reconnect round in", retry],
            ["Persistent connections made", link.connections_up.to_string()],
            ["Connections open", up.to_string()],
            ["Reconnect rounds failed in a row", s.failed_rounds.to_string()],
            ["Good probes of the primary", s.good_probes.to_string()],
            ["Calls waiting for the connection", s.queued_calls.to_string()],
            ["Events dropped (read too late)", s.dropped_events.to_string()],
        ],
        "lines": lines,
        "calls": calls,
    })
}

/// A call's stage as the status page names it (`ringing` offers Answer and Reject for an
/// incoming call).
fn stage_name(stage: CallStage) -> &'static str {
    match stage {
        CallStage::Queued => "waiting for the connection",
        CallStage::Connecting => "connecting",
        CallStage::Calling => "calling",
        CallStage::Ringing => "ringing",
        CallStage::Answering => "answering",
        CallStage::Established => "answered",
        CallStage::Ending => "ending",
    }
}

/// Server-sent events: the timeline so far and each event as it comes (`timeline`),
/// and the status at once, after each burst of events, and every second (`status`).
/// When the session that opened it ends (logout, expiry), the stream says so (`end`) and
/// closes: the page goes back to the login.
fn events(web: &Web, cookie: Option<String>) -> Response<Body> {
    let Some(rx) = web.shared.feed.lock().ok().and_then(|mut f| f.subscribe()) else {
        return http::text(StatusCode::SERVICE_UNAVAILABLE, "too many live pages open");
    };
    let web = web.clone();
    let frames = futures_lite::stream::unfold(Some((web, rx, true)), move |state| {
        let cookie = cookie.clone();
        async move {
            let (web, rx, first) = state?;
            let open = web.shared.sessions.lock().is_ok_and(|s| s.is_open(cookie.as_deref(), Instant::now()));
            if !open {
                let end = Bytes::from_static(b"event: end\ndata: the session has ended\n\n");
                return Some((Ok(Frame::data(end)), None));
            }
            let frame = if first {
                None
            } else {
                async { Some(rx.recv().await) }
                    .or(async {
                        async_io::Timer::after(STATUS_EVERY).await;
                        None
                    })
                    .await
            };
            let text = match frame {
                // An event usually changes the status: send it at once, after the last of
                // a burst of events, rather than at the next tick.
                Some(Ok(timeline)) if rx.is_empty() => {
                    format!("{timeline}event: status\ndata: {}\n\n", status_json(&web).await)
                }
                Some(Ok(timeline)) => timeline,
                // The interface dropped this stream (it fell behind): the page reconnects.
                Some(Err(_)) => return None,
                None => format!("event: status\ndata: {}\n\n", status_json(&web).await),
            };
            Some((Ok(Frame::data(Bytes::from(text))), Some((web, rx, false))))
        }
    });
    let mut r = Response::new(StreamBody::new(frames.boxed()).boxed_unsync());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    r
}
