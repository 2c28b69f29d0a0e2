//! The sans-IO core driven from tokio instead of the crate's own smol shell: tokio's
//! sockets and timers, tokio-rustls for TLS (with the crate's verified rustls settings),
//! and the same run loop: feed an input with the time, drain every output, sleep until
//! the core's deadline or the next input.
//!
//! It starts an embedded registrar on loopback, registers two lines over one connection,
//! then shuts down (de-registering both) and exits 0 only if all of that happened.
//!
//! `cargo run --example tokio_driver`

#[cfg(all(feature = "runtime", feature = "registrar"))]
mod demo {
    use sip_ptls::config::{AccountConfig, Config, ServerAddr};
    use sip_ptls::dns::{AnyAnswer, LookupFailed, Query};
    use sip_ptls::ids::ConnId;
    use sip_ptls::registrar::{Registrar, RegistrarConfig, TestPki};
    use sip_ptls::runtime::dns::hosts::HostsTable;
    use sip_ptls::runtime::dns::perform::Lookups;
    use sip_ptls::runtime::dns::{Resolver, ResolverConfig};
    use sip_ptls::runtime::{ClientTls, Credentials, server_name, stream_error, tls_error};
    use sip_ptls::time::{Duration, Instant};
    use sip_ptls::{Core, Event, Input, Output, TransportError};
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::mpsc;
    use tokio_rustls::TlsConnector;

    /// What a connection task (or a lookup) reports to the loop.
    enum Report {
        Resolved(Query, Result<AnyAnswer, LookupFailed>),
        Connected(SocketAddr),
        Failed(TransportError),
        Received(Vec<u8>),
        Closed(TransportError),
    }

    /// One connection: TCP, TLS with verification, then read and write until closed.
    async fn connection(
        conn: ConnId,
        addr: SocketAddr,
        server_name_text: String,
        tls: TlsConnector,
        mut writes: mpsc::UnboundedReceiver<Vec<u8>>,
        reports: mpsc::UnboundedSender<(Option<ConnId>, Report)>,
    ) {
        let report = |r| {
            let _ = reports.send((Some(conn), r));
        };
        let tcp = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => return report(Report::Failed(sip_ptls::runtime::connect_error(&e))),
        };
        let _ = tcp.set_nodelay(true);
        let local = match tcp.local_addr() {
            Ok(a) => a,
            Err(e) => return report(Report::Failed(TransportError::Io(e.to_string()))),
        };
        let name = match server_name(&server_name_text) {
            Ok(n) => n,
            Err(e) => return report(Report::Failed(e)),
        };
        let stream = match tls.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                let reason = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(t) => tls_error(t),
                    None => stream_error(&e),
                };
                return report(Report::Failed(reason));
            }
        };
        report(Report::Connected(local));
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                read = rd.read(&mut buf) => match read {
                    Ok(0) => return report(Report::Closed(TransportError::PeerClosed)),
                    Ok(n) => report(Report::Received(buf[..n].to_vec())),
                    Err(e) => return report(Report::Closed(stream_error(&e))),
                },
                data = writes.recv() => match data {
                    Some(data) => {
                        if let Err(e) = wr.write_all(&data).await {
                            return report(Report::Closed(stream_error(&e)));
                        }
                    }
                    // The core closed it: say goodbye and stop.
                    None => {
                        let _ = wr.shutdown().await;
                        return;
                    }
                },
            }
        }
    }

    /// Runs the core against `config` until it has shut down; returns its events.
    async fn drive(config: Config, tls: TlsConnector) -> Vec<Event> {
        let origin = tokio::time::Instant::now();
        let now = || Instant::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX));
        // `localhost` comes from the hosts table; other names from the system's DNS servers.
        let lookups = Lookups::new(HostsTable::system(), Some(Resolver::new(ResolverConfig::system_or_local().0)));
        let mut core = Core::new(config, now());
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let mut conns: HashMap<ConnId, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
        let mut events = Vec::new();
        let mut shutdown_sent = false;
        core.start(now());
        loop {
            // Drain every output after every input.
            while let Some(out) = core.poll_output() {
                match out {
                    Output::Connect { conn, addr, server_name } => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        conns.insert(conn, tx);
                        tokio::spawn(connection(conn, addr, server_name, tls.clone(), rx, reports_tx.clone()));
                    }
                    // The crate's lookups (/etc/hosts, then DNS) run on any executor.
                    Output::Resolve { query } => {
                        let (lookups, reports) = (lookups.clone(), reports_tx.clone());
                        tokio::spawn(async move {
                            let outcome = lookups.perform(&query).await;
                            let _ = reports.send((None, Report::Resolved(query, outcome)));
                        });
                    }
                    Output::Transmit { conn, data } => {
                        if let Some(tx) = conns.get(&conn) {
                            let _ = tx.send(data);
                        }
                    }
                    Output::Close { conn } => {
                        conns.remove(&conn);
                    }
                    Output::Event(e) => {
                        println!("  {:>7} ms  {e:?}", now().as_millis());
                        events.push(e);
                    }
                }
            }
            if core.is_closed() {
                return events;
            }
            // This example's application: shut down once both lines are registered.
            let registered = events.iter().filter(|e| matches!(e, Event::Registered { .. })).count();
            if registered == 2 && !shutdown_sent {
                shutdown_sent = true;
                core.shutdown(now());
                continue;
            }
            let deadline = core.poll_timeout().map(|t| origin + std::time::Duration::from_millis(t.as_millis()));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = reports.recv() => {
                    let Some((conn, r)) = r else { continue };
                    let t = now();
                    let (conn, r) = match (conn, r) {
                        (_, Report::Resolved(query, outcome)) => {
                            core.handle_input(t, Input::Resolved { query, outcome });
                            continue;
                        }
                        (Some(conn), r) => (conn, r),
                        (None, _) => continue,
                    };
                    match r {
                        Report::Resolved(..) => {}
                        Report::Connected(local) => core.handle_input(t, Input::Connected { conn, local }),
                        Report::Failed(reason) => core.handle_input(t, Input::ConnectFailed { conn, reason }),
                        Report::Received(data) => core.handle_input(t, Input::Received { conn, data: &data }),
                        Report::Closed(reason) => core.handle_input(t, Input::Closed { conn, reason }),
                    }
                }
                () = sleep => core.handle_timeout(now()),
            }
        }
    }

    pub fn main() -> Result<(), String> {
        let users = [("1001", "secret-one"), ("1002", "secret-two")];
        let pki = TestPki::new().map_err(|e| e.to_string())?;
        let cert = pki.server_cert(&["localhost", "127.0.0.1"]).map_err(|e| e.to_string())?;
        let registrar =
            Registrar::start(RegistrarConfig::new("example.test", &users, cert)).map_err(|e| e.to_string())?;

        // The crate's verified TLS settings, built from the CA in memory.
        let mut roots = rustls::RootCertStore::empty();
        for cert in <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            pki.ca_pem.as_bytes(),
        ) {
            roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let creds = Credentials { roots, client: None, crls: Vec::new(), warnings: Vec::new() };
        let tls = ClientTls::from_credentials(creds).map_err(|e| e.to_string())?;

        let config = Config {
            // A name, so that the core asks for its addresses (::1 first, then 127.0.0.1,
            // where the registrar listens).
            proxy: Some(ServerAddr::new("localhost", registrar.addr().port())),
            registrar: Some(ServerAddr::new("example.test", 0)),
            accounts: users.iter().map(|(u, p)| AccountConfig::new(u, p)).collect(),
            keepalive_interval: Duration::from_secs(5),
            seed: sip_ptls::runtime::os_seed().map_err(|e| e.to_string())?,
            ..Config::default()
        };
        println!("tokio drives the sip-ptls core against a registrar on {}", registrar.addr());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let run = rt.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(20),
                drive(config, TlsConnector::from(tls.rustls_config())),
            )
            .await
        });
        let events = run.map_err(|_| "the core did not shut down within 20 s".to_owned())?;
        let registered = events.iter().filter(|e| matches!(e, Event::Registered { .. })).count();
        let unregistered = events.iter().filter(|e| matches!(e, Event::Unregistered { .. })).count();
        let stats = registrar.stats();
        if registered == 2 && unregistered == 2 && stats.accepted == 1 && registrar.bindings().is_empty() {
            println!("both lines registered over one connection and de-registered at shutdown");
            Ok(())
        } else {
            Err(format!("registered {registered}, unregistered {unregistered}, connections {}", stats.accepted))
        }
    }
}

#[cfg(all(feature = "runtime", feature = "registrar"))]
fn main() -> std::process::ExitCode {
    match demo::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio_driver: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(all(feature = "runtime", feature = "registrar")))]
fn main() {
    eprintln!("tokio_driver needs the `runtime` and `registrar` features");
}
