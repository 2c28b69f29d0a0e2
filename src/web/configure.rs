//! The settings pages' requests. A page shows the values in force; a submitted form is
//! checked exactly as `check-config` checks files (the configuration reader's validation,
//! then the certificate files as at start-up), written to the local configuration file
//! only when all of it is good, and handed to the application to restart the phone with.
//! A form with any error changes nothing, and the phone goes on as it was.

use super::Applied;
use super::Restart;
use super::Web;
use super::form::{self, MAX_SETTINGS_FORM};
use super::http::{self, Body};
use super::session::Session;
use super::settings::{self, Kind, Page};
use super::settings_page::{View, render};
use crate::config::aastra::{Loaded, account_of_line, local};
use crate::runtime::{ConfigFiles, Problem};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use std::collections::BTreeMap;

/// Answers a request under `/settings`, from a logged-in session.
pub async fn handle(web: &Web, req: Request<Incoming>, session: &Session) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::POST && path == "/settings/restart" {
        return restart_now(web, req, session).await;
    }
    let Some(page) = Page::from_path(&path) else {
        return http::text(StatusCode::NOT_FOUND, format!("no page {path}"));
    };
    let Some(files) = web.shared.options.config_files.clone() else {
        return http::text(
            StatusCode::NOT_FOUND,
            "the settings pages need the phone's configuration files (sip-ptls run --config …)",
        );
    };
    match *req.method() {
        Method::GET => {
            let view = View::default();
            show(web, page, &files, view, session, StatusCode::OK)
        }
        Method::POST => submit(web, req, page, &files, session).await,
        _ => http::text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST"),
    }
}

/// The page with the values in force (or, when the files no longer load, with why).
fn show(
    web: &Web,
    page: Page,
    files: &ConfigFiles,
    mut view: View,
    session: &Session,
    status: StatusCode,
) -> Response<Body> {
    let (values, locked) = match files.load() {
        Ok(loaded) => (local::effective_values(&loaded), loaded.locked),
        Err(problems) => {
            view.general.extend(problems.iter().map(ToString::to_string));
            (BTreeMap::new(), Default::default())
        }
    };
    let html = render(page, &values, &locked, &view, &session.csrf, web.login_required());
    http::respond(status, "text/html; charset=utf-8", html)
}

/// The file an uploaded certificate of `parameter` is kept in, beside the local file.
fn upload_name(parameter: &str, pending: bool) -> String {
    let slug = parameter.replace(' ', "-");
    if pending { format!("pending-{slug}.pem") } else { format!("{slug}.pem") }
}

async fn submit(
    web: &Web,
    req: Request<Incoming>,
    page: Page,
    files: &ConfigFiles,
    session: &Session,
) -> Response<Body> {
    if !http::same_origin(&req) {
        return http::text(StatusCode::FORBIDDEN, "the request comes from another site");
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = match http::body(req, MAX_SETTINGS_FORM).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut view = View::default();
    let form = match form::parse(&content_type, &body) {
        Ok(f) => f,
        Err(e) => {
            view.general.push(format!("the form could not be read: {e}"));
            return show(web, page, files, view, session, StatusCode::BAD_REQUEST);
        }
    };
    if form.fields.get("csrf") != Some(&session.csrf) {
        return http::text(StatusCode::FORBIDDEN, "missing or wrong CSRF token: reload the page");
    }
    match save(page, files, &form) {
        Ok(Saved::Nothing) => {
            view.message = Some("Nothing changed.".to_owned());
            show(web, page, files, view, session, StatusCode::OK)
        }
        Ok(Saved::To(loaded, parameters)) => {
            let local = files.local().map(|p| p.display().to_string()).unwrap_or_default();
            tracing::info!("web interface: saved {} to {local}", parameters.join(", "));
            let (reply, applied) = async_channel::bounded(1);
            let sent = match &web.shared.options.restart {
                Some(restart) => restart.try_send(Restart::With { config: loaded, reply }).is_ok(),
                None => false,
            };
            let applied = if sent { applied.recv().await.ok() } else { None };
            view.message = Some(match applied {
                Some(Applied::AtOnce) => {
                    format!("Saved to {local} and applied to the running phone: same connection, no new registration.")
                }
                Some(Applied::Restart { changed, live_calls: 0 }) => format!(
                    "Saved to {local}. The phone restarts with the new configuration ({} changed) and registers every line again.",
                    changed.join(", ")
                ),
                Some(Applied::Restart { live_calls, .. }) => {
                    view.restart_waits_for_calls = live_calls;
                    format!("Saved to {local}.")
                }
                None => format!("Saved to {local}. Restart sip-ptls to apply it."),
            });
            show(web, page, files, view, session, StatusCode::OK)
        }
        Err(Refused { errors, general }) => {
            view.errors = errors;
            view.general = general;
            // The form comes back as it was sent (passwords never: see settings_page).
            view.submitted = form.fields.into_iter().filter(|(k, _)| k != "csrf").collect();
            show(web, page, files, view, session, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// What a good form did.
enum Saved {
    /// It changed nothing.
    Nothing,
    /// The local file now holds the changes to these parameters; the configuration it
    /// gives.
    To(Box<Loaded>, Vec<String>),
}

/// Why a form changed nothing: errors by parameter, and those of no field.
struct Refused {
    errors: BTreeMap<String, String>,
    general: Vec<String>,
}

impl Refused {
    fn new() -> Refused {
        Refused { errors: BTreeMap::new(), general: Vec::new() }
    }

    /// Files `problem` next to its field when `page` has one, else with the general ones.
    fn add(&mut self, page: Page, problem: &Problem) {
        let on_page = problem
            .parameter
            .as_ref()
            .filter(|p| settings::fields(page).iter().any(|f| &f.parameter == *p || is_transport_part(f, p)));
        match on_page {
            Some(p) => {
                let key = if p == settings::PERSISTENT_TLS { "sip transport protocol".to_owned() } else { p.clone() };
                self.errors.entry(key).or_insert_with(|| problem.message.clone());
            }
            None => self.general.push(problem.message.clone()),
        }
    }
}

fn is_transport_part(f: &settings::Field, parameter: &str) -> bool {
    f.kind == Kind::Transport && parameter == settings::PERSISTENT_TLS
}

/// Checks `form` and, when all of it is good, writes it to the local file. Uploaded
/// files are written under a pending name first, checked where they will be used, and
/// kept only when the whole form is good.
fn save(page: Page, files: &ConfigFiles, form: &form::Form) -> Result<Saved, Refused> {
    let mut refused = Refused::new();
    let current = files.load().map_err(|ps| {
        let mut r = Refused::new();
        r.general.extend(ps.iter().map(ToString::to_string));
        r
    })?;
    let values = local::effective_values(&current);
    let line_password = match page {
        Page::Line(n) => account_of_line(n, &current.line_numbers)
            .and_then(|a| current.config.accounts.get(usize::from(a.0)))
            .map(|a| a.password.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let mut changes = settings::changes(page, &form.fields, &values, &current.locked, &line_password);
    for (parameter, why) in &changes.refused {
        refused.errors.insert(parameter.clone(), why.clone());
    }
    let mut pending = Vec::new();
    for f in settings::fields(page).into_iter().filter(|f| f.kind == Kind::CertificateFile) {
        let Some(upload) = form.files.get(&format!("upload:{}", f.parameter)) else { continue };
        if current.locked.contains(&f.parameter) {
            refused.errors.insert(f.parameter.clone(), format!("`{}` is locked by a configuration file", f.parameter));
            continue;
        }
        match files.write_beside_local(&upload_name(&f.parameter, true), &upload.bytes) {
            Ok(path) => {
                changes.values.insert(f.parameter.clone(), path.display().to_string());
                pending.push((f.parameter.clone(), path));
            }
            Err(e) => {
                refused.errors.insert(f.parameter.clone(), format!("{}: cannot be kept: {e}", upload.file_name));
            }
        }
    }
    let discard = |pending: &[(String, std::path::PathBuf)]| {
        for (_, path) in pending {
            let _ = std::fs::remove_file(path);
        }
    };
    if changes.values.is_empty() && refused.errors.is_empty() {
        return Ok(Saved::Nothing);
    }
    let local_text = match files.read_local() {
        Ok(t) => t,
        Err(p) => {
            refused.add(page, &p);
            discard(&pending);
            return Err(refused);
        }
    };
    let checked = files.load_with_local(&local::merge(&local_text, &changes.values));
    // A problem with an upload names the file the person chose, not its pending copy.
    let named = |mut p: Problem| {
        for (parameter, path) in &pending {
            if let Some(upload) = form.files.get(&format!("upload:{parameter}")) {
                p.message = p.message.replace(&path.display().to_string(), &format!("uploaded {}", upload.file_name));
            }
        }
        p
    };
    match checked {
        Err(problems) => problems.into_iter().for_each(|p| refused.add(page, &named(p))),
        Ok(loaded) => {
            if let Err(p) = files.check_certificates(&loaded) {
                refused.add(page, &named(p));
            }
        }
    }
    if !refused.errors.is_empty() || !refused.general.is_empty() {
        discard(&pending);
        return Err(refused);
    }
    // Good: the uploads take their final names, then the local file names them.
    for (parameter, path) in &pending {
        let kept = path.with_file_name(upload_name(parameter, false));
        if let Err(e) = std::fs::rename(path, &kept) {
            refused.errors.insert(parameter.clone(), format!("cannot be kept: {e}"));
            discard(&pending);
            return Err(refused);
        }
        changes.values.insert(parameter.clone(), kept.display().to_string());
    }
    let text = local::merge(&local_text, &changes.values);
    if let Err(e) = files.write_local(&text) {
        refused.general.push(format!("the local configuration file cannot be written: {e}"));
        return Err(refused);
    }
    match files.load() {
        Ok(loaded) => Ok(Saved::To(Box::new(loaded), changes.values.into_keys().collect())),
        Err(problems) => {
            problems.iter().for_each(|p| refused.add(page, p));
            Err(refused)
        }
    }
}

/// `/settings/restart`: the person confirmed ending the calls in progress.
async fn restart_now(web: &Web, req: Request<Incoming>, session: &Session) -> Response<Body> {
    if !http::same_origin(&req) {
        return http::text(StatusCode::FORBIDDEN, "the request comes from another site");
    }
    let body = match http::body(req, http::MAX_FORM).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if http::form_value(&body, "csrf").as_deref() != Some(session.csrf.as_str()) {
        return http::text(StatusCode::FORBIDDEN, "missing or wrong CSRF token: reload the page");
    }
    match &web.shared.options.restart {
        Some(restart) if restart.try_send(Restart::EndCallsNow).is_ok() => http::redirect("/status"),
        _ => http::text(StatusCode::SERVICE_UNAVAILABLE, "this phone cannot be restarted from here"),
    }
}
