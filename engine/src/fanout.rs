//! On-demand status queries that fan out to child servers with a deadline
//! and return what arrived, marking the sites that did not answer.
//!
//! A driver that sees connections (the TCP daemons) also tells a server
//! when a child's connection closes or comes back: a query then stops
//! waiting for a child known to be unreachable, and new queries do not
//! wait for it at all. The simulator, whose nodes know nothing of
//! connections, never does; every child then counts as reachable and a
//! silent one is marked only at the deadline.

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

impl Pending {
    /// Stops waiting for `child` and marks `below` (the sites below it)
    /// missing. Returns whether `child` was awaited.
    pub fn give_up_on(&mut self, child: NodeId, below: Vec<SiteName>) -> bool {
        let awaited = self.waiting.remove(&child);
        if awaited {
            self.missing.extend(below);
        }
        awaited
    }
}

/// The queries in flight at one server, numbered by the server itself,
/// and the child servers its driver reported unreachable.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    next: u64,
    pending: BTreeMap<u64, Pending>,
    /// Children whose connection is down: not asked, marked missing at
    /// once. Empty unless a driver reports connections.
    down: BTreeSet<NodeId>,
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
    ///
    /// A client detail is kept only when the query is a drill-down for
    /// that very client: a detail in a reply to any other query (a faulty
    /// or hostile child) would otherwise end the fan-out before the other
    /// children answered, and show a client nobody asked for.
    ///
    /// A known limit: the sites in a reply are not checked against the
    /// child's subtree, as statistics uploads are, so a child can answer
    /// for a site that is not below it.
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
        let asked = |d: &ClientDetail| p.scope == Scope::Client(d.client);
        if p.client.is_none() && client.as_ref().is_some_and(asked) {
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

    /// Forgets every query and what was known of connections (a restart
    /// loses both; the driver reports connections again).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.down.clear();
    }

    /// `child`'s connection is down. Every query waiting for it stops
    /// waiting and marks `below` missing; returns, in query order, those
    /// that no longer await anything.
    pub fn on_child_down(&mut self, child: NodeId, below: &[SiteName]) -> Vec<Pending> {
        self.down.insert(child);
        let mut done = Vec::new();
        for (query, p) in &mut self.pending {
            if p.give_up_on(child, below.to_vec()) && p.waiting.is_empty() {
                done.push(*query);
            }
        }
        done.iter().filter_map(|q| self.pending.remove(q)).collect()
    }

    /// `child` is reachable again: new queries ask it. Also called for
    /// every message a server receives, since a message proves it.
    pub fn on_child_up(&mut self, child: NodeId) {
        if !self.down.is_empty() {
            self.down.remove(&child);
        }
    }

    /// Takes the children known down out of a query about to start,
    /// marking the sites below each (`below`) missing at once: a request
    /// to them could not arrive, so waiting would only delay the answer.
    pub fn skip_down(&self, p: &mut Pending, below: impl Fn(NodeId) -> Vec<SiteName>) {
        if self.down.is_empty() {
            return;
        }
        let down: Vec<NodeId> = p.waiting.intersection(&self.down).copied().collect();
        for child in down {
            p.give_up_on(child, below(child));
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::blob::Blob;
    use crate::ids::Name;
    use crate::stats::SecurityReport;
    use crate::time::Time;

    fn detail(client: u32) -> ClientDetail {
        let report = SecurityReport {
            platform: Name::new("windows"),
            site: Name::new("tokyo"),
            applied: vec![],
            engine_version: 1,
            signature_version: 0,
            firewall_on: false,
            threats_found: 0,
            last_scan: Time::EPOCH,
            rejected_policies: 0,
            inventory: Blob::empty(),
        };
        ClientDetail { client: NodeId(client), seen: Time::EPOCH, report: Arc::new(report) }
    }

    fn query(f: &mut Fanout, scope: Scope) -> u64 {
        f.start(Pending {
            reply_to: ReplyTo::Operator(1),
            scope,
            waiting: [NodeId(10), NodeId(11)].into(),
            sites: vec![],
            missing: vec![],
            client: None,
        })
    }

    /// A client detail nobody asked for neither ends the fan-out nor
    /// reaches the answer; the one asked for ends it at once.
    #[test]
    fn only_the_client_asked_for_ends_a_drill_down() {
        let mut f = Fanout::default();
        let all = query(&mut f, Scope::All);
        assert!(f.on_reply(NodeId(10), all, vec![], vec![], Some(detail(7))).is_none());
        let done = f.on_reply(NodeId(11), all, vec![], vec![], None).expect("both answered");
        assert_eq!(done.client, None);

        let drill = query(&mut f, Scope::Client(NodeId(7)));
        assert!(f.on_reply(NodeId(10), drill, vec![], vec![], Some(detail(8))).is_none());
        let done = f.on_reply(NodeId(11), drill, vec![], vec![], Some(detail(7)));
        assert_eq!(done.expect("found").client, Some(detail(7)));

        let early = query(&mut f, Scope::Client(NodeId(7)));
        let done = f.on_reply(NodeId(11), early, vec![], vec![], Some(detail(7)));
        assert!(done.is_some(), "the client's server answered: no need to wait for the other");
        assert!(f.on_deadline(early).is_none());
    }
}
