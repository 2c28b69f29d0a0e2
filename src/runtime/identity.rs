//! Where a phone's `+sip.instance` comes from when the configuration does not set it:
//! the MAC address of an Aastra `<mac>.cfg` file, else an identifier generated once from
//! OS randomness and kept in a file beside the first configuration file.
//!
//! The file I/O lives here, in the runtime, so that the core stays pure; the rule itself
//! is described in `docs/configuration.md` ("The instance identifier").

use crate::config::{Config, instance};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the file that keeps a generated instance identifier.
pub const INSTANCE_ID_FILE: &str = "sip-ptls-instance-id";

/// Which rule gave the instance identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceIdOrigin {
    /// `sip persistent tls instance id` was set.
    Configured,
    /// Made from the MAC address in the name of this configuration file.
    Mac(PathBuf),
    /// Read from this file, where an earlier start kept it.
    Stored(PathBuf),
    /// Generated now and kept in this file for every later start.
    Generated(PathBuf),
}

/// The instance identifier for a phone configured by `config_files` (in the order given
/// to the reader): the configured one, else the MAC-based one of the last `<mac>.cfg`
/// file (the most specific, as in the layering), else the one kept in
/// [`INSTANCE_ID_FILE`] in the directory of the first file, generated there first if
/// it does not exist yet.
pub fn device_instance_id(config: &Config, config_files: &[PathBuf]) -> io::Result<(String, InstanceIdOrigin)> {
    if let Some(id) = &config.instance_id {
        return Ok((id.clone(), InstanceIdOrigin::Configured));
    }
    let mac = config_files.iter().rev().find_map(|p| Some((instance::mac_from_file_name(p.to_str()?)?, p)));
    if let Some((mac, path)) = mac {
        return Ok((instance::from_mac(mac), InstanceIdOrigin::Mac(path.clone())));
    }
    let dir = match config_files.first().and_then(|p| p.parent()) {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    stored_instance_id(&dir)
}

/// The identifier kept in `dir`, generated and written first when there is none.
pub fn stored_instance_id(dir: &Path) -> io::Result<(String, InstanceIdOrigin)> {
    let path = dir.join(INSTANCE_ID_FILE);
    match read_id(&path) {
        Ok(id) => return Ok((id, InstanceIdOrigin::Stored(path))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut random = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut random)
        .map_err(|_| io::Error::other("the OS gave no randomness for the instance identifier"))?;
    let id = instance::from_random(random);
    // Written under a temporary name, then linked into place: a reader never sees half a
    // file, and if another process won the race its identifier is kept, not replaced.
    let tmp = dir.join(format!(".{INSTANCE_ID_FILE}.{}.tmp", std::process::id()));
    let written = write_private(&tmp, &format!("{id}\n")).and_then(|()| fs::hard_link(&tmp, &path));
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok((id, InstanceIdOrigin::Generated(path))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((read_id(&path)?, InstanceIdOrigin::Stored(path))),
        Err(e) => {
            Err(io::Error::new(e.kind(), format!("cannot keep the instance identifier in {}: {e}", path.display())))
        }
    }
}

/// A kept identifier, checked with the rule of `Config::validate` so that a damaged file
/// is reported rather than sent.
fn read_id(path: &Path) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    let id = text.trim();
    match instance::problem(id) {
        None => Ok(id.to_owned()),
        Some(why) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not an instance identifier ({why}); remove the file to generate a new one", path.display()),
        )),
    }
}

/// Creates `path` readable and writable by its owner only, and writes `text` durably.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Core;
    use crate::config::aastra::{Source, load};
    use crate::time::Instant;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!("sip-ptls-identity-{tag}-{}-{nanos}", std::process::id()));
            fs::create_dir_all(&dir).expect("a temporary directory");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const SHARED: &str = "sip proxy ip: p.example.com\nsips trusted certificates: ca.pem\n\
                          sip outbound support: 1\nsip persistent tls seed: 0x5EED\n";

    /// What `sip-ptls run` sends as `+sip.instance` for these files.
    fn instance_of(files: &[(PathBuf, String)]) -> String {
        let sources: Vec<Source<'_>> =
            files.iter().map(|(p, text)| Source { name: p.to_str().unwrap_or(""), text }).collect();
        let mut config = load(&sources).expect("loads").config;
        let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
        config.instance_id = Some(device_instance_id(&config, &paths).expect("an identifier").0);
        Core::new(config, Instant::ZERO).instance_id().to_owned()
    }

    fn device(dir: &Path, mac: &str, user: &str) -> Vec<(PathBuf, String)> {
        vec![
            (dir.join("aastra.cfg"), SHARED.to_owned()),
            (dir.join(format!("{mac}.cfg")), format!("sip line1 user name: {user}\n")),
        ]
    }

    #[test]
    fn a_configured_id_wins() {
        let config = Config { instance_id: Some("urn:uuid:x".into()), ..Config::default() };
        let got = device_instance_id(&config, &[PathBuf::from("00085D1A2B3C.cfg")]).expect("an identifier");
        assert_eq!(got, ("urn:uuid:x".to_owned(), InstanceIdOrigin::Configured));
    }

    #[test]
    fn the_same_mac_gives_the_same_id_across_runs_and_two_macs_differ() {
        let dir = TempDir::new("mac");
        let first = instance_of(&device(&dir.0, "00085D1A2B3C", "1001"));
        assert_eq!(first, instance_of(&device(&dir.0, "00085D1A2B3C", "1001")), "restart");
        assert_eq!(first, instance_of(&device(&dir.0, "00085d1a2b3c", "1001")), "file name case");
        assert_ne!(first, instance_of(&device(&dir.0, "00085D1A2B3D", "1002")));
        assert!(!dir.0.join(INSTANCE_ID_FILE).exists(), "a MAC file needs no generated identifier");
    }

    #[test]
    fn a_shared_aastra_cfg_with_a_pinned_seed_no_longer_gives_two_devices_one_id() {
        let dir = TempDir::new("shared");
        let a = device(&dir.0, "00085D1A2B3C", "1001");
        let b = device(&dir.0, "00085D1A2B3D", "1002");
        // The old rule: the identifier came from the seed, the same for both phones.
        let seeded = |files: &[(PathBuf, String)]| {
            let sources: Vec<Source<'_>> = files.iter().map(|(_, text)| Source { name: "f", text }).collect();
            Core::new(load(&sources).expect("loads").config, Instant::ZERO).instance_id().to_owned()
        };
        assert_eq!(seeded(&a), seeded(&b), "the seed alone cannot tell the phones apart");
        assert_ne!(instance_of(&a), instance_of(&b));

        // Without MAC files, each device's own directory keeps its own identifier.
        let other = TempDir::new("shared-other");
        let one = instance_of(&[(dir.0.join("aastra.cfg"), format!("{SHARED}sip line1 user name: 1001\n"))]);
        let two = instance_of(&[(other.0.join("aastra.cfg"), format!("{SHARED}sip line1 user name: 1001\n"))]);
        assert_ne!(one, two);
    }

    #[test]
    fn a_generated_id_is_kept_private_and_reused() {
        let dir = TempDir::new("stored");
        let (id, origin) = stored_instance_id(&dir.0).expect("generated");
        let path = dir.0.join(INSTANCE_ID_FILE);
        assert_eq!(origin, InstanceIdOrigin::Generated(path.clone()));
        assert_eq!(instance::problem(&id), None);
        assert_eq!(&id[9 + 14..9 + 15], "4", "version 4: {id}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("the file").permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by the owner only: {mode:o}");
        }
        for _ in 0..2 {
            assert_eq!(
                stored_instance_id(&dir.0).expect("read back"),
                (id.clone(), InstanceIdOrigin::Stored(path.clone()))
            );
        }
        let leftovers = fs::read_dir(&dir.0).expect("the directory").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        // Through the configuration files too: the directory of the first one.
        let files = [dir.0.join("aastra.cfg"), dir.0.join("6737i.cfg")];
        assert_eq!(device_instance_id(&Config::default(), &files).expect("read back").0, id);

        fs::write(&path, "not a urn\n").expect("damage the file");
        let e = stored_instance_id(&dir.0).expect_err("a damaged file is reported");
        assert!(e.to_string().contains(INSTANCE_ID_FILE), "{e}");
    }
}
