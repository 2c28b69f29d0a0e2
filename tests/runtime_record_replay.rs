//! Record and replay over real TLS on loopback: a phone records its trace against the
//! embedded registrar, and the trace replays identically through `replay_trace`, the code
//! path of `sip-ptls replay`, with the invariant monitor finding nothing; a tampered
//! output and a malformed line are named by their line; the file is the owner's only and
//! holds no password.
#![cfg(all(feature = "runtime", feature = "registrar", feature = "sim"))]

mod runtime_support;

use runtime_support::{Lab, assert_replays, watchdog};
use sip_ptls::config::Config;
use sip_ptls::ids::{AccountId, Server};
use sip_ptls::replay::{ReplayError, replay_trace};
use sip_ptls::{CallOutcome, EndReason, Event};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The test users' passwords, which must never reach a trace.
fn passwords() -> Vec<&'static str> {
    runtime_support::USERS.iter().map(|(_, p)| *p).collect()
}

/// A short recorded session in `lab`: both lines register, then the phone shuts down.
/// Returns the configuration the phone ran with and the trace.
fn record_registration(lab: &Lab, name: &str) -> (Config, PathBuf) {
    let primary = lab.registrar();
    let config = lab.config(&primary, None);
    let trace = lab.dir.path().join(name);
    let mut phone = lab.phone_recording(config.clone(), &trace);
    phone.all_registered(Server::Primary, Duration::from_secs(10));
    let events = phone.shutdown();
    assert_eq!(events.last().map(|e| &e.event), Some(&Event::ShutdownComplete), "{events:?}");
    (config, trace)
}

fn lines(trace: &Path) -> Vec<String> {
    std::fs::read_to_string(trace).expect("read the trace").lines().map(str::to_owned).collect()
}

/// `lines` written to a new file beside `trace`.
fn rewrite(trace: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = trace.with_file_name(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the changed trace");
    path
}

#[test]
fn a_recorded_session_with_a_call_and_an_outage_replays_identically() {
    let _w = watchdog("record and replay", Duration::from_secs(90));
    let lab = Lab::new();
    let primary = lab.registrar();
    let config = lab.config(&primary, None);
    let trace = lab.dir.path().join("session.jsonl");
    let mut phone = lab.phone_recording(config.clone(), &trace);
    phone.all_registered(Server::Primary, Duration::from_secs(10));

    // Line 1 calls line 2 over the one connection; the phone answers itself.
    let (call, outcome) = phone.call(AccountId(0), "1002", Duration::from_secs(10));
    assert_eq!(outcome, Event::CallOutcome { call, outcome: CallOutcome::Answered }, "{}", phone.history());
    phone.handle.hang_up_blocking(call).expect("hang up");
    phone.wait("the callee's side ended", Duration::from_secs(10), |e| {
        matches!(e, Event::CallEnded { reason: EndReason::RemoteHangup, .. })
    });

    // A faster keep-alive, taken by the running phone and recorded; a server change is
    // refused (it needs a restart) and recorded too.
    let mut faster = config.clone();
    faster.keepalive_interval = sip_ptls::time::Duration::from_millis(700);
    assert_eq!(phone.handle.reconfigure_blocking(faster.clone()), Some(Ok(())));
    let mut elsewhere = faster;
    elsewhere.backup_proxy = elsewhere.proxy.clone();
    let refused = phone.handle.reconfigure_blocking(elsewhere).expect("running");
    assert_eq!(refused.map_err(|e| e.changed), Err(vec!["servers".to_owned()]));
    let pings = primary.stats().pings;
    std::thread::sleep(Duration::from_millis(1600));
    assert!(primary.stats().pings > pings, "pings at the new interval");
    let status = phone.handle.status_blocking().expect("running");
    assert!(status.link.pings_sent >= 1 && status.link.up_since.is_some(), "{status:?}");

    // The registrar goes away and comes back: flow lost, reconnect, re-registration.
    primary.kill();
    phone.wait("the flow lost", Duration::from_secs(10), |e| matches!(e, Event::FlowLost { .. }));
    primary.restore().expect("the registrar listens again");
    phone.all_registered(Server::Primary, Duration::from_secs(15));

    let events = phone.shutdown();
    assert_eq!(events.last().map(|e| &e.event), Some(&Event::ShutdownComplete), "{events:?}");

    let text = std::fs::read_to_string(&trace).expect("read the trace");
    for password in passwords() {
        assert!(!text.contains(password), "the trace holds the password {password:?}");
    }
    assert!(text.contains("Authorization: Digest"), "the lines authenticated, so the check above means something");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&trace).expect("the trace exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the trace is its owner's only: {mode:o}");
    }

    let report = replay_trace(&trace, config.clone()).expect("the trace replays");
    assert_eq!(report.divergence, None);
    assert_eq!(report.violations, Vec::<String>::new());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let recorded_outputs = text.lines().filter(|l| l.starts_with(r#"{"type":"output""#)).count();
    assert_eq!(report.outputs, recorded_outputs, "every recorded output was compared");
    let timeline: Vec<&str> = report.timeline.iter().map(|m| m.what.as_str()).collect();
    for expected in [
        "-> INVITE ",
        "<- SIP/2.0 200 OK",
        "-> BYE ",
        "take a new configuration",
        "refused, NeedsRestart",
        "closed: ",
        "event ShutdownComplete",
    ] {
        assert!(timeline.iter().any(|w| w.contains(expected)), "no {expected:?} in the timeline: {timeline:#?}");
    }
    assert_eq!(assert_replays(&trace, config), recorded_outputs);
}

#[test]
fn a_tampered_output_is_reported_at_its_line_with_both_values() {
    let _w = watchdog("tampered trace", Duration::from_secs(60));
    let lab = Lab::new();
    let (config, trace) = record_registration(&lab, "registration.jsonl");
    let mut lines = lines(&trace);
    let at = lines
        .iter()
        .position(|l| l.contains(r#""output":"transmit""#) && l.contains("REGISTER sips:"))
        .expect("a REGISTER in the trace");
    lines[at] = lines[at].replacen("Max-Forwards: 70", "Max-Forwards: 69", 1);
    assert!(lines[at].contains("Max-Forwards: 69"), "the REGISTER carries Max-Forwards: {}", lines[at]);
    let tampered = rewrite(&trace, "tampered.jsonl", &lines);

    let report = replay_trace(&tampered, config.clone()).expect("the trace still reads");
    let d = report.divergence.expect("the change is found");
    assert_eq!(d.line, at + 1, "{d}");
    assert!(d.recorded.contains("Max-Forwards: 69") && d.replayed.contains("Max-Forwards: 70"), "{d}");
    assert_eq!(report.outputs, lines[..at].iter().filter(|l| l.contains(r#""type":"output""#)).count());

    // A recorded output removed: the core's extra output is named at the next call.
    let mut lines = self::lines(&trace);
    lines.remove(at);
    let shortened = rewrite(&trace, "shortened.jsonl", &lines);
    let d = replay_trace(&shortened, config.clone()).expect("reads").divergence.expect("the gap is found");
    assert!(d.replayed.contains("REGISTER sips:"), "{d}");
    assert!(d.line > at, "{d}");

    assert_replays(&trace, config);
}

#[test]
fn a_malformed_line_is_named_with_the_file_and_its_number() {
    let _w = watchdog("malformed trace", Duration::from_secs(60));
    let lab = Lab::new();
    let (config, trace) = record_registration(&lab, "registration.jsonl");
    let original = lines(&trace);

    for (name, line, change) in [
        ("cut.jsonl", 4, "cut short"),
        ("garbage.jsonl", 3, "garbage"),
        ("field.jsonl", 5, "field"),
        ("seed.jsonl", 1, "seed"),
    ] {
        let mut lines = original.clone();
        let i = line - 1;
        match change {
            "cut short" => {
                let half = (0..=lines[i].len() / 2).rev().find(|at| lines[i].is_char_boundary(*at)).unwrap_or(0);
                lines[i].truncate(half);
            }
            "garbage" => lines.insert(i, "\u{1}\u{2} not a trace line".into()),
            "field" => lines[i] = lines[i].replacen(r#""t":"#, r#""time":"#, 1),
            _ => lines[i] = lines[i].replacen(r#""seed":""#, r#""seed":"00"#, 1),
        }
        let bad = rewrite(&trace, name, &lines);
        let e = match replay_trace(&bad, config.clone()) {
            Err(ReplayError::Trace(e)) => e,
            other => panic!("{change}: {other:?}"),
        };
        assert_eq!((e.file.as_path(), e.line), (bad.as_path(), Some(line)), "{change}: {e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("{}:{line}: ", bad.display())), "{change}: {text}");
        println!("{change}: {text}");
    }
}

/// `sip-ptls run --record` and `sip-ptls replay`, as a person would use them.
#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use runtime_support::{BIN, cli_replay as replay};
    use std::process::{Command, Stdio};

    #[test]
    fn run_records_and_replay_checks_the_trace() {
        let _w = watchdog("run --record, replay", Duration::from_secs(90));
        let lab = Lab::new();
        let registrar = lab.registrar();
        let cfg = lab
            .dir
            .write("aastra.cfg", runtime_support::sample_aastra_cfg("127.0.0.1", registrar.addr().port()))
            .expect("write aastra.cfg");
        let trace = lab.dir.path().join("run.jsonl");
        let mut child = Command::new(BIN)
            .args(["run", "--record"])
            .arg(&trace)
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sip-ptls run");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while registrar.bindings().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(registrar.bindings().len(), 2, "both lines registered");
        let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("send SIGINT");
        assert!(sent.success());
        assert!(child.wait().expect("wait for run").success(), "run exits 0 after Ctrl-C");

        let (code, out, err) = replay(&trace, &cfg);
        assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
        assert!(out.contains("-> REGISTER sips:") && out.contains("event ShutdownComplete"), "{out}");
        assert!(out.contains("[ok] every one of the") && out.contains("[ok] no invariant broken"), "{out}");

        let mut lines = lines(&trace);
        let at = lines.iter().rposition(|l| l.contains(r#""event":"unregistered""#)).expect("an Unregistered");
        lines[at] = lines[at].replacen(r#""account":"#, r#""account":7"#, 1);
        let tampered = rewrite(&trace, "tampered.jsonl", &lines);
        let (code, out, _) = replay(&tampered, &cfg);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("[FAILED] line {} differs", at + 1)), "{out}");

        let (code, _, err) = replay(&lab.dir.path().join("absent.jsonl"), &cfg);
        assert_eq!(code, 2);
        assert!(err.contains("absent.jsonl") && err.contains("cannot read"), "{err}");

        // A trace is never overwritten.
        let again = Command::new(BIN).args(["run", "--record"]).arg(&trace).arg("--config").arg(&cfg).output();
        let again = again.expect("run again");
        assert_eq!(again.status.code(), Some(2));
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(err.contains("run.jsonl") && err.contains("exists"), "{err}");
    }
}
