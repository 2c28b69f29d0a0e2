//! `sip-ptls run`: runs a phone from Aastra configuration files until Ctrl-C, then
//! de-registers every line and exits 0. Meanwhile it takes commands on standard input
//! (`console`), and the end of standard input leaves it running.

use super::console::{self, ConsoleCommand};
use super::{files, log};
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use futures_lite::future;
use sip_ptls::Event;
use sip_ptls::config::aastra::Loaded;
use sip_ptls::runtime::{
    CertWatch, ConfigFiles, InstanceIdOrigin, Phone, PhoneHandle, PhoneOptions, device_instance_id, on_reactor,
    os_seed, resolve_file,
};
use sip_ptls::web::{Applied, Restart, Web, WebOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// What `run` was asked to do.
pub struct Options {
    /// The configuration files, in increasing precedence.
    pub configs: Vec<PathBuf>,
    /// One JSON object per line instead of human-readable lines.
    pub json: bool,
    /// Answer incoming calls (otherwise they ring for the console's `answer` while standard
    /// input is open, and are rejected with 480 once it is closed).
    pub auto_answer: bool,
    /// Record a trace of the core to this file.
    pub record: Option<PathBuf>,
    /// Serve the web interface there.
    pub web: Option<std::net::SocketAddr>,
    /// The local configuration file (default: beside the first configuration file).
    pub local_config: Option<PathBuf>,
    /// The web interface's certificate (PEM, leaf first) and key: HTTPS.
    pub web_cert: Option<PathBuf>,
    /// See `web_cert`.
    pub web_key: Option<PathBuf>,
}

/// Runs the phone; the exit status is 0 after a clean shutdown, 2 for a bad
/// configuration, 1 when the phone stopped for another reason.
pub fn run(opts: &Options) -> ExitCode {
    log::init(opts.json);
    let local = opts.local_config.clone().unwrap_or_else(|| ConfigFiles::default_local(&opts.configs));
    let config_files = ConfigFiles::new(opts.configs.clone(), Some(local));
    let conf = files::read_files(&config_files);
    let loaded = match conf.loaded {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    let loaded = match prepare(loaded, &opts.configs) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let tls = match (&opts.web_cert, &opts.web_key) {
        (Some(cert), Some(key)) => match sip_ptls::runtime::web_server_config(cert, key) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("web interface: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => None,
        _ => {
            tracing::error!("web interface: --web-cert and --web-key go together");
            return ExitCode::from(2);
        }
    };
    let (restart_tx, restart_rx) = async_channel::bounded::<Restart>(4);
    let web_options = WebOptions {
        admin_password: loaded.admin_password.clone(),
        line_numbers: loaded.line_numbers.clone(),
        tls,
        config_files: Some(config_files.clone()),
        restart: Some(restart_tx),
    };
    let mut starts = Starts { base_dir: conf.base_dir, record: opts.record.clone(), count: 0 };
    let (phone, driver) = match starts.start(&loaded) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let (web, web_server) = match &opts.web {
        Some(addr) => match start_web(*addr, &phone.handle, &web_options) {
            Ok((w, _, server)) => (Some(w), Some(server)),
            Err(e) => {
                tracing::error!("web interface: {e}");
                return ExitCode::from(2);
            }
        },
        None => (None, None),
    };
    let signals = match Signals::new([Signal::Int, Signal::Term, Signal::Hup]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch for Ctrl-C: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("phone starting; Ctrl-C de-registers and exits");
    // The drivers run as tasks of this thread's executor: a restart ends one and starts
    // the next while the application loop goes on.
    let executor = Arc::new(smol::Executor::new());
    executor.spawn(driver.run()).detach();
    if let Some(server) = web_server {
        executor.spawn(server).detach();
    }
    let spawner = executor.clone();
    let base_dir = starts.base_dir.clone();
    let (configs, auto_answer) = (opts.configs.clone(), opts.auto_answer);
    let app = async move {
        let mut phone = phone;
        let mut running = loaded;
        let mut watch = watch_certificates(&running, &base_dir);
        let mut lines = running.line_numbers.clone();
        let mut signals = signals;
        // The end of input (no terminal, a closed pipe) only stops the console, never the
        // phone.
        let mut input = stdin_lines();
        let mut clean = false;
        let mut stopping = false;
        // A configuration saved from the web interface, waiting for the calls to end;
        // `restarting` once the phone it replaces is shutting down.
        let mut pending: Option<Box<Loaded>> = None;
        let mut restarting = false;
        loop {
            let next = future::or(
                future::or(async { Next::Event(phone.events.next().await) }, async {
                    match signals.next().await {
                        Some(Ok(Signal::Hup)) => Next::Reload,
                        _ => Next::Interrupt,
                    }
                }),
                future::or(
                    future::or(next_line(&mut input), async {
                        match restart_rx.recv().await {
                            Ok(r) => Next::Restart(r),
                            // Every sender is gone: no restart will come.
                            Err(_) => future::pending().await,
                        }
                    }),
                    async {
                        match watch.as_mut() {
                            Some(w) => Next::FilesChanged(w.changed().await),
                            None => future::pending().await,
                        }
                    },
                ),
            )
            .await;
            match next {
                Next::Interrupt if stopping => {
                    tracing::warn!("second interrupt: exiting without waiting");
                    break;
                }
                Next::Reload => {
                    tracing::info!("SIGHUP: reading the certificate files again");
                    let _ = reload_certificates(&phone.handle, &running, &base_dir).await;
                }
                Next::FilesChanged(Ok(())) => {
                    tracing::info!("a certificate file changed: reading the certificate files again");
                    let _ = reload_certificates(&phone.handle, &running, &base_dir).await;
                }
                Next::FilesChanged(Err(e)) => {
                    tracing::error!("watching the certificate files stopped ({e}); SIGHUP still reloads them");
                    watch = None;
                }
                Next::Interrupt => {
                    tracing::info!("interrupted: de-registering");
                    stopping = true;
                    pending = None;
                    phone.handle.shutdown();
                }
                Next::Event(None) if restarting && !stopping => {
                    restarting = false;
                    let Some(next_config) = pending.take() else { break };
                    let started = match prepare(*next_config, &configs) {
                        Ok(l) => starts.start(&l).map(|p| (p, l)).map_err(|e| e.to_string()),
                        Err(_) => Err("the new configuration cannot start (see above)".to_owned()),
                    };
                    let ((new_phone, driver), config) = match started {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!("restart: {e}; starting again with the previous configuration");
                            match starts.start(&running) {
                                Ok(p) => (p, running.clone()),
                                Err(e) => {
                                    tracing::error!("restart: the previous configuration cannot start either: {e}");
                                    break;
                                }
                            }
                        }
                    };
                    tracing::info!("phone restarted with the saved configuration");
                    spawner.spawn(driver.run()).detach();
                    phone = new_phone;
                    running = config;
                    watch = watch_certificates(&running, &base_dir);
                    lines = running.line_numbers.clone();
                    if let Some(w) = &web {
                        w.set_phone(phone.handle.clone(), lines.clone());
                    }
                }
                Next::Event(None) => break,
                Next::Event(Some(e)) => {
                    log::event(&e, &lines);
                    if let Some(w) = &web {
                        w.event(&e);
                    }
                    match e.event {
                        Event::IncomingCall { call, .. } if auto_answer => {
                            let _ = phone.handle.answer(call, Vec::new()).await;
                        }
                        Event::IncomingCall { .. } if web.is_some() => {}
                        Event::IncomingCall { call, account, from } if input.is_some() => {
                            let line = lines.get(usize::from(account.0)).copied().unwrap_or(account.0 + 1);
                            println!("{call} rings on line {line} from {from}: answer {0}, or reject {0}", call.0);
                        }
                        Event::IncomingCall { call, .. } => {
                            let _ = phone.handle.reject(call, 480).await;
                        }
                        // A restart's shutdown is not the end, unless Ctrl-C came during it.
                        Event::ShutdownComplete if !restarting || stopping => clean = true,
                        Event::CallEnded { .. } | Event::CallOutcome { .. }
                            if pending.is_some() && !restarting && live_calls(&phone.handle).await == 0 =>
                        {
                            restarting = begin_restart(&phone.handle);
                        }
                        _ => {}
                    }
                }
                Next::Restart(Restart::With { config, reply }) if !stopping => {
                    // A restart already waiting takes everything saved since.
                    let at_once = match pending.is_none() && !restarting {
                        true => apply_at_once(&phone.handle, &running, &config, &base_dir).await,
                        false => Err(vec!["a restart already waits".to_owned()]),
                    };
                    let changed = match at_once {
                        Ok(taken) => {
                            tracing::info!("the saved configuration applies to the running phone at once");
                            running = taken;
                            watch = watch_certificates(&running, &base_dir);
                            let _ = reply.try_send(Applied::AtOnce);
                            continue;
                        }
                        Err(changed) => changed,
                    };
                    pending = Some(config);
                    let calls = live_calls(&phone.handle).await;
                    if !restarting && calls == 0 {
                        restarting = begin_restart(&phone.handle);
                    } else if !restarting {
                        tracing::info!("the saved configuration applies when the calls in progress end");
                    }
                    let _ = reply.try_send(Applied::Restart { changed, live_calls: calls });
                }
                Next::Restart(Restart::EndCallsNow) if !stopping && pending.is_some() && !restarting => {
                    tracing::info!("ending the calls in progress to restart");
                    restarting = begin_restart(&phone.handle);
                }
                Next::Restart(_) => {}
                Next::Line(Some(text)) => {
                    let reply = obey(&text, &phone.handle, &lines).await;
                    if !reply.is_empty() {
                        println!("{reply}");
                    }
                }
                Next::Line(None) => {
                    tracing::info!("standard input closed: the phone goes on; Ctrl-C stops it");
                    input = None;
                }
            }
        }
        clean
    };
    // Polled by async-io's reactor thread when a socket or a deadline wakes it, rather
    // than `smol::block_on`: see `Phone::spawn_with` for the wakeups that saves an idle
    // phone.
    let clean = on_reactor::block_on(async move { executor.run(app).await });
    if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Completes a loaded configuration for a start: a seed from the OS when none is
/// configured, and the device's instance identifier.
fn prepare(mut loaded: Loaded, configs: &[PathBuf]) -> Result<Loaded, ExitCode> {
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if !loaded.seed_configured {
        loaded.config.seed = match os_seed() {
            Ok(seed) => seed,
            Err(e) => {
                tracing::error!("cannot draw a seed from the OS random source: {e}");
                return Err(ExitCode::FAILURE);
            }
        };
    }
    // The instance identifier names the device, not the run: never left to the seed.
    match device_instance_id(&loaded.config, configs) {
        Ok((id, origin)) => {
            tracing::info!("instance id {id} ({})", describe(&origin));
            loaded.config.instance_id = Some(id);
            Ok(loaded)
        }
        Err(e) => {
            tracing::error!("instance id: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Starts phones: the first, and each one a restart asks for (its trace, when recording,
/// goes to `FILE.N` for the Nth restart, since a trace holds one core).
struct Starts {
    base_dir: PathBuf,
    record: Option<PathBuf>,
    count: u32,
}

impl Starts {
    fn start(&mut self, loaded: &Loaded) -> Result<(Phone, sip_ptls::runtime::Driver), sip_ptls::runtime::StartError> {
        let mut options = PhoneOptions::default();
        options.record = self.record.as_ref().map(|file| {
            if self.count == 0 {
                file.clone()
            } else {
                let mut name = file.as_os_str().to_owned();
                name.push(format!(".{}", self.count));
                PathBuf::from(name)
            }
        });
        if let Some(file) = &options.record {
            tracing::info!("recording a trace of the core to {}", file.display());
        }
        let started = Phone::new_with(loaded.config.clone(), &self.base_dir, &options);
        if started.is_ok() {
            self.count += 1;
        }
        started
    }
}

/// Calls in progress on the phone (0 when it no longer answers).
async fn live_calls(phone: &PhoneHandle) -> usize {
    phone.status().await.map_or(0, |s| s.live_calls)
}

/// Gives a saved configuration to the running phone, which takes it when only timers,
/// intervals and limits differ (the core decides: `Core::reconfigure`). The seed and the
/// instance identifier of the running phone are kept when the saved files leave them to
/// the start. `Err` says what needs a restart instead.
/// A watch on the certificate files `loaded` names, or none (logged) when they cannot be
/// watched: SIGHUP and the web interface still reload them.
fn watch_certificates(loaded: &Loaded, base_dir: &std::path::Path) -> Option<CertWatch> {
    let c = &loaded.config.certificates;
    let files: Vec<PathBuf> =
        [&c.trusted_certificates, &c.revocation_list, &c.root_and_intermediate, &c.local_certificate, &c.private_key]
            .into_iter()
            .flatten()
            .filter(|name| !name.is_empty())
            .map(|name| resolve_file(base_dir, name))
            .collect();
    match CertWatch::new(&files) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("the certificate files are not watched for changes ({e}); SIGHUP reloads them");
            None
        }
    }
}

/// Reads the certificate files `loaded` names again into the running phone, logging
/// what happened; `Err` names the file that did not load (the phone keeps the old ones).
async fn reload_certificates(phone: &PhoneHandle, loaded: &Loaded, base_dir: &std::path::Path) -> Result<(), String> {
    match phone.reload_certificates(&loaded.config.certificates, loaded.config.mode, base_dir).await {
        Ok(Some(closed)) => {
            tracing::info!(closed, "certificate files read again: new connections use them");
            Ok(())
        }
        Ok(None) => Err("the phone stopped".to_owned()),
        Err(e) => {
            tracing::error!("certificate files not reloaded, the phone keeps the previous ones: {e}");
            Err(e.to_string())
        }
    }
}

/// Gives the running phone a saved configuration when it can take it without a restart:
/// the certificate files read again (an upload may keep its file name), then the
/// timers and limits. `Err` lists what needs a restart.
async fn apply_at_once(
    phone: &PhoneHandle,
    running: &Loaded,
    saved: &Loaded,
    base_dir: &std::path::Path,
) -> Result<Loaded, Vec<String>> {
    let mut taken = saved.clone();
    if !saved.seed_configured {
        taken.config.seed = running.config.seed;
    }
    if taken.config.instance_id.is_none() {
        taken.config.instance_id.clone_from(&running.config.instance_id);
    }
    reload_certificates(phone, &taken, base_dir).await.map_err(|e| vec![format!("certificates: {e}")])?;
    match phone.reconfigure(taken.config.clone()).await {
        Some(Ok(())) => Ok(taken),
        Some(Err(e)) => Err(e.changed),
        None => Err(vec!["the phone stopped".to_owned()]),
    }
}

/// Shuts the phone down for a restart; the application loop starts the next one when
/// this one has stopped.
fn begin_restart(phone: &PhoneHandle) -> bool {
    tracing::info!("restarting the phone with the saved configuration: de-registering first");
    phone.shutdown();
    true
}

/// The web interface's server, for the caller's executor.
pub(super) type WebServer = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Binds the web interface's address: the interface, its URL and the future that serves
/// it beside the phone.
pub(super) fn start_web(
    addr: std::net::SocketAddr,
    phone: &PhoneHandle,
    options: &WebOptions,
) -> Result<(Web, String, WebServer), String> {
    sip_ptls::web::check_address(addr, options).map_err(|e| e.to_string())?;
    let listener =
        smol::block_on(async_net::TcpListener::bind(addr)).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let web = Web::new(phone.clone(), options.clone())?;
    let server = web.clone();
    let serving = Box::pin(async move {
        if let Err(e) = server.serve(listener).await {
            tracing::error!("web interface stopped: {e}");
        }
    });
    let login = if options.admin_password.is_some() { "login with the admin password" } else { "no login" };
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{local}/");
    tracing::info!(url = %url, "web interface on {url} ({login})");
    Ok((web, url, serving))
}

/// What woke the application up.
enum Next {
    /// A phone event, or `None` once the phone has stopped.
    Event(Option<sip_ptls::runtime::PhoneEvent>),
    /// Ctrl-C or SIGTERM.
    Interrupt,
    /// SIGHUP: read the certificate files again.
    Reload,
    /// A certificate file changed on disk (or watching it failed).
    FilesChanged(std::io::Result<()>),
    /// A line of standard input, or `None` at its end (or on a read error).
    Line(Option<String>),
    /// The web interface saved a configuration.
    Restart(Restart),
}

/// Lines of standard input, read by a thread of its own that blocks in `read` and ends
/// at the end of input: an idle console costs no wakeup (a pool thread, as
/// `smol::Unblock` uses, wakes twice a second while it waits for work).
fn stdin_lines() -> Option<async_channel::Receiver<std::io::Result<String>>> {
    let (tx, rx) = async_channel::bounded(16);
    let reader = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        for line in std::io::stdin().lines() {
            if tx.send_blocking(line).is_err() {
                break;
            }
        }
    });
    match reader {
        Ok(_) => Some(rx),
        Err(e) => {
            tracing::warn!("no console: cannot start a thread to read standard input: {e}");
            None
        }
    }
}

/// The next line of standard input; never ready once it has ended.
async fn next_line(input: &mut Option<async_channel::Receiver<std::io::Result<String>>>) -> Next {
    match input {
        Some(lines) => match lines.recv().await {
            Ok(Ok(text)) => Next::Line(Some(text)),
            Ok(Err(e)) => {
                tracing::warn!("standard input: {e}");
                Next::Line(None)
            }
            Err(_) => Next::Line(None),
        },
        None => future::pending().await,
    }
}

/// Carries out one console command and says how it went, in one or more lines.
async fn obey(text: &str, phone: &PhoneHandle, lines: &[u8]) -> String {
    let command = match console::parse(text) {
        Ok(Some(c)) => c,
        Ok(None) => return String::new(),
        Err(e) => return format!("error: {e}"),
    };
    let done = |r: Result<(), sip_ptls::CommandError>, what: String| match r {
        Ok(()) => format!("ok: {what}"),
        Err(e) => format!("error: {what}: {e}"),
    };
    match command {
        ConsoleCommand::Dial { line, target } => {
            let Some(account) = sip_ptls::config::aastra::account_of_line(line, lines) else {
                return format!("error: line {line} is not configured");
            };
            match phone.place_call(account, &target, Vec::new()).await {
                Ok(call) => format!("ok: {call} placed from line {line} to {target}"),
                Err(e) => format!("error: dial from line {line} to {target}: {e}"),
            }
        }
        ConsoleCommand::Answer(call) => done(phone.answer(call, Vec::new()).await, format!("answer {call}")),
        ConsoleCommand::Reject(call, status) => {
            done(phone.reject(call, status).await, format!("reject {call} with {status}"))
        }
        ConsoleCommand::HangUp(call) => done(phone.hang_up(call).await, format!("hang up {call}")),
        ConsoleCommand::Status => match phone.status().await {
            Some(status) => console::describe_status(&status, lines),
            None => "error: the phone has stopped".to_owned(),
        },
        ConsoleCommand::Help => console::HELP.to_owned(),
    }
}

/// Where the instance identifier came from, for the start-up log.
fn describe(origin: &InstanceIdOrigin) -> String {
    match origin {
        InstanceIdOrigin::Configured => "sip persistent tls instance id".to_owned(),
        InstanceIdOrigin::Mac(p) => format!("from the MAC address in {}", p.display()),
        InstanceIdOrigin::Stored(p) => format!("kept in {}", p.display()),
        InstanceIdOrigin::Generated(p) => format!("generated and kept in {}", p.display()),
    }
}
