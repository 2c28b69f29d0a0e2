//! The `sip-ptls` binary: `check-config` on sample files, and `run` registering against a
//! registrar on loopback, then de-registering on Ctrl-C (SIGINT) and exiting 0, its
//! recorded trace then checked by `sip-ptls replay`.
#![cfg(feature = "cli")]

#[path = "common/run_child.rs"]
mod run_child;
mod runtime_support;

use run_child::{interrupt, lines_of, wait_line};
use runtime_support::{BIN, Lab, sample_aastra_cfg as sample, temp_dir, watchdog};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn check_config(files: &[&std::path::Path]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("check-config");
    for f in files {
        cmd.arg("--config").arg(f);
    }
    let out = cmd.output().expect("run sip-ptls");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_the_effective_configuration_with_passwords_masked() {
    let _w = watchdog("check-config", Duration::from_secs(60));
    let lab = Lab::new();
    let cfg = lab.dir.write("aastra.cfg", sample("127.0.0.1", 5061)).expect("write a test file");
    let mac = lab.dir.write("00085D1A2B3C.cfg", "sip line2 password: changed\n").expect("write a test file");
    let (code, out, err) = check_config(&[&cfg, &mac]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("sip proxy ip: 127.0.0.1"), "{out}");
    assert!(out.contains("sip line1 password: ********"), "{out}");
    assert!(!out.contains("secret-one") && !out.contains("changed"), "{out}");
}

#[test]
fn check_config_reports_every_error_with_file_and_line() {
    let _w = watchdog("check-config errors", Duration::from_secs(60));
    let dir = temp_dir();
    let cfg = dir
        .write("aastra.cfg", "sip transport protocol: 4\nsip proxy port: many\nsips persistent tls: 1\n")
        .expect("write a test file");
    let (code, out, err) = check_config(&[&cfg]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("aastra.cfg:2"), "{err}");
    assert!(err.contains("sip proxy port"), "{err}");
    assert!(err.contains("sips trusted certificates"), "{err}");
    assert!(out.is_empty(), "{out}");

    let (code, _, err) = check_config(&[&dir.path().join("absent.cfg")]);
    assert_eq!(code, 2);
    assert!(err.contains("absent.cfg") && err.contains("cannot read"), "{err}");
}

#[test]
fn check_config_names_a_bad_certificate_parameter_and_file() {
    let _w = watchdog("check-config certificates", Duration::from_secs(60));
    let dir = temp_dir();
    let cfg = dir.write("aastra.cfg", sample("127.0.0.1", 5061)).expect("write a test file");
    let (code, _, err) = check_config(&[&cfg]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("sips trusted certificates") && err.contains(&dir.path().join("ca.pem").display().to_string()),
        "{err}"
    );
}

#[test]
fn run_registers_both_lines_and_deregisters_on_ctrl_c() {
    let _w = watchdog("run", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let cfg = lab.dir.write("aastra.cfg", sample("127.0.0.1", registrar.addr().port())).expect("write a test file");
    let trace = lab.dir.path().join("run.jsonl");
    let mut child = Command::new(BIN)
        .args(["run", "--json", "--config"])
        .arg(&cfg)
        .arg("--record")
        .arg(&trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sip-ptls run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut registered = 0;
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while registered < 2 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.contains("\"event\":\"registered\"") {
                registered += 1;
            }
            lines.push(line);
        }
    }
    assert_eq!(registered, 2, "log:\n{}", lines.join("\n"));
    assert!(
        lines.iter().all(|l| l.starts_with('{') && l.ends_with('}')),
        "one JSON object per line:\n{}",
        lines.join("\n")
    );
    assert_eq!(registrar.bindings().len(), 2);
    assert_eq!(registrar.stats().accepted, 1);
    let kept = lab.dir.path().join(sip_ptls::runtime::INSTANCE_ID_FILE);
    assert!(kept.exists(), "without a MAC file the instance id is generated once and kept beside aastra.cfg");

    let status = interrupt(&mut child);
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        lines.push(line);
    }
    assert_eq!(status.code(), Some(0), "log:\n{}", lines.join("\n"));
    assert!(registrar.bindings().is_empty(), "de-registered before exiting");
    assert_eq!(lines.iter().filter(|l| l.contains("\"event\":\"unregistered\"")).count(), 2, "{}", lines.join("\n"));
    runtime_support::assert_cli_replays(&trace, &cfg);
}

#[test]
fn run_takes_commands_on_standard_input_and_goes_on_after_its_end() {
    use std::io::Write;
    let _w = watchdog("run console", Duration::from_secs(90));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let cfg = lab.dir.write("aastra.cfg", sample("127.0.0.1", registrar.addr().port())).expect("write a test file");
    let mut child = Command::new(BIN)
        .args(["run", "--json", "--config"])
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sip-ptls run");
    let mut stdin = child.stdin.take().expect("stdin");
    let out = lines_of(child.stdout.take().expect("stdout"));
    let log = lines_of(child.stderr.take().expect("stderr"));
    let (mut said, mut logged) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        wait_line(&log, &mut logged, "registration", |l| l.contains("\"event\":\"registered\""));
    }
    let mut type_line = |text: &str| writeln!(stdin, "{text}").expect("write to the phone's standard input");

    type_line("status");
    wait_line(&out, &mut said, "status of the connection", |l| l == "status: connection up on the primary");
    wait_line(&out, &mut said, "status of line 2", |l| {
        l.starts_with("status: line 2 registered on the primary, expires in ")
    });

    type_line("dial 7 1002");
    wait_line(&out, &mut said, "refusal of an unknown line", |l| l == "error: line 7 is not configured");
    type_line("fly away");
    wait_line(&out, &mut said, "refusal of an unknown command", |l| l.starts_with("error: unknown command \"fly\""));

    // Line 1 calls line 2; the registrar routes the INVITE back over the same connection.
    type_line("dial 1 1002");
    let placed = wait_line(&out, &mut said, "the placed call", |l| l.starts_with("ok: call#"));
    let outgoing: u32 = placed["ok: call#".len()..].split(' ').next().and_then(|n| n.parse().ok()).expect("call id");
    let rings = wait_line(&out, &mut said, "the incoming call", |l| l.contains(" rings on line 2 from "));
    let incoming: u32 = rings["call#".len()..].split(' ').next().and_then(|n| n.parse().ok()).expect("call id");
    type_line(&format!("answer {incoming}"));
    wait_line(&out, &mut said, "the answer", |l| l == format!("ok: answer call#{incoming}"));
    wait_line(&log, &mut logged, "the caller's answered outcome", |l| {
        l.contains("\"event\":\"call_outcome\"") && l.contains(&format!("call#{outgoing}")) && l.contains("Answered")
    });
    type_line(&format!("hang up call#{outgoing}"));
    wait_line(&out, &mut said, "the hang-up", |l| l == format!("ok: hang up call#{outgoing}"));
    wait_line(&log, &mut logged, "the callee's end", |l| {
        l.contains("\"event\":\"call_ended\"") && l.contains(&format!("call#{incoming}"))
    });

    // The end of standard input leaves the phone running and registered.
    drop(stdin);
    wait_line(&log, &mut logged, "the end of input", |l| l.contains("standard input closed"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().expect("wait").is_none(), "the phone stopped at the end of its input");
    assert_eq!(registrar.bindings().len(), 2);

    let status = interrupt(&mut child);
    assert_eq!(status.code(), Some(0), "log:\n{}", logged.join("\n"));
}

/// `sip-ptls run` trusting only another CA than the registrar's, in `trusted.pem`: the
/// process, its log, and the log lines up to the first refused certificate.
fn run_trusting_another_ca(
    lab: &Lab,
    registrar: &sip_ptls::registrar::Registrar,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>, Vec<String>) {
    let other = sip_ptls::registrar::TestPki::other_ca().expect("other CA");
    lab.dir.write("trusted.pem", &other.ca_pem).expect("write a test file");
    let text =
        sample("127.0.0.1", registrar.addr().port()).replace("certificates: ca.pem", "certificates: trusted.pem");
    let cfg = lab.dir.write("aastra.cfg", text).expect("write a test file");
    let mut child = Command::new(BIN)
        .args(["run", "--json", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sip-ptls run");
    let rx = lines_of(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    wait_line(&rx, &mut seen, "a refused certificate", |l| l.contains("certificate rejected"));
    (child, rx, seen)
}

#[test]
fn run_reads_the_certificate_files_again_on_sighup() {
    let _w = watchdog("run SIGHUP", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let (mut child, rx, mut seen) = run_trusting_another_ca(&lab, &registrar);
    // The server's CA goes into the file; SIGHUP has it read again.
    lab.dir.write("trusted.pem", &lab.pki.ca_pem).expect("write a test file");
    let hup = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("run kill");
    assert!(hup.success());
    wait_line(&rx, &mut seen, "the reload", |l| l.contains("certificate files read again"));
    wait_line(&rx, &mut seen, "registered", |l| l.contains("\"event\":\"registered\""));
    assert_eq!(interrupt(&mut child).code(), Some(0), "log:\n{}", seen.join("\n"));
}

#[test]
fn run_reads_a_certificate_file_again_when_it_changes() {
    let _w = watchdog("run file watch", Duration::from_secs(60));
    let lab = Lab::new();
    let registrar = lab.registrar();
    let (mut child, rx, mut seen) = run_trusting_another_ca(&lab, &registrar);
    // Replaced by a rename, as a provisioning tool does: no signal.
    lab.dir.write("trusted.pem.new", &lab.pki.ca_pem).expect("write a test file");
    std::fs::rename(lab.dir.path().join("trusted.pem.new"), lab.dir.path().join("trusted.pem")).expect("rename");
    wait_line(&rx, &mut seen, "the change seen", |l| l.contains("a certificate file changed"));
    wait_line(&rx, &mut seen, "registered", |l| l.contains("\"event\":\"registered\""));
    assert_eq!(interrupt(&mut child).code(), Some(0), "log:\n{}", seen.join("\n"));
}
