//! `sip-ptls run`: runs a phone from Aastra configuration files until Ctrl-C, then
//! de-registers every line and exits 0.

use super::{files, log};
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use futures_lite::future;
use sip_ptls::Event;
use sip_ptls::runtime::{InstanceIdOrigin, Phone, PhoneOptions, device_instance_id, os_seed};
use std::path::PathBuf;
use std::process::ExitCode;

/// What `run` was asked to do.
pub struct Options {
    /// The configuration files, in increasing precedence.
    pub configs: Vec<PathBuf>,
    /// One JSON object per line instead of human-readable lines.
    pub json: bool,
    /// Answer incoming calls (otherwise they are rejected with 480).
    pub auto_answer: bool,
    /// Record a trace of the core to this file.
    pub record: Option<PathBuf>,
}

/// Runs the phone; the exit status is 0 after a clean shutdown, 2 for a bad
/// configuration, 1 when the phone stopped for another reason.
pub fn run(opts: &Options) -> ExitCode {
    log::init(opts.json);
    let conf = files::read(&opts.configs);
    let mut loaded = match conf.loaded {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if !loaded.seed_configured {
        loaded.config.seed = match os_seed() {
            Ok(seed) => seed,
            Err(e) => {
                tracing::error!("cannot draw a seed from the OS random source: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    // The instance identifier names the device, not the run: never left to the seed.
    match device_instance_id(&loaded.config, &opts.configs) {
        Ok((id, origin)) => {
            tracing::info!("instance id {id} ({})", describe(&origin));
            loaded.config.instance_id = Some(id);
        }
        Err(e) => {
            tracing::error!("instance id: {e}");
            return ExitCode::from(2);
        }
    }
    let lines = loaded.line_numbers.clone();
    let mut options = PhoneOptions::default();
    options.record.clone_from(&opts.record);
    if let Some(file) = &options.record {
        tracing::info!("recording a trace of the core to {}", file.display());
    }
    let (phone, driver) = match Phone::new_with(loaded.config, &conf.base_dir, &options) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let signals = match Signals::new([Signal::Int, Signal::Term]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch for Ctrl-C: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("phone starting; Ctrl-C de-registers and exits");
    let app = async move {
        let mut signals = signals;
        let mut clean = false;
        let mut stopping = false;
        loop {
            let next = future::or(async { Some(phone.events.next().await) }, async {
                signals.next().await;
                None
            })
            .await;
            match next {
                None if stopping => {
                    tracing::warn!("second interrupt: exiting without waiting");
                    break;
                }
                None => {
                    tracing::info!("interrupted: de-registering");
                    stopping = true;
                    phone.handle.shutdown();
                }
                Some(None) => break,
                Some(Some(e)) => {
                    log::event(&e, &lines);
                    match e.event {
                        Event::IncomingCall { call, .. } if opts.auto_answer => {
                            let _ = phone.handle.answer(call, Vec::new()).await;
                        }
                        Event::IncomingCall { call, .. } => {
                            let _ = phone.handle.reject(call, 480).await;
                        }
                        Event::ShutdownComplete => clean = true,
                        _ => {}
                    }
                }
            }
        }
        clean
    };
    let clean = smol::block_on(future::or(
        async {
            driver.run().await;
            // The driver ended: let the application drain the last events.
            future::pending::<bool>().await
        },
        app,
    ));
    if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE }
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
