//! Errors of the embedded registrar: certificate generation, TLS configuration, sockets,
//! and the files of its test directories.

/// Why the registrar (or its test PKI) could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RegistrarError {
    /// rcgen could not make a key or certificate.
    #[error("test certificate generation failed: {0}")]
    Certificate(String),
    /// A PEM certificate or key could not be read.
    #[error("cannot read {what} PEM: {reason}")]
    Pem {
        /// Which input (`server certificate`, `server key`, `client CA`).
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match its certificate).
    #[error("TLS configuration rejected: {0}")]
    Tls(String),
    /// The registrar binds only to loopback addresses.
    #[error("refusing to bind {0}: the embedded registrar listens on loopback only")]
    NotLoopback(std::net::SocketAddr),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The registrar's thread could not be started.
    #[error("cannot start the registrar thread: {0}")]
    Thread(std::io::Error),
    /// `restore` was called while the registrar is still listening.
    #[error("the registrar is already listening on {0}")]
    AlreadyListening(std::net::SocketAddr),
    /// A file or directory of a [`crate::registrar::TestDir`] could not be made, written or read.
    #[error("{}: {source}", .path.display())]
    File {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}
