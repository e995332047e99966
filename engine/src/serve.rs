//! What every server does for the nodes below it, master and local alike:
//! serve effective policies to clients, keep their reports, serve policy
//! changes to child servers and keep their statistics.
//!
//! The flat baselines are this same code with the master as the clients'
//! server: only [`ServeMode`] and the topology differ.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, Platform, Revision, SiteName};
use crate::message::{ErrorCode, Message, StatsUpload};
use crate::outbox::{Observation, Outbox, Rejection};
use crate::stats::{ClientTable, SecurityReport, SiteStats};
use crate::store::{PolicyStore, ViewEntry};
use crate::time::Time;

/// How a server answers a client's poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServeMode {
    /// Every poll downloads the client's full effective policy set, content
    /// included: the patent's background, every client fetching from the
    /// centre.
    Full,
    /// A poll names the revision the client holds and downloads only what
    /// changed after it (and content only when the content changed).
    Conditional,
}

/// Which clients a server accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientSites {
    /// Only clients of this site (a local server).
    Only(SiteName),
    /// Clients of any of these sites (the master serving clients directly).
    AnyOf(Vec<SiteName>),
}

impl ClientSites {
    fn accepts(&self, site: &SiteName) -> bool {
        match self {
            ClientSites::Only(s) => s == site,
            ClientSites::AnyOf(list) => list.contains(site),
        }
    }
}

/// A server's state toward the nodes below it.
#[derive(Debug)]
pub(crate) struct Serving {
    pub store: PolicyStore,
    pub clients: ClientTable,
    pub mode: ServeMode,
    pub client_sites: ClientSites,
    /// Child servers and their own site.
    pub children: BTreeMap<NodeId, SiteName>,
    /// Latest statistics per site received from child servers, with the
    /// child they came from.
    pub child_stats: BTreeMap<SiteName, (NodeId, SiteStats)>,
    pub stale_after: Duration,
}

impl Serving {
    /// Answers a client's poll with its effective policy changes.
    pub fn handle_poll(
        &mut self,
        from: NodeId,
        have: Revision,
        site: &SiteName,
        platform: &Platform,
        out: &mut Outbox,
    ) {
        if !self.client_sites.accepts(site) {
            reject(out, from, 0, ErrorCode::WrongSite, Rejection::WrongSite);
            return;
        }
        let view = self.store.view(site, platform);
        if have > view.revision {
            let reason = Rejection::RevisionFromFuture { claimed: have, held: view.revision };
            reject(out, from, 0, ErrorCode::RevisionFromFuture, reason);
            return;
        }

        let full = self.mode == ServeMode::Full || have == Revision::ZERO;
        let mut policies = Vec::new();
        let mut removed = Vec::new();
        for entry in &view.entries {
            match entry {
                ViewEntry::Applies { full: with, bare } => {
                    if full {
                        policies.push(with.clone());
                    } else if with.revision > have {
                        let send = if have >= with.content_revision { bare } else { with };
                        policies.push(send.clone());
                    }
                }
                ViewEntry::NotApplies { id, revision } => {
                    if !full && *revision > have {
                        removed.push(id.clone());
                    }
                }
            }
        }
        let msg = Message::PolicyUpdate { current: view.revision, policies, removed, full };
        out.send(from, msg);
    }

    /// Stores a client's report and acknowledges it.
    pub fn handle_report(
        &mut self,
        now: Time,
        from: NodeId,
        report: Arc<SecurityReport>,
        out: &mut Outbox,
    ) {
        if !self.client_sites.accepts(&report.site) {
            reject(out, from, 0, ErrorCode::WrongSite, Rejection::WrongSite);
            return;
        }
        self.clients.store(from, report, now);
        out.send(from, Message::ReportAck);
    }

    /// Answers a child server's `Sync` or `Check`; stores its statistics.
    pub fn handle_child_request(
        &mut self,
        from: NodeId,
        req: u32,
        have: Revision,
        stats: Option<StatsUpload>,
        out: &mut Outbox,
    ) {
        if !self.children.contains_key(&from) {
            reject(out, from, req, ErrorCode::UnknownPeer, Rejection::UnknownPeer);
            return;
        }
        let Some(changes) = self.store.changes_since(have) else {
            let reason =
                Rejection::RevisionFromFuture { claimed: have, held: self.store.current() };
            reject(out, from, req, ErrorCode::RevisionFromFuture, reason);
            return;
        };

        let stats_acked = stats.map(|upload| {
            self.store_child_stats(from, &upload.sites, out);
            upload.seq
        });
        let upto = self.store.current();
        out.send(from, Message::Policies { req, upto, changes, stats_acked });
    }

    /// Keeps the newest statistics per site from a child.
    pub fn store_child_stats(&mut self, from: NodeId, sites: &[SiteStats], out: &mut Outbox) {
        let mut stored = Vec::with_capacity(sites.len());
        for s in sites {
            let newer = self.child_stats.get(&s.site).is_none_or(|(_, old)| old.as_of <= s.as_of);
            if newer {
                stored.push((s.site.clone(), s.as_of));
                self.child_stats.insert(s.site.clone(), (from, s.clone()));
            }
        }
        out.observe(Observation::StatsStored { from, sites: stored });
    }

    /// The child server below which `site` lies, if known.
    pub fn route_to_site(&self, site: &SiteName) -> Option<NodeId> {
        if let Some((child, _)) = self.child_stats.get(site) {
            return Some(*child);
        }
        self.children.iter().find(|(_, s)| *s == site).map(|(id, _)| *id)
    }

    /// Sites known to lie below `child`.
    pub fn sites_below(&self, child: NodeId) -> Vec<SiteName> {
        let mut sites: Vec<SiteName> = self
            .child_stats
            .iter()
            .filter(|(_, (c, _))| *c == child)
            .map(|(s, _)| s.clone())
            .collect();
        if let Some(own) = self.children.get(&child)
            && !sites.contains(own)
        {
            sites.push(own.clone());
        }
        sites.sort();
        sites
    }

    /// Fresh consolidation of this server's own clients.
    pub fn own_stats(&self, now: Time) -> Vec<SiteStats> {
        let targets = self.store.compliance_targets();
        self.clients.consolidate(now, self.stale_after, &targets)
    }

    /// Sends a wake-up to every child server and every client known here.
    pub fn wake_all(&self, revision: Revision, out: &mut Outbox) {
        for child in self.children.keys() {
            out.send(*child, Message::Wake { revision });
        }
        for (client, _) in self.clients.iter() {
            out.send(client, Message::Wake { revision });
        }
    }
}

/// Sends an error reply and records the rejection.
pub(crate) fn reject(out: &mut Outbox, peer: NodeId, req: u32, code: ErrorCode, reason: Rejection) {
    tracing::debug!(%peer, ?reason, "rejected input");
    out.send(peer, Message::Error { req, code });
    out.observe(Observation::Rejected { peer, reason });
}
