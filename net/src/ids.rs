//! Names, roles and node ids.
//!
//! A node's identity is the name in its certificate (the subject's common
//! name, also its DNS subject-alternative name). The certificate's
//! organisational unit gives its role, and its locality the site of a
//! local server or client. Node ids are a stable hash of the name, so that
//! every process derives the same id from a name without a shared table:
//! the master turns `status --client pc7.tokyo` into the id the Tokyo
//! server files that client's reports under.
//!
//! Two names can hash to the same 32-bit id (about one chance in a hundred
//! among ten thousand clients of one site; `pc122789.tokyo` and
//! `pc339192.tokyo` do). Their reports would then overwrite each other at
//! their server, so a server remembers in its store the name bound to each
//! id it has admitted (its own, its parent's and children's from the
//! configuration, and every peer's), and refuses a peer whose name maps to
//! an id bound to another name, with a log line naming both; a node whose
//! configuration names two such names does not start. What remains: the
//! master turns `status --client NAME` into an id without knowing the
//! names behind the local servers' ids, so asking for a refused name shows
//! the record of the name that holds its id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tiersync_engine::NodeId;

/// What a certificate lets its holder be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The master policy server.
    Master,
    /// A local policy server (any tier).
    Local,
    /// A client machine.
    Client,
    /// A person or script running operator commands.
    Operator,
}

impl Role {
    /// The lower-case name, as written in certificates and configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Local => "local",
            Role::Client => "client",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "master" => Ok(Role::Master),
            "local" => Ok(Role::Local),
            "client" => Ok(Role::Client),
            "operator" => Ok(Role::Operator),
            _ => Err(format!("unknown role `{s}`: expected master, local, client or operator")),
        }
    }
}

/// Who is at the other end of a connection, from its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The certificate's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its site, for local servers and clients.
    pub site: Option<String>,
}

impl PeerIdentity {
    /// The peer's node id.
    pub fn node_id(&self) -> NodeId {
        node_id(&self.name)
    }
}

/// The node id of a name: 32-bit FNV-1a of its UTF-8 bytes, with zero
/// (which the engine never uses) mapped to one.
pub fn node_id(name: &str) -> NodeId {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    NodeId(h.max(1))
}

/// Whether `name` can be a node name: a DNS name of lower-case letters,
/// digits, `-` and `.`, so that it can be a certificate's subject
/// alternative name and a TLS server name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable_and_distinct() {
        assert_eq!(node_id("master"), node_id("master"));
        assert_ne!(node_id("tokyo"), node_id("london"));
        // FNV-1a of the empty string is the offset basis.
        assert_eq!(node_id(""), NodeId(0x811c_9dc5));
    }

    #[test]
    fn names_must_be_dns_names() {
        assert!(valid_name("pc7.tokyo"));
        assert!(!valid_name("Tokyo"));
        assert!(!valid_name("a..b"));
        assert!(!valid_name("-x"));
    }
}
