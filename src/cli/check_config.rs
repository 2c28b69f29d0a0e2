//! `sip-ptls check-config`: validates the configuration files and the certificate files
//! they name, then prints the effective configuration (passwords masked) or every error
//! with its file and line. Exit status 0 or 2.

use super::files;
use sip_ptls::config::aastra;
use sip_ptls::runtime::ClientTls;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs the check.
pub fn run(paths: &[PathBuf]) -> ExitCode {
    let conf = files::read(paths);
    let loaded = match conf.loaded {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("check-config: {} error(s)", errors.len());
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = ClientTls::load(&loaded.config.certificates, loaded.config.mode, &conf.base_dir) {
        eprintln!("error: {e}");
        eprintln!("check-config: 1 error(s)");
        return ExitCode::from(2);
    }
    print!("{}", aastra::render_effective(&loaded.config, &loaded.line_numbers));
    ExitCode::SUCCESS
}
