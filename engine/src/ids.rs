//! Identifiers: nodes, names, revisions.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A node of the deployment: the master, a local policy server or a client.
///
/// Integer ids keep per-client state small and message headers short; the
/// mapping to host names lives with whoever builds the topology (the
/// scenario loader or a daemon's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// An interned, cheaply cloned name: a policy id (`antivirus`), a platform
/// (`windows`) or a site (`tokyo`).
///
/// Cloning copies a pointer, so a million clients naming the same platform
/// share one allocation. On the wire it is a plain UTF-8 string.
#[derive(Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(Arc<str>);

/// Equal when the strings are equal. Clones of one name (the common case:
/// every client of a platform names it with a clone of one allocation)
/// are recognised by their pointer without reading the bytes; the result
/// is the same as comparing the strings, so `Eq`, `Ord` and `Hash` agree.
impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

/// Hashes the string, as the derived hash of the `Arc<str>` did, so that
/// equal names hash alike however they were allocated.
impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (*self.0).hash(state);
    }
}

impl Default for Name {
    fn default() -> Name {
        Name::new("")
    }
}

impl Name {
    /// Makes a name from any string.
    pub fn new(s: &str) -> Name {
        Name(Arc::from(s))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether both are clones of one allocation: a proof of equality
    /// that reads no bytes (equal names need not share one).
    #[inline]
    pub(crate) fn same_allocation(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The allocation's address, for a cache keyed by it; only meaningful
    /// while this name is alive.
    #[inline]
    pub(crate) fn address(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A policy's identifier, such as `antivirus` or `firewall`.
pub type PolicyId = Name;
/// A client platform, such as `windows`, `macos` or `linux`.
pub type Platform = Name;
/// A site's name, such as `tokyo`.
pub type SiteName = Name;

/// A global revision number assigned by the master.
///
/// Every accepted change takes the next number, so one integer says how
/// up to date a node is (the idea of an etcd revision). Zero means "holds
/// nothing yet".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Revision(pub u64);

impl Revision {
    /// Nothing held yet.
    pub const ZERO: Revision = Revision(0);

    /// The revision after this one.
    pub fn next(self) -> Revision {
        Revision(self.0 + 1)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}
