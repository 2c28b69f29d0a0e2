//! The web interface of a running phone (`sip-ptls run --web ADDR`, docs/web-ui.md): a
//! status page that follows the phone live, calls placed and taken from the browser, and
//! settings pages laid out as the Aastra Web UI's, which write a local configuration file
//! and ask the application to restart the phone with it. It is an application of the
//! embedding API like any other: it reads [`PhoneHandle::status`] and the events the
//! application hands it, and sends commands through the handle. It decides nothing about
//! connections, registration or calls.
//!
//! HTTP/1.1 is hyper's, on smol through smol-hyper's adapters; the pages are embedded in
//! the binary and work offline.

mod configure;
mod feed;
mod form;
mod http;
mod pages;
mod routes;
mod session;
mod settings;
mod settings_page;

use crate::config::aastra::Loaded;
use crate::runtime::{ConfigFiles, PhoneEvent, PhoneHandle};
use async_net::TcpListener;
use core::net::SocketAddr;
use feed::Feed;
use session::Sessions;
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the interface is set up.
#[derive(Clone, Debug, Default)]
pub struct WebOptions {
    /// The administrator password (Aastra `admin password`). Without one there is no
    /// login, and the interface may listen on a loopback address only.
    pub admin_password: Option<String>,
    /// `line_numbers[i]` is the Aastra line number (1 to 9) of account `i`.
    pub line_numbers: Vec<u8>,
    /// Serve HTTPS with this configuration (`runtime::web_server_config`); required
    /// off loopback, and possible on it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The phone's configuration files: the settings pages show what they hold and
    /// write into the local one. Without them the settings pages only say so.
    pub config_files: Option<ConfigFiles>,
    /// Where the settings pages send a saved configuration. The application gives it to
    /// the running phone, or restarts the phone with it and then hands the interface the
    /// new phone ([`Web::set_phone`]).
    pub restart: Option<async_channel::Sender<Restart>>,
}

/// What the settings pages ask of the application.
#[derive(Debug)]
pub enum Restart {
    /// Apply this configuration (saved in the local file): at once when the running phone
    /// takes it (`PhoneHandle::reconfigure`: timers, intervals, limits), otherwise by a
    /// restart once no call is up (de-register, close, start again and register every
    /// line). What was done goes to `reply`.
    With {
        /// The saved configuration.
        config: Box<Loaded>,
        /// The application's answer.
        reply: async_channel::Sender<Applied>,
    },
    /// The person confirmed ending the calls in progress: restart now.
    EndCallsNow,
}

/// What the application did with a saved configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The running phone took it: same connection, same registrations.
    AtOnce,
    /// The phone restarts with it because these changed (`NeedsRestart`), once the
    /// calls in progress (counted) have ended.
    Restart {
        /// What needs the restart, in words.
        changed: Vec<String>,
        /// Calls in progress the restart waits for.
        live_calls: usize,
    },
}

/// Why the interface cannot listen where it was asked to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebError {
    /// Off loopback the interface serves HTTPS only (docs/web-ui.md).
    #[error(
        "the web interface serves plain HTTP on a loopback address only (127.0.0.0/8 or ::1), not {0}: \
         give it a certificate and key (--web-cert, --web-key) for HTTPS"
    )]
    NotLoopback(SocketAddr),
    /// Off loopback a password is required: without one there is no login.
    #[error("the web interface without `admin password` listens on a loopback address only, not {0}")]
    NoPassword(SocketAddr),
}

/// Checks that the interface may listen on `addr`: off loopback only with HTTPS and a
/// password.
pub fn check_address(addr: SocketAddr, options: &WebOptions) -> Result<(), WebError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else if options.tls.is_none() {
        Err(WebError::NotLoopback(addr))
    } else if options.admin_password.is_none() {
        Err(WebError::NoPassword(addr))
    } else {
        Ok(())
    }
}

/// The web interface of one phone. Cheap to clone.
#[derive(Clone)]
pub struct Web {
    shared: Arc<Shared>,
}

struct Shared {
    phone: RwLock<PhoneHandle>,
    /// `lines[i]` is the Aastra line number of account `i` of the phone in `phone`.
    lines: RwLock<Vec<u8>>,
    options: WebOptions,
    sessions: Mutex<Sessions>,
    feed: Mutex<Feed>,
}

impl Web {
    /// An interface that commands `phone`; fails only when the OS random source does
    /// (the interface needs it for tokens nobody can guess).
    pub fn new(phone: PhoneHandle, options: WebOptions) -> Result<Web, String> {
        let sessions = Sessions::new(options.admin_password.is_some())?;
        Ok(Web {
            shared: Arc::new(Shared {
                phone: RwLock::new(phone),
                lines: RwLock::new(options.line_numbers.clone()),
                options,
                sessions: Mutex::new(sessions),
                feed: Mutex::new(Feed::default()),
            }),
        })
    }

    /// Hands the interface one of the phone's events: the timeline and the live pages
    /// show it. The application calls this for every event it reads.
    pub fn event(&self, e: &PhoneEvent) {
        let lines = self.lines();
        if let Ok(mut feed) = self.shared.feed.lock() {
            feed.push(e, &lines);
        }
    }

    /// Hands the interface the phone that a restart started, with its line numbers.
    pub fn set_phone(&self, phone: PhoneHandle, line_numbers: Vec<u8>) {
        if let Ok(mut p) = self.shared.phone.write() {
            *p = phone;
        }
        if let Ok(mut l) = self.shared.lines.write() {
            *l = line_numbers;
        }
    }

    /// The phone the interface commands now.
    fn phone(&self) -> Option<PhoneHandle> {
        self.shared.phone.read().ok().map(|p| p.clone())
    }

    /// The Aastra line number of each account of the phone.
    fn lines(&self) -> Vec<u8> {
        self.shared.lines.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// True when a password protects the interface.
    fn login_required(&self) -> bool {
        self.shared.sessions.lock().map(|s| s.login_required()).unwrap_or(true)
    }

    /// True when the interface serves HTTPS (its cookie is then `Secure`).
    fn https(&self) -> bool {
        self.shared.options.tls.is_some()
    }

    async fn serve_connection<S>(&self, stream: S)
    where
        S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
    {
        let web = self.clone();
        let service = hyper::service::service_fn(move |req| {
            let web = web.clone();
            async move { Ok::<_, std::convert::Infallible>(routes::handle(&web, req).await) }
        });
        // The timer gives hyper its header-read timeout: a client that opens a
        // connection and sends nothing does not hold it for ever.
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(SmolTimer::new())
            .serve_connection(FuturesIo::new(stream), service);
        if let Err(e) = connection.await {
            tracing::debug!("web connection: {e}");
        }
    }

    /// Serves the interface on `listener` until the listener fails. Each connection is a
    /// task of an executor that lives inside this future, as the phone's driver's
    /// connections are: the interface runs on whatever polls the future, and no global
    /// executor is started (smol's would keep threads inside `async_io::block_on`, which
    /// makes async-io's reactor thread poll with a back-off after every event).
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        let ex = async_executor::Executor::new();
        ex.run(self.accept_on(&ex, listener)).await
    }

    async fn accept_on(&self, ex: &async_executor::Executor<'static>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let web = self.clone();
            ex.spawn(async move {
                match web.shared.options.tls.clone() {
                    None => web.serve_connection(stream).await,
                    Some(tls) => {
                        // A handshake that never ends must not hold the connection: it
                        // gets the same bound as a request's headers.
                        let handshake = futures_rustls::TlsAcceptor::from(tls).accept(stream);
                        let timeout = async {
                            async_io::Timer::after(HANDSHAKE_TIMEOUT).await;
                            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
                        };
                        match futures_lite::future::or(handshake, timeout).await {
                            Ok(tls_stream) => web.serve_connection(tls_stream).await,
                            Err(e) => tracing::debug!("web TLS handshake: {e}"),
                        }
                    }
                }
            })
            .detach();
        }
    }
}
