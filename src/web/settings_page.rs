//! The settings pages as HTML: one form per page, its fields grouped in the Aastra
//! sections, each with its label, its help, its error next to it, and greyed out when a
//! configuration file locks it. Every text from outside (values, errors) is escaped.

use super::pages::{escape, header};
use super::settings::{Field, Kind, Page, TRANSPORTS, fields, shown};
use std::collections::{BTreeMap, BTreeSet};

/// What a settings page shows besides the values in force.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The values to show instead of those in force (a form sent back with its errors).
    pub submitted: BTreeMap<String, String>,
    /// Errors by parameter, shown next to the field.
    pub errors: BTreeMap<String, String>,
    /// Errors that belong to no field on the page.
    pub general: Vec<String>,
    /// What happened (saved, restarting, …).
    pub message: Option<String>,
    /// Calls in progress that a restart waits for: the page offers to end them.
    pub restart_waits_for_calls: usize,
}

/// An id for the element of `parameter`: letters, digits and dashes only.
fn id_of(parameter: &str) -> String {
    parameter.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// The page's HTML.
pub fn render(
    page: Page,
    values: &BTreeMap<String, String>,
    locked: &BTreeSet<String>,
    view: &View,
    csrf: &str,
    logout: bool,
) -> String {
    let title = page.title();
    let mut out = header(&format!("Settings: {title}"), &page.path(), csrf, logout);
    out.push_str(&format!("<main>\n<h2>{}</h2>\n", escape(&title)));
    if let Some(m) = &view.message {
        out.push_str(&format!("<p class=\"message\" role=\"status\">{}</p>\n", escape(m)));
    }
    if view.restart_waits_for_calls > 0 {
        out.push_str(&format!(
            "<form method=\"post\" action=\"/settings/restart\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <p>The phone restarts with the new configuration when the {} call(s) in progress end.</p>\
             <button type=\"submit\" name=\"end_calls\" value=\"1\">End the calls and restart now</button></form>\n",
            view.restart_waits_for_calls
        ));
    }
    for e in &view.general {
        out.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)));
    }
    let multipart = if page == Page::TlsSupport { " enctype=\"multipart/form-data\"" } else { "" };
    out.push_str(&format!(
        "<form method=\"post\" action=\"{}\" class=\"settings\"{multipart}>\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n",
        page.path()
    ));
    let mut section = "";
    for f in fields(page) {
        if f.section != section {
            if !section.is_empty() {
                out.push_str("</fieldset>\n");
            }
            section = f.section;
            out.push_str(&format!("<fieldset>\n<legend>{}</legend>\n", escape(section)));
        }
        let value = view.submitted.get(&f.parameter).cloned().unwrap_or_else(|| shown(&f, values));
        let is_locked = locked.contains(&f.parameter)
            || (f.kind == Kind::Transport && locked.contains(super::settings::PERSISTENT_TLS));
        out.push_str(&render_field(&f, &value, is_locked, view.errors.get(&f.parameter)));
    }
    if !section.is_empty() {
        out.push_str("</fieldset>\n");
    }
    out.push_str("<button type=\"submit\">Save Settings</button>\n</form>\n</main>\n</body>\n</html>\n");
    out
}

fn render_field(f: &Field, value: &str, locked: bool, error: Option<&String>) -> String {
    let id = format!("f-{}", id_of(&f.parameter));
    let name = escape(&f.parameter);
    let mut described = vec![format!("{id}-help")];
    let disabled = if locked { " disabled" } else { "" };
    let mut notes = format!(
        "<span class=\"help\" id=\"{id}-help\">{}{}</span>",
        escape(&f.parameter),
        if f.help.is_empty() { String::new() } else { format!(": {}", escape(f.help)) }
    );
    if locked {
        notes.push_str(&format!("<span class=\"locked\" id=\"{id}-locked\">locked by a configuration file</span>"));
        described.push(format!("{id}-locked"));
    }
    let invalid = if let Some(e) = error {
        notes.push_str(&format!("<span class=\"error\" id=\"{id}-error\" role=\"alert\">{}</span>", escape(e)));
        described.push(format!("{id}-error"));
        " aria-invalid=\"true\""
    } else {
        ""
    };
    let describedby = described.join(" ");
    let attrs = format!("id=\"{id}\" name=\"{name}\" aria-describedby=\"{describedby}\"{invalid}{disabled}");
    let control = match f.kind {
        Kind::Text | Kind::CertificateFile => {
            format!("<input type=\"text\" {attrs} value=\"{}\" autocomplete=\"off\">", escape(value))
        }
        Kind::Number => format!("<input type=\"text\" inputmode=\"numeric\" {attrs} value=\"{}\">", escape(value)),
        Kind::Password => format!("<input type=\"password\" {attrs} value=\"\" autocomplete=\"new-password\">"),
        Kind::Check => {
            let checked = if value == "1" { " checked" } else { "" };
            format!("<input type=\"checkbox\" {attrs} value=\"1\"{checked}>")
        }
        Kind::Transport => {
            let options: String = TRANSPORTS
                .iter()
                .map(|(v, label)| {
                    let selected = if *v == value { " selected" } else { "" };
                    format!("<option value=\"{v}\"{selected}>{label}</option>")
                })
                .collect();
            format!("<select {attrs}>{options}</select>")
        }
    };
    let upload = if f.kind == Kind::CertificateFile && !locked {
        format!(
            "<label class=\"upload\" for=\"{id}-upload\">Upload a file for {label}</label>\
             <input type=\"file\" id=\"{id}-upload\" name=\"upload:{name}\" accept=\".pem,.crt,.key,application/x-pem-file\">",
            label = escape(f.label)
        )
    } else {
        String::new()
    };
    format!("<div class=\"field\"><label for=\"{id}\">{}</label>{control}{upload}{notes}</div>\n", escape(f.label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_errors_are_escaped_and_locked_fields_are_disabled() {
        let values: BTreeMap<String, String> =
            [("sip proxy ip".to_owned(), "\"><script>x</script>".to_owned())].into_iter().collect();
        let locked: BTreeSet<String> = ["sip proxy port".to_owned()].into_iter().collect();
        let view = View {
            errors: [("sip transaction timer".to_owned(), "<b>bad</b>".to_owned())].into_iter().collect(),
            ..View::default()
        };
        let html = render(Page::GlobalSip, &values, &locked, &view, "abc", false);
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"));
        assert!(html.contains("&lt;b&gt;bad&lt;/b&gt;"));
        let port = html.lines().find(|l| l.contains("id=\"f-sip-proxy-port\"")).unwrap();
        assert!(port.contains(" disabled") && port.contains("locked by a configuration file"), "{port}");
        let ip = html.lines().find(|l| l.contains("id=\"f-sip-proxy-ip\"")).unwrap();
        assert!(!ip.contains(" disabled"));
        assert_eq!(html.matches("<label").count(), fields(Page::GlobalSip).len(), "every field has a label");
    }

    #[test]
    fn a_password_is_never_sent_back() {
        let values: BTreeMap<String, String> =
            [("sip line1 password".to_owned(), "********".to_owned())].into_iter().collect();
        let view = View {
            submitted: [("sip line1 password".to_owned(), "typed".to_owned())].into_iter().collect(),
            ..View::default()
        };
        let html = render(Page::Line(1), &values, &BTreeSet::new(), &view, "abc", false);
        let line = html.lines().find(|l| l.contains("type=\"password\"")).unwrap();
        assert!(line.contains("value=\"\"") && !line.contains("typed") && !line.contains("****"), "{line}");
    }
}
