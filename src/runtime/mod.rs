//! The runtime shell: sockets, TLS, timers, name resolution and certificate files around
//! the sans-IO [`crate::engine::Core`]. It performs what the core asks and decides
//! nothing: no retries, no failover, no timers beyond the core's deadlines.
//!
//! - [`Phone`]: start a phone from a [`crate::config::Config`], get its [`Events`], send
//!   commands through its [`PhoneHandle`], shut it down.
//! - [`Driver`]: the event loop. Poll [`Driver::run`] on any executor, or let
//!   [`Phone::spawn`] give it a thread. Connection tasks run on an executor owned by the
//!   driver future, so the crate never chooses a global executor; the async-io reactor
//!   (sockets, timers) runs on its own thread as async-io always does.
//! - [`on_reactor::block_on`]: runs a future on the calling thread or, when async-io's
//!   reactor thread wakes it, on that thread, so an idle phone wakes once per event.
//! - [`ClientTls`]: the verified rustls client configuration built from the Aastra
//!   certificate parameters (ring provider, TLS 1.2 and 1.3 only).
//! - [`device_instance_id`]: the phone's `+sip.instance`, stable per device (configured,
//!   from the MAC file name, or generated once and kept beside the configuration).
//! - [`dns`]: A, AAAA, SRV and NAPTR lookups on smol (hickory-proto messages, UDP with a
//!   TCP retry), with TTLs and negative answers, for the core's RFC 3263 steps.
//! - [`PhoneOptions::record`]: a trace of every core input and output, which
//!   `crate::replay` (feature `sim`) plays back against a fresh core.
//! - `timing` (feature `timing`, for the call-setup benchmark only): instants stamped at
//!   fixed points of the shell, to measure where a phone's own time goes.
//!
//! See `docs/embedding.md` for a complete example.

mod cert_watch;
mod certs;
mod clock;
mod command;
mod config_files;
mod conn;
mod der;
pub mod dns;
mod driver;
mod events;
mod identity;
pub mod on_reactor;
mod phone;
#[cfg(feature = "timing")]
pub mod timing;
mod tls;
// Reading a trace back serves only the replay (feature `sim`).
#[cfg_attr(not(feature = "sim"), allow(dead_code, unused_imports))]
pub(crate) mod trace;

pub use cert_watch::CertWatch;
pub use certs::{
    CertFileError, Credentials, LOCAL_CERTIFICATE, PRIVATE_KEY, REVOCATION_LIST, ROOT_AND_INTERMEDIATE,
    TRUSTED_CERTIFICATES, WEB_CERTIFICATE, WEB_PRIVATE_KEY, load as load_credentials, resolve as resolve_file,
};
pub use command::{PhoneEvent, Status};
pub use config_files::{ConfigFiles, LOCAL_FILE, Problem};
pub use driver::Driver;
pub use events::{INFORMATIONAL_CAPACITY, OUTCOME_CAPACITY, is_outcome};
pub use identity::{INSTANCE_ID_FILE, InstanceIdOrigin, device_instance_id, stored_instance_id};
pub use phone::{COMMAND_CAPACITY, Events, Phone, PhoneHandle, PhoneOptions, StartError};
pub use tls::{ClientTls, connect_error, server_name, stream_error, tls_error, web_server_config};
pub use trace::TraceError;

/// A seed for the core's generator: 32 bytes from the operating system's random source,
/// for configurations that do not set `sip persistent tls seed`. The seed is the key that
/// keeps every tag, Call-ID, branch and cnonce unpredictable, so it comes from the OS's
/// cryptographic source, never from the clock or the process id.
///
/// # Errors
///
/// The OS random source failed (on Linux, only if `getrandom(2)` and `/dev/urandom` are
/// both unusable).
pub fn os_seed() -> std::io::Result<crate::rng::Seed> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(crate::rng::Seed::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_seeds_are_fresh() {
        let (a, b) = (super::os_seed(), super::os_seed());
        assert!(matches!((&a, &b), (Ok(_), Ok(_))), "{a:?} {b:?}");
        let (a, b) = (a.map(|s| s.to_bytes()), b.map(|s| s.to_bytes()));
        // Two draws of 256 bits coincide, or are zero, with probability 2^-256.
        assert_ne!(a.as_ref().ok(), b.as_ref().ok());
        assert_ne!(a.ok(), Some([0; 32]));
    }
}
