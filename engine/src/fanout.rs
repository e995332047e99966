//! On-demand status queries that fan out to child servers with a deadline
//! and return what arrived, marking the sites that did not answer.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{NodeId, SiteName};
use crate::message::{ClientDetail, Scope};
use crate::stats::SiteStats;

/// Who gets the answer of a fan-out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    /// The master's operator, by the operator's query id.
    Operator(u64),
    /// The parent server, by the parent's query id.
    Parent { node: NodeId, query: u64 },
}

/// A query waiting for child servers.
#[derive(Debug)]
pub(crate) struct Pending {
    pub reply_to: ReplyTo,
    pub scope: Scope,
    pub waiting: BTreeSet<NodeId>,
    pub sites: Vec<SiteStats>,
    pub missing: Vec<SiteName>,
    pub client: Option<ClientDetail>,
}

/// The queries in flight at one server, numbered by the server itself.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    next: u64,
    pending: BTreeMap<u64, Pending>,
}

impl Fanout {
    /// Registers a query; returns its id, under which children are asked.
    pub fn start(&mut self, pending: Pending) -> u64 {
        self.next += 1;
        self.pending.insert(self.next, pending);
        self.next
    }

    /// Adds a child's reply. Returns the query when nothing is awaited any
    /// more. A reply from a child not awaited (late, duplicated) is ignored.
    pub fn on_reply(
        &mut self,
        from: NodeId,
        query: u64,
        sites: Vec<SiteStats>,
        missing: Vec<SiteName>,
        client: Option<ClientDetail>,
    ) -> Option<Pending> {
        let p = self.pending.get_mut(&query)?;
        if !p.waiting.remove(&from) {
            return None;
        }
        p.sites.extend(sites);
        p.missing.extend(missing);
        if p.client.is_none() {
            p.client = client;
        }
        let done = p.waiting.is_empty() || p.client.is_some();
        if done { self.pending.remove(&query) } else { None }
    }

    /// The deadline passed: returns the query with the children still
    /// awaited, or `None` when it had already completed.
    pub fn on_deadline(&mut self, query: u64) -> Option<Pending> {
        self.pending.remove(&query)
    }

    /// Forgets every query (a restart loses them).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

/// Sorts and de-duplicates an answer so that it does not depend on the
/// order replies arrived in.
pub(crate) fn normalise(p: &mut Pending) {
    p.sites.sort_by(|a, b| a.site.cmp(&b.site));
    p.sites.dedup_by(|a, b| a.site == b.site);
    p.missing.sort();
    p.missing.dedup();
}
