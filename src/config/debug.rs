//! `Debug` for the configuration, written by hand so that a `{:?}` in a log line, a
//! panic message or a trace never shows a password. Every field is destructured, so a
//! field added later fails to compile here until someone decides how it is shown.

use super::{AccountConfig, Config};
use core::fmt;

/// What `Debug` shows instead of a secret: whether one is set, never its text or length.
struct Redacted(bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "<redacted>" } else { "<empty>" })
    }
}

impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AccountConfig { user_name, auth_name, password, display_name, registration_period } = self;
        f.debug_struct("AccountConfig")
            .field("user_name", user_name)
            .field("auth_name", auth_name)
            .field("password", &Redacted(!password.is_empty()))
            .field("display_name", display_name)
            .field("registration_period", registration_period)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            mode,
            proxy,
            backup_proxy,
            registrar,
            backup_registrar,
            accounts,
            keepalive_interval,
            pong_timeout,
            registration_period,
            registration_renewal,
            registration_retry,
            registration_timeout_retry,
            transaction_timeout,
            connect_timeout,
            dns_query_type,
            dns_servers,
            sips_scheme,
            outbound,
            instance_id,
            certificates,
            backoff,
            failback,
            call_queue_limit,
            call_setup_timeout,
            write_stall_timeout,
            max_write_backlog,
            max_ringing_calls,
            ringing_timeout,
            orphaned_call_timeout,
            seed,
        } = self;
        f.debug_struct("Config")
            .field("mode", mode)
            .field("proxy", proxy)
            .field("backup_proxy", backup_proxy)
            .field("registrar", registrar)
            .field("backup_registrar", backup_registrar)
            .field("accounts", accounts)
            .field("keepalive_interval", keepalive_interval)
            .field("pong_timeout", pong_timeout)
            .field("registration_period", registration_period)
            .field("registration_renewal", registration_renewal)
            .field("registration_retry", registration_retry)
            .field("registration_timeout_retry", registration_timeout_retry)
            .field("transaction_timeout", transaction_timeout)
            .field("connect_timeout", connect_timeout)
            .field("dns_query_type", dns_query_type)
            .field("dns_servers", dns_servers)
            .field("sips_scheme", sips_scheme)
            .field("outbound", outbound)
            .field("instance_id", instance_id)
            // File names only; the key material is read by the runtime and never kept here.
            .field("certificates", certificates)
            .field("backoff", backoff)
            .field("failback", failback)
            .field("call_queue_limit", call_queue_limit)
            .field("call_setup_timeout", call_setup_timeout)
            .field("write_stall_timeout", write_stall_timeout)
            .field("max_write_backlog", max_write_backlog)
            .field("max_ringing_calls", max_ringing_calls)
            .field("ringing_timeout", ringing_timeout)
            .field("orphaned_call_timeout", orphaned_call_timeout)
            // The seed's own Debug decides how much of it to show.
            .field("seed", seed)
            .finish()
    }
}
