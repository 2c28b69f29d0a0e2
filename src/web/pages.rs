//! The interface's pages and assets, embedded in the binary (no CDN: it works offline),
//! and the header every page shares.

/// The stylesheet.
pub const STYLE: &str = include_str!("assets/style.css");
/// The status page's script.
pub const SCRIPT: &str = include_str!("assets/app.js");

const LOGIN: &str = include_str!("assets/login.html");
const STATUS: &str = include_str!("assets/status.html");

/// The pages the header links to: path and name.
const MENU: [(&str, &str); 3] =
    [("/status", "Status"), ("/settings/global-sip", "Global SIP"), ("/settings/tls", "TLS Support")];

/// `text` with the characters that mean something in HTML escaped (element content and
/// quoted attribute values alike).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The start of every page after the login: the document's head (with the session's
/// CSRF token for the scripts) and the header with the menu, `current` marked, and a
/// logout button when there is a login.
pub fn header(title: &str, current: &str, csrf: &str, logout: bool) -> String {
    // The token is hex: nothing in it needs escaping.
    let token: String = csrf.chars().filter(char::is_ascii_hexdigit).collect();
    let link = |path: &str, name: &str| {
        let here = if path == current { " aria-current=\"page\"" } else { "" };
        format!("<a href=\"{path}\"{here}>{name}</a>")
    };
    let mut menu: Vec<String> = MENU.iter().map(|(path, name)| link(path, name)).collect();
    let lines: Vec<String> = (1..=9).map(|n| link(&format!("/settings/line/{n}"), &n.to_string())).collect();
    menu.push(format!("<span>Lines {}</span>", lines.join(" ")));
    let logout = if logout {
        format!(
            "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
             <button type=\"submit\">Log out</button></form>"
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"csrf-token\" content=\"{token}\">\n<title>sip-ptls: {}</title>\n\
         <link rel=\"stylesheet\" href=\"/style.css\">\n<script src=\"/app.js\" defer></script>\n</head>\n<body>\n\
         <header>\n<h1>sip-ptls</h1>\n<nav aria-label=\"Pages\">{}</nav>\n{logout}\n</header>\n",
        escape(title),
        menu.join(" ")
    )
}

/// The login page, with an error message (fixed text, never the user's input).
pub fn login(message: Option<&'static str>) -> String {
    let message = message.map(|m| format!("<p class=\"error\" role=\"alert\">{m}</p>")).unwrap_or_default();
    LOGIN.replace("<!--MESSAGE-->", &message)
}

/// The status page, carrying the session's CSRF token; with a logout button when there
/// is a login.
pub fn status(csrf: &str, logout: bool) -> String {
    STATUS.replace("<!--HEADER-->", &header("status", "/status", csrf, logout))
}
