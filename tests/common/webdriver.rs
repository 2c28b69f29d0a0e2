//! A small blocking W3C WebDriver client for the browser tests: chromedriver started on a
//! free loopback port, a headless Debian chromium session, and the few commands the
//! tests use (navigate, find, type, click, read text, run a script, screenshot). Plain
//! HTTP/1.1 over std's TcpStream and serde_json: the WebDriver clients on crates.io need
//! tokio.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts them (scripts/deps.sh installs both).
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session; both end when it is dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// One element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// One request to chromedriver: the JSON `value` of a success, or the error's text.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to chromedriver: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open whatever the request says: read the head,
    // then exactly Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let (head, length, start) = loop {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("chromedriver closed the connection before answering".to_owned());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .ok_or("an answer without Content-Length from chromedriver")?;
            break (head, length, end + 4);
        }
    };
    while raw.len() < start + length {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("chromedriver's answer was cut short".to_owned());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&raw[start..start + length]).into_owned();
    let ok = head.split(' ').nth(1) == Some("200");
    let value: Value = serde_json::from_str(&body).map_err(|e| format!("not JSON from chromedriver ({e}): {body}"))?;
    let value = value.get("value").cloned().unwrap_or(Value::Null);
    if ok { Ok(value) } else { Err(value.to_string()) }
}

impl Browser {
    /// Starts chromedriver and a headless chromium whose window is `width` × `height`.
    pub fn start(width: u32, height: u32) -> Browser {
        Browser::start_with(width, height, false)
    }

    /// As [`Browser::start`]; with `accept_insecure_certs`, the browser takes any server
    /// certificate (for the interface's HTTPS with the test CA's certificate, which a
    /// browser cannot be told to trust without a profile database of its own).
    pub fn start_with(width: u32, height: u32, accept_insecure_certs: bool) -> Browser {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: scripts/deps.sh installs chromium and chromium-driver"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if call(port, "GET", "/status", None).is_ok_and(|v| v["ready"] == json!(true)) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver not ready within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": accept_insecure_certs,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-background-networking",
                         "--disable-dev-shm-usage", "--disable-gpu", format!("--window-size={width},{height}")],
            },
        }}});
        let mut browser = Browser { driver, port, session: String::new() };
        let value = browser.raw("POST", "/session", Some(&capabilities)).expect("a browser session");
        browser.session = value["sessionId"].as_str().expect("a session id").to_owned();
        browser
    }

    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        call(self.port, method, path, body)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.raw(method, &path, body.as_ref()).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Opens `url`.
    pub fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The element `css` selects, if any.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        let path = format!("/session/{}/element", self.session);
        let found = self.raw("POST", &path, Some(&json!({ "using": "css selector", "value": css }))).ok()?;
        found[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// The element `css` selects, waiting up to 15 s for it.
    pub fn find(&self, css: &str) -> Element {
        self.wait(&format!("an element {css}"), || self.try_find(css))
    }

    /// Types `text` into `element` (WebDriver key codes allowed: "\u{E004}" is Tab,
    /// "\u{E007}" is Enter).
    pub fn type_into(&self, element: &Element, text: &str) {
        self.cmd("POST", &format!("/element/{}/value", element.0), Some(json!({ "text": text })));
    }

    /// Clears a field.
    pub fn clear(&self, element: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", element.0), Some(json!({})));
    }

    /// Clicks `element`.
    pub fn click(&self, element: &Element) {
        self.cmd("POST", &format!("/element/{}/click", element.0), Some(json!({})));
    }

    /// The visible text of `element`.
    pub fn text(&self, element: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", element.0), None).as_str().unwrap_or("").to_owned()
    }

    /// Runs `script` in the page and returns its value.
    pub fn script(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    /// Sends keys to whatever has the focus.
    pub fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [json!({ "type": "keyDown", "value": k }), json!({ "type": "keyUp", "value": k })]
            })
            .collect();
        let body = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] });
        self.cmd("POST", "/actions", Some(body));
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None);
        decode_base64(b64.as_str().unwrap_or(""))
    }

    /// Waits up to 15 s for `probe` to give something.
    pub fn wait<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(Instant::now() < deadline, "no {what} within 15 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the text of `css` contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait(&format!("{needle:?} in {css}"), || {
            let el = self.try_find(css)?;
            let text = self.text(&el);
            text.contains(needle).then_some(text)
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (the screenshot's encoding).
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
