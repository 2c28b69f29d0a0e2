//! Shared set-up of the scenario tests: a configuration, a started simulator, checks.

use crate::config::{AccountConfig, CertificateFiles, Config, Failback, ServerAddr};
use crate::engine::RegState;
use crate::ids::{AccountId, Server};
use crate::sim::Sim;
use crate::time::Duration;

pub(super) fn cfg(accounts: usize) -> Config {
    Config {
        proxy: Some(ServerAddr::new("primary.test", 5061)),
        backup_proxy: Some(ServerAddr::new("backup.test", 5061)),
        accounts: (1..=accounts).map(|i| AccountConfig::new(&format!("100{i}"), "pw")).collect(),
        certificates: CertificateFiles { trusted_certificates: Some("ca.pem".into()), ..Default::default() },
        keepalive_interval: Duration::from_secs(10),
        pong_timeout: Duration::from_secs(2),
        failback: Failback { probe_interval: Duration::from_secs(5), stable_probes: 3 },
        seed: 42.into(),
        ..Config::default()
    }
}

pub(super) fn started(config: Config) -> Sim {
    assert_eq!(config.validate(), Ok(()));
    let mut sim = Sim::new(config);
    sim.start();
    sim
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn all_registered_on(sim: &Sim, server: Server) -> bool {
    (0..sim.core.config().accounts.len())
        .all(|i| sim.core.registration(AccountId(i as u8)) == Some(RegState::Registered { server }))
}

pub(super) fn assert_clean(sim: &Sim) {
    assert!(sim.monitor.violations().is_empty(), "violations: {:#?}", sim.monitor.violations());
}
