//! Typed handles: servers, accounts, connections and calls.

use core::fmt;

/// Which configured proxy a connection goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Server {
    /// `sip proxy ip` / `sip proxy port`.
    Primary,
    /// `sip backup proxy ip` / `sip backup proxy port`.
    Backup,
}

impl Server {
    /// The other server of the pair.
    pub fn other(self) -> Server {
        match self {
            Server::Primary => Server::Backup,
            Server::Backup => Server::Primary,
        }
    }

    /// Position in per-server arrays: 0 for the primary, 1 for the backup.
    pub const fn index(self) -> usize {
        match self {
            Server::Primary => 0,
            Server::Backup => 1,
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Primary => "primary",
            Server::Backup => "backup",
        })
    }
}

/// An account (a line): index into `Config::accounts`, 0-based (line 1 is `AccountId(0)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub u8);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", u16::from(self.0) + 1)
    }
}

/// One transport connection. The generation is unique per connection the core asks
/// for, so a late result about an old connection never matches the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    /// The server the connection goes to.
    pub server: Server,
    /// Counts every connection the core has asked for.
    pub generation: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}({})", self.generation, self.server)
    }
}

/// A call, placed by the application or received from the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u32);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}
