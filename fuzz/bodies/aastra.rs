//! Fuzz body `aastra`: the Aastra configuration reader and the validation behind it.
//!
//! Text mode (first byte not a multiple of 8): the rest, split at NUL bytes into up to
//! three files (`aastra.cfg`, `6737i.cfg`, `mac.cfg`, decoded lossily as UTF-8), goes to
//! `config::aastra::load`. It must not panic; every diagnostic names one of the files and
//! a line inside it; a configuration that loads passes `Config::validate`, has a line
//! number per account, and loads again unchanged from `render_effective`'s output with
//! the passwords put back.
//!
//! Structure mode (first byte a multiple of 8): a `Config` built from the bytes goes to
//! `Config::validate` and `render_effective` (no panic), and the rendered text to `load`
//! (no panic, diagnostics inside the text; what loads passes validation).

// The input reader is a module of the crate root (fuzz target or replay test), next to
// this body, so that it is compiled once where several bodies share it.
use crate::input::Input;
use sip_ptls::config::aastra::{Diagnostic, Source, load, render_effective, unmask_passwords};
use sip_ptls::config::{
    AccountConfig, Backoff, CertificateFiles, Config, DnsQueryType, Failback, ServerAddr, TransportMode,
};
use sip_ptls::rng::Seed;
use sip_ptls::time::Duration;
use std::net::{IpAddr, SocketAddr};

const NAMES: [&str; 3] = ["aastra.cfg", "6737i.cfg", "mac.cfg"];

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte().is_multiple_of(8) {
        structure(&mut input);
    } else {
        text(input.rest());
    }
}

fn text(data: &[u8]) {
    let files: Vec<String> = data.splitn(3, |b| *b == 0).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let sources: Vec<Source<'_>> = files.iter().zip(NAMES).map(|(text, name)| Source { name, text }).collect();
    let (diagnostics, loaded) = match load(&sources) {
        Ok(l) => (l.warnings.clone(), Some(l)),
        Err(e) => (e, None),
    };
    check_diagnostics(&diagnostics, &sources);
    let Some(l) = loaded else { return };
    assert_eq!(l.config.validate(), Ok(()), "a loaded configuration fails validation");
    assert_eq!(l.line_numbers.len(), l.config.accounts.len());
    assert!(l.seed_configured || l.config.seed.is_zero(), "a seed without `sip persistent tls seed`");
    let rendered = render_effective(&l.config, &l.line_numbers);
    let again_text = unmask_passwords(&rendered, &l.config, &l.line_numbers);
    let again = load(&[Source { name: "effective.cfg", text: &again_text }])
        .unwrap_or_else(|e| panic!("the effective configuration does not load: {e:?}\n{again_text}"));
    assert_eq!(again.config, l.config, "the effective configuration loads differently:\n{again_text}");
    assert_eq!(again.line_numbers, l.line_numbers);
}

fn check_diagnostics(diagnostics: &[Diagnostic], sources: &[Source<'_>]) {
    for d in diagnostics {
        let source = sources.iter().find(|s| s.name == d.file);
        let source = source.unwrap_or_else(|| panic!("diagnostic for an unknown file: {d}"));
        let lines = source.text.lines().count();
        assert!(d.line <= lines, "{d} is past the end ({lines} lines)");
        assert!(!d.to_string().is_empty());
    }
}

fn structure(input: &mut Input<'_>) {
    let config = config(input);
    let lines: Vec<u8> = input.sized(12).to_vec();
    let _ = config.validate();
    let rendered = render_effective(&config, &lines);
    let _ = (config.effective_keepalive(None), config.effective_keepalive(Some(Duration::from_secs(7))));
    let sources = [Source { name: "effective.cfg", text: &rendered }];
    match load(&sources) {
        Ok(l) => {
            check_diagnostics(&l.warnings, &sources);
            assert_eq!(l.config.validate(), Ok(()), "a loaded configuration fails validation");
        }
        Err(e) => check_diagnostics(&e, &sources),
    }
}

fn string(input: &mut Input<'_>) -> String {
    // Mostly short printable text from a small alphabet, sometimes arbitrary bytes.
    let raw = input.sized(24);
    if raw.first().is_some_and(|b| b & 0x80 != 0) {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        const ALPHABET: &[u8] = b"abc019.-_:@# \t\"<>;=*\\\r\nz";
        raw.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
    }
}

fn opt_string(input: &mut Input<'_>) -> Option<String> {
    (input.byte() & 1 == 1).then(|| string(input))
}

fn server(input: &mut Input<'_>) -> Option<ServerAddr> {
    (input.byte() & 1 == 1).then(|| ServerAddr::new(string(input), input.u16()))
}

fn millis(input: &mut Input<'_>) -> Duration {
    Duration::from_millis(u64::from(input.u32()))
}

fn config(input: &mut Input<'_>) -> Config {
    let flags = input.byte();
    let accounts = (0..input.byte() % 12)
        .map(|_| AccountConfig {
            user_name: string(input),
            auth_name: string(input),
            password: string(input),
            display_name: string(input),
            registration_period: (input.byte() & 1 == 1).then(|| input.u32()),
        })
        .collect();
    Config {
        mode: if flags & 1 == 1 { TransportMode::PersistentTls } else { TransportMode::PerCallTls },
        proxy: server(input),
        backup_proxy: server(input),
        registrar: server(input),
        backup_registrar: server(input),
        accounts,
        keepalive_interval: millis(input),
        pong_timeout: millis(input),
        registration_period: input.u32(),
        registration_renewal: input.u32(),
        registration_retry: input.u32(),
        registration_timeout_retry: input.u32(),
        transaction_timeout: millis(input),
        connect_timeout: millis(input),
        sips_scheme: flags & 2 != 0,
        outbound: flags & 4 != 0,
        instance_id: opt_string(input),
        certificates: CertificateFiles {
            root_and_intermediate: opt_string(input),
            local_certificate: opt_string(input),
            private_key: opt_string(input),
            trusted_certificates: opt_string(input),
            revocation_list: opt_string(input),
        },
        backoff: Backoff { base: millis(input), max: millis(input) },
        failback: Failback { probe_interval: millis(input), stable_probes: input.byte() },
        call_queue_limit: input.byte(),
        call_setup_timeout: millis(input),
        seed: if flags & 8 != 0 {
            let bytes: Vec<u8> = (0..32).map(|_| input.byte()).collect();
            Seed::from_bytes(bytes.try_into().unwrap_or([0; 32]))
        } else {
            u64::from(input.u32()).into()
        },
        write_stall_timeout: millis(input),
        max_write_backlog: input.u32() as usize,
        max_ringing_calls: input.byte(),
        ringing_timeout: millis(input),
        orphaned_call_timeout: millis(input),
        // Read last, so that the inputs kept before these fields decode as before.
        dns_query_type: DnsQueryType::from_number(i64::from(input.byte() % 4)).unwrap_or_default(),
        dns_servers: (0..input.byte() % 5)
            .map(|_| SocketAddr::new(IpAddr::from(input.u32().to_be_bytes()), input.u16()))
            .collect(),
    }
}
