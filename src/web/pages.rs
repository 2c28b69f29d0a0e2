//! The interface's pages and assets, embedded in the binary (no CDN: it works offline).

/// The stylesheet.
pub const STYLE: &str = include_str!("assets/style.css");
/// The status page's script.
pub const SCRIPT: &str = include_str!("assets/app.js");

const LOGIN: &str = include_str!("assets/login.html");
const STATUS: &str = include_str!("assets/status.html");

/// The login page, with an error message (fixed text, never the user's input).
pub fn login(message: Option<&'static str>) -> String {
    let message = message.map(|m| format!("<p class=\"error\" role=\"alert\">{m}</p>")).unwrap_or_default();
    LOGIN.replace("<!--MESSAGE-->", &message)
}

/// The status page, carrying the session's CSRF token; with a logout button when there
/// is a login.
pub fn status(csrf: &str, logout: bool) -> String {
    // The token is hex: nothing in it needs escaping.
    let token: String = csrf.chars().filter(char::is_ascii_hexdigit).collect();
    let logout = if logout {
        format!(
            "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
             <button type=\"submit\">Log out</button></form>"
        )
    } else {
        String::new()
    };
    STATUS.replace("<!--CSRF-->", &token).replace("<!--LOGOUT-->", &logout)
}
