//! The web interface of a running phone (`sip-ptls run --web ADDR`, docs/web-ui.md): a
//! status page that follows the phone live, and calls placed and taken from the browser.
//! It is an application of the embedding API like any other: it reads
//! [`PhoneHandle::status`] and the events the application hands it, and sends commands
//! through the handle. It decides nothing about connections, registration or calls.
//!
//! HTTP/1.1 is hyper's, on smol through smol-hyper's adapters; the pages are embedded in
//! the binary and work offline.

mod feed;
mod http;
mod pages;
mod routes;
mod session;

use crate::runtime::{PhoneEvent, PhoneHandle};
use async_net::TcpListener;
use core::net::SocketAddr;
use feed::Feed;
use session::Sessions;
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::sync::{Arc, Mutex};

/// How the interface is set up.
#[derive(Clone, Debug, Default)]
pub struct WebOptions {
    /// The administrator password (Aastra `admin password`). Without one there is no
    /// login, and the interface may listen on a loopback address only.
    pub admin_password: Option<String>,
    /// `line_numbers[i]` is the Aastra line number (1 to 9) of account `i`.
    pub line_numbers: Vec<u8>,
}

/// Why the interface cannot listen where it was asked to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebError {
    /// Only loopback addresses for now: a non-loopback address needs HTTPS, which the
    /// interface does not serve yet (docs/web-ui.md).
    #[error("the web interface listens on a loopback address only (127.0.0.0/8 or ::1), not {0}")]
    NotLoopback(SocketAddr),
}

/// Checks that the interface may listen on `addr`.
pub fn check_address(addr: SocketAddr) -> Result<(), WebError> {
    if addr.ip().is_loopback() { Ok(()) } else { Err(WebError::NotLoopback(addr)) }
}

/// The web interface of one phone. Cheap to clone.
#[derive(Clone)]
pub struct Web {
    shared: Arc<Shared>,
}

struct Shared {
    phone: PhoneHandle,
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
                phone,
                options,
                sessions: Mutex::new(sessions),
                feed: Mutex::new(Feed::default()),
            }),
        })
    }

    /// Hands the interface one of the phone's events: the timeline and the live pages
    /// show it. The application calls this for every event it reads.
    pub fn event(&self, e: &PhoneEvent) {
        if let Ok(mut feed) = self.shared.feed.lock() {
            feed.push(e, &self.shared.options.line_numbers);
        }
    }

    /// Serves the interface on `listener` until the listener fails.
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let web = self.clone();
            smol::spawn(async move {
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
            })
            .detach();
        }
    }
}
