//! The web interface in a real browser: Debian's headless chromium, driven through
//! chromedriver (both installed by scripts/deps.sh; missing, the test fails). It logs in,
//! watches the phone register live, places a call from line 1 to line 2 and answers it
//! from the page, works through the dial form with the keyboard alone, fits a phone-sized
//! screen, and logs out. Screenshots go to target/web-ui/; with
//! `SIP_PTLS_SCREENSHOTS=docs/web-ui` they go where docs/web-ui.md shows them.
#![cfg(feature = "cli")]

#[path = "common/run_child.rs"]
mod run_child;
mod runtime_support;
#[path = "common/webdriver.rs"]
mod webdriver;

use run_child::WebRun;
use runtime_support::{BIN, Lab, watchdog};
use std::path::PathBuf;
use std::time::Duration;
use webdriver::Browser;

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let dir = std::env::var_os("SIP_PTLS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("web-ui"));
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    std::fs::write(dir.join(name), png).expect("write the screenshot");
}

/// The states the diagram lights (one, once a status has come).
fn lit(browser: &Browser) -> String {
    let lit = browser.script(
        "return [...document.querySelectorAll('#diagram .state.current')].map(n => n.dataset.state).join(' ');",
    );
    lit.as_str().unwrap_or("").to_owned()
}

/// The id of the element that has the keyboard focus.
fn focused(browser: &Browser) -> String {
    browser.script("return document.activeElement ? document.activeElement.id : '';").as_str().unwrap_or("").to_owned()
}

#[test]
fn a_person_logs_in_watches_the_phone_and_places_and_answers_a_call_in_the_browser() {
    let _w = watchdog("web interface in a browser", Duration::from_secs(180));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let backup = lab.registrar();
    let cfg = lab.web_config(
        &registrar,
        &format!("sip backup proxy ip: 127.0.0.1\nsip backup proxy port: {}\n", backup.addr().port()),
    );
    let mut run = WebRun::start(BIN, &cfg, &[], "http");
    let base = format!("http://{}", run.addr);
    let browser = Browser::start(1280, 900);

    // A page without a login goes to the login form; the password and Enter log in.
    browser.go(&format!("{base}/status"));
    let password = browser.find("#password");
    save_screenshot(&browser, "login.png");
    browser.type_into(&password, "1234");
    browser.type_into(&password, ENTER);
    browser.wait_text("[role=alert]", "Wrong password.");
    let password = browser.find("#password");
    browser.type_into(&password, &format!("4321{ENTER}"));

    // The status page follows the phone without reloading; the state diagram lights the
    // state it is in.
    browser.wait_text("#connection", "up on the primary");
    assert_eq!(lit(&browser), "up-primary");
    browser.wait_text("#lines", "Line 1");
    let lines = browser.wait_text("#lines", "Line 2");
    browser.wait(&format!("both lines registered in {lines:?}"), || {
        let text = browser.text(&browser.find("#lines"));
        (text.matches("registered on the primary").count() == 2).then_some(())
    });
    browser.wait_text("#timeline", "line 2 registered on the primary");

    // Line 1 calls line 2; the incoming call shows with its buttons, and Answer answers it.
    let target = browser.find("#dial-target");
    browser.type_into(&target, "1002");
    browser.click(&browser.find("#dial button[type=submit]"));
    browser.wait_text("#call-message", "placed from line 1 to 1002");
    let answer = browser.find("#calls button[aria-label^=Answer]");
    save_screenshot(&browser, "status-ringing.png");
    browser.click(&answer);
    browser.wait("both ends answered", || {
        let calls = browser.text(&browser.find("#calls"));
        (calls.matches("answered").count() == 2).then_some(())
    });
    run.wait_log("the caller's answer", |l| l.contains("\"event\":\"call_outcome\"") && l.contains("Answered"));
    save_screenshot(&browser, "status-call.png");
    // Hang up from the page: both ends go.
    browser.click(&browser.find("#calls button[aria-label^='Hang up']"));
    browser.wait("no call left", || browser.try_find("#calls tr").is_none().then_some(()));

    // The keyboard alone: Tab to the dial form, type, Tab to the button, Enter.
    browser.go(&format!("{base}/status"));
    browser.wait_text("#connection", "up on the primary");
    let mut path = Vec::new();
    while focused(&browser) != "dial-target" {
        assert!(path.len() < 30, "the dial field is not reachable with Tab: {path:?}");
        browser.keys(TAB);
        path.push(focused(&browser));
    }
    assert!(path.contains(&"dial-line".to_owned()), "the line field comes first: {path:?}");
    browser.keys("1002");
    browser.keys(TAB);
    let on_button = browser.script("return document.activeElement.tagName + ' ' + document.activeElement.textContent;");
    assert_eq!(on_button.as_str(), Some("BUTTON Dial"));
    browser.keys(ENTER);
    browser.wait_text("#call-message", "placed from line 1 to 1002");
    let reject = browser.find("#calls button[aria-label^=Reject]");
    browser.click(&reject);
    browser.wait("the rejected call gone", || {
        browser.try_find("#calls button[aria-label^=Reject]").is_none().then_some(())
    });

    // A phone-sized screen: nothing wider than the screen, every field labelled.
    browser.script("window.resizeTo(390, 844);");
    let narrow = browser.script(
        "return document.querySelectorAll('input:not([type=hidden])').length > 0 && [...document.querySelectorAll('input:not([type=hidden])')]\
         .every(i => i.labels && i.labels.length > 0);",
    );
    assert_eq!(narrow.as_bool(), Some(true), "an input without a label");
    drop(browser);
    let phone = Browser::start(390, 844);
    phone.go(&format!("{base}/login"));
    let password = phone.find("#password");
    phone.type_into(&password, &format!("4321{ENTER}"));
    phone.wait_text("#connection", "up on the primary");
    let fits = phone.script("return document.documentElement.scrollWidth <= window.innerWidth;");
    assert_eq!(fits.as_bool(), Some(true), "the page is wider than a phone's screen");
    save_screenshot(&phone, "status-phone.png");

    // The primary dies: the page shows the phone on the backup, without reloading.
    let killed = std::time::Instant::now();
    registrar.kill();
    phone.wait_text("#connection", "up on the backup");
    let shown = killed.elapsed();
    assert_eq!(lit(&phone), "up-backup");
    phone.wait_text("#timeline", "failed over to the backup");
    phone.wait("both lines on the backup", || {
        let text = phone.text(&phone.find("#lines"));
        (text.matches("registered on the backup").count() == 2).then_some(())
    });
    eprintln!("web_browser: the failover showed on the status page {} ms after the kill", shown.as_millis());
    save_screenshot(&phone, "status-failover.png");

    // Logging out goes back to the login form.
    phone.click(&phone.find("header form button"));
    phone.find("#password");
    drop(phone);
    run.stop();
}

/// The HTML id of the field of `parameter` on a settings page.
fn field_id(parameter: &str) -> String {
    format!("#f-{}", parameter.replace(' ', "-"))
}

#[test]
fn a_person_changes_the_settings_in_the_browser_over_https() {
    let _w = watchdog("settings in a browser", Duration::from_secs(180));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let cfg = lab.web_config(&registrar, "");
    let bad = lab.dir.write("not-a-certificate.pem", "hello").expect("write a bad file");
    let flags = lab.web_https_flags();
    let flags: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_os_str()).collect();
    let mut run = WebRun::start(BIN, &cfg, &flags, "https");
    let base = format!("https://{}", run.addr);
    let browser = Browser::start_with(1280, 1000, true);

    // Log in over HTTPS; the menu leads to Global SIP.
    browser.go(&format!("{base}/login"));
    let password = browser.find("#password");
    browser.type_into(&password, &format!("4321{ENTER}"));
    browser.wait_text("#connection", "up on the primary");
    browser.click(&browser.find("nav a[href='/settings/global-sip']"));
    let keepalive = browser.find(&field_id("sip persistent tls keep alive"));

    // The keyboard alone reaches the field, and every field has a label.
    let mut path = Vec::new();
    while focused(&browser) != "f-sip-persistent-tls-keep-alive" {
        assert!(path.len() < 60, "the keep-alive field is not reachable with Tab: {path:?}");
        browser.keys(TAB);
        path.push(focused(&browser));
    }
    let labelled = browser.script(
        "return [...document.querySelectorAll('input:not([type=hidden]), select')]\
         .every(i => i.labels && i.labels.length > 0);",
    );
    assert_eq!(labelled.as_bool(), Some(true), "a field without a label");

    // Change the keep-alive interval and save: the local file holds it, the running
    // phone takes it at once, and the registrar sees pings at the new interval.
    browser.clear(&keepalive);
    browser.type_into(&keepalive, "3");
    save_screenshot(&browser, "settings-global-sip.png");
    browser.click(&browser.find("form.settings button[type=submit]"));
    browser.wait_text(".message", "applied to the running phone");
    let local = std::fs::read_to_string(lab.dir.path().join("sip-ptls-local.cfg")).expect("the local file");
    assert_eq!(local, "sip persistent tls keep alive: 3\n");
    run.wait_log("the change taken at once", |l| l.contains("applies to the running phone at once"));
    browser.go(&format!("{base}/status"));
    browser.wait_text("#connection", "up on the primary");
    let start = registrar.stats().pings;
    std::thread::sleep(Duration::from_secs(6));
    let pings = registrar.stats().pings - start;
    assert!((1..=3).contains(&pings), "{pings} pings in 6 s at a 3 s interval");

    // A file that is not a certificate: the error shows next to its field.
    browser.go(&format!("{base}/settings/tls"));
    let upload = browser.find(&format!("{}-upload", field_id("sips trusted certificates")));
    browser.type_into(&upload, &bad.display().to_string());
    browser.click(&browser.find("form.settings button[type=submit]"));
    let error = browser.wait_text(&format!("{}-error", field_id("sips trusted certificates")), "sips trusted");
    assert!(error.contains("uploaded not-a-certificate.pem") && error.contains("PEM"), "{error}");
    save_screenshot(&browser, "settings-tls-error.png");
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("sip-ptls-local.cfg")).expect("the local file"),
        local,
        "a refused upload changes nothing"
    );
    drop(browser);

    // On a phone-sized screen the settings fit too.
    let phone = Browser::start_with(390, 844, true);
    phone.go(&format!("{base}/login"));
    let password = phone.find("#password");
    phone.type_into(&password, &format!("4321{ENTER}"));
    phone.wait_text("#connection", "up on the primary");
    phone.go(&format!("{base}/settings/line/1"));
    phone.find(&field_id("sip line1 user name"));
    let fits = phone.script("return document.documentElement.scrollWidth <= window.innerWidth;");
    assert_eq!(fits.as_bool(), Some(true), "the settings page is wider than a phone's screen");
    save_screenshot(&phone, "settings-line-phone.png");
    drop(phone);
    run.stop();
}
