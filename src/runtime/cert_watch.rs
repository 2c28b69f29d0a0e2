//! Tells when a certificate file changed on disk, so that the application reloads it
//! (`PhoneHandle::reload_certificates`). On Linux it is an inotify descriptor on the
//! files' directories, registered with async-io's reactor: nothing wakes while nothing
//! changes, which an idle phone's wakeup budget needs (docs/benchmarks.md, "Idle cost").
//! Directories are watched rather than files because tools replace a file by renaming
//! a new one over it, which a watch on the old file would not see.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// After a change, further changes within this time are taken with it: a certificate and
/// its key written one after the other are read once, together.
pub const SETTLE: Duration = Duration::from_millis(250);

/// Watches a set of files.
#[derive(Debug)]
pub struct CertWatch {
    #[cfg(target_os = "linux")]
    inotify: async_io::Async<std::os::fd::OwnedFd>,
    /// For each watch, the names in its directory that count.
    names: BTreeMap<i32, BTreeSet<Vec<u8>>>,
}

#[cfg(target_os = "linux")]
impl CertWatch {
    /// Watches `files` (resolved paths); a file may not exist yet.
    ///
    /// # Errors
    ///
    /// The descriptor cannot be made, or a file's directory cannot be watched (it does not
    /// exist, the limit of watches is reached).
    pub fn new(files: &[PathBuf]) -> std::io::Result<CertWatch> {
        use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let mut names: BTreeMap<i32, BTreeSet<Vec<u8>>> = BTreeMap::new();
        for file in files {
            let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else { continue };
            let dir = if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir };
            let flags = WatchFlags::CLOSE_WRITE | WatchFlags::MOVED_TO | WatchFlags::CREATE;
            let wd = inotify::add_watch(&fd, dir, flags)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot watch {}: {e}", dir.display())))?;
            names.entry(wd).or_default().insert(name.as_encoded_bytes().to_vec());
        }
        Ok(CertWatch { inotify: async_io::Async::new(fd)?, names })
    }

    /// Waits until a watched file changed, then for the changes to settle ([`SETTLE`]).
    ///
    /// # Errors
    ///
    /// Reading the descriptor failed.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        while !self.read_events().await? {}
        loop {
            let more = futures_lite::future::or(async { Some(self.read_events().await) }, async {
                async_io::Timer::after(SETTLE).await;
                None
            })
            .await;
            match more {
                None => return Ok(()),
                Some(read) => {
                    read?;
                }
            }
        }
    }

    /// Reads the events waiting (waiting for one if there is none): whether one names a
    /// watched file.
    async fn read_events(&mut self) -> std::io::Result<bool> {
        use rustix::fs::inotify::Reader;
        let names = &self.names;
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        self.inotify
            .read_with(|fd| {
                let mut reader = Reader::new(fd, &mut buf);
                let mut hit = false;
                loop {
                    // The first read with nothing there is `WouldBlock`: the reactor waits.
                    let event = reader.next().map_err(std::io::Error::from)?;
                    let watched = names.get(&event.wd());
                    if let (Some(watched), Some(name)) = (watched, event.file_name()) {
                        hit |= watched.contains(name.to_bytes());
                    }
                    if reader.is_buffer_empty() {
                        return Ok(hit);
                    }
                }
            })
            .await
    }
}

#[cfg(not(target_os = "linux"))]
impl CertWatch {
    /// Watching files is implemented with inotify, on Linux only: elsewhere the files are
    /// read again on SIGHUP and on a save of the web interface.
    ///
    /// # Errors
    ///
    /// Always: not supported on this system.
    pub fn new(_files: &[PathBuf]) -> std::io::Result<CertWatch> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "watching files needs inotify (Linux)"))
    }

    /// Never returns: no change is ever seen.
    ///
    /// # Errors
    ///
    /// None.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        futures_lite::future::pending().await
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::CertWatch;
    use std::time::Duration;

    fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
        futures_lite::future::block_on(futures_lite::future::or(async { Some(f.await) }, async {
            async_io::Timer::after(limit).await;
            None
        }))
    }

    #[test]
    fn a_watched_file_written_or_replaced_is_seen_and_another_is_not() {
        let dir = std::env::temp_dir().join(format!("sip-ptls-cert-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "old").unwrap();
        let mut watch = CertWatch::new(std::slice::from_ref(&ca)).unwrap();
        // Another file in the same directory: not a change.
        std::fs::write(dir.join("other.pem"), "x").unwrap();
        assert!(within(Duration::from_millis(600), watch.changed()).is_none());
        // Written in place.
        std::fs::write(&ca, "new").unwrap();
        assert!(within(Duration::from_secs(5), watch.changed()).is_some_and(|r| r.is_ok()));
        // Replaced by a rename, as editors and the web interface do.
        std::fs::write(dir.join("ca.pem.tmp"), "newer").unwrap();
        std::fs::rename(dir.join("ca.pem.tmp"), &ca).unwrap();
        assert!(within(Duration::from_secs(5), watch.changed()).is_some_and(|r| r.is_ok()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
