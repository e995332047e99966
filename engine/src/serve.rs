//! What every server does for the nodes below it, master and local alike:
//! serve effective policies to clients, keep their reports, serve policy
//! changes to child servers and keep their statistics.
//!
//! The flat baselines are this same code with the master as the clients'
//! server: only [`ServeMode`] and the topology differ.

use std::collections::{BTreeMap, BTreeSet};
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

/// A driver's own admission check of a client: `(client, site, platform)`
/// to whether the client may be served. The TCP daemons have already
/// authenticated the peer by certificate; this lets a driver also bind the
/// site and platform a client claims to what it knows of that client.
pub type AdmitFn = Arc<dyn Fn(NodeId, &SiteName, &Platform) -> bool + Send + Sync>;

/// Which clients a server serves: the known list a poll or a report is
/// checked against before it can change anything.
///
/// The rule: a client is served only if its site is one of `sites`, its
/// platform one of `platforms` (any platform when the list is empty), it
/// is not one of the server's own peers (its parent or a child server),
/// and the driver's `check`, when given, accepts it. Anything else gets a
/// typed error reply ([`ErrorCode::WrongSite`], [`ErrorCode::UnknownPlatform`],
/// [`ErrorCode::UnknownPeer`]) and changes nothing.
#[derive(Clone, Default)]
pub struct ClientAdmission {
    /// Sites whose clients this server serves: a local server's own site
    /// (and any site below it without a server of its own); for the master,
    /// the sites that poll it directly.
    pub sites: Vec<SiteName>,
    /// Platforms of the deployment. Empty accepts any platform, for a
    /// driver that has no platform list; a server then still serves each
    /// client only the policies of the platform it names.
    pub platforms: Vec<Platform>,
    /// The driver's own check, if any.
    pub check: Option<AdmitFn>,
}

impl std::fmt::Debug for ClientAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAdmission")
            .field("sites", &self.sites)
            .field("platforms", &self.platforms)
            .field("check", &self.check.as_ref().map(|_| "fn"))
            .finish()
    }
}

impl ClientAdmission {
    /// Clients of these sites, of any platform, with no driver check.
    pub fn sites(sites: Vec<SiteName>) -> ClientAdmission {
        ClientAdmission { sites, platforms: Vec::new(), check: None }
    }

    /// Whether `client`, claiming `site` and `platform`, is served here.
    fn admit(
        &self,
        client: NodeId,
        site: &SiteName,
        platform: &Platform,
    ) -> Result<(), (ErrorCode, Rejection)> {
        if !self.sites.contains(site) {
            return Err((ErrorCode::WrongSite, Rejection::WrongSite));
        }
        if !self.platforms.is_empty() && !self.platforms.contains(platform) {
            return Err((ErrorCode::UnknownPlatform, Rejection::UnknownPlatform(platform.clone())));
        }
        if self.check.as_ref().is_some_and(|check| !check(client, site, platform)) {
            return Err((ErrorCode::UnknownPeer, Rejection::UnknownPeer));
        }
        Ok(())
    }
}

/// A server's state toward the nodes below it.
#[derive(Debug)]
pub(crate) struct Serving {
    /// This server's own node id.
    pub self_id: NodeId,
    pub store: PolicyStore,
    pub clients: ClientTable,
    pub mode: ServeMode,
    pub admission: ClientAdmission,
    /// This server's own site.
    pub own_site: SiteName,
    /// This server's parent, which is never one of its clients.
    pub parent: Option<NodeId>,
    /// Child servers and their own site.
    pub children: BTreeMap<NodeId, SiteName>,
    /// Configured sites below each child server (its own included). A
    /// child listed here may upload statistics only for these sites.
    pub child_sites: BTreeMap<NodeId, BTreeSet<SiteName>>,
    /// Every site of the deployment when the server knows them (the
    /// master); a child not in `child_sites` may upload only for these.
    pub known_sites: Option<Vec<SiteName>>,
    /// Latest statistics per site received from child servers, with the
    /// child they came from.
    pub child_stats: BTreeMap<SiteName, (NodeId, SiteStats)>,
    pub stale_after: Duration,
}

impl Serving {
    /// Checks a node claiming to be a client of `site` and `platform`.
    #[inline]
    fn admit_client(
        &self,
        from: NodeId,
        site: &SiteName,
        platform: &Platform,
    ) -> Result<(), (ErrorCode, Rejection)> {
        if self.children.contains_key(&from) || self.parent == Some(from) {
            return Err((ErrorCode::UnknownPeer, Rejection::UnknownPeer));
        }
        self.admission.admit(from, site, platform)
    }

    /// Answers a client's poll with its effective policy changes.
    #[inline]
    pub fn handle_poll(
        &mut self,
        from: NodeId,
        have: Revision,
        site: &SiteName,
        platform: &Platform,
        out: &mut Outbox,
    ) {
        if let Err((code, reason)) = self.admit_client(from, site, platform) {
            reject(out, from, 0, code, reason);
            return;
        }
        let mode = self.mode;
        let view = self.store.view(site, platform);
        if have > view.revision {
            let reason = Rejection::RevisionFromFuture { claimed: have, held: view.revision };
            reject(out, from, 0, ErrorCode::RevisionFromFuture, reason);
            return;
        }

        // A policy goes without its content only when the client must hold
        // that content already: it holds a revision at or after both the
        // content's last change and the policy's start of applying to its
        // platform (a platform-list change makes a policy new to a client
        // even when its content is old).
        let full = mode == ServeMode::Full || have == Revision::ZERO;
        if !full && have >= view.newest {
            // No entry is newer than the client's revision, so the walk
            // below would send nothing: the common answer, without it.
            let msg = Message::PolicyUpdate {
                current: view.revision,
                policies: Vec::new(),
                removed: Vec::new(),
                full,
            };
            out.send(from, msg);
            return;
        }
        let mut policies = Vec::new();
        let mut removed = Vec::new();
        for entry in &view.entries {
            match entry {
                ViewEntry::Applies { full: with, bare, since } => {
                    if full {
                        policies.push(with.clone());
                    } else if with.revision > have {
                        let holds = have >= with.content_revision && have >= *since;
                        policies.push(if holds { bare.clone() } else { with.clone() });
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
    #[inline]
    pub fn handle_report(
        &mut self,
        now: Time,
        from: NodeId,
        report: Arc<SecurityReport>,
        out: &mut Outbox,
    ) {
        if let Err((code, reason)) = self.admit_client(from, &report.site, &report.platform) {
            reject(out, from, 0, code, reason);
            return;
        }
        self.clients.store(from, report, now);
        out.send(from, Message::ReportAck);
    }

    /// Answers a child server's `Sync` or `Check` and stores its
    /// statistics. Returns the statistics stored, if the request carried
    /// an upload that was accepted.
    ///
    /// An upload naming a site outside the child's subtree is refused whole
    /// (nothing of it is stored, it is not acknowledged, and an
    /// [`ErrorCode::WrongSite`] error follows the reply); the policies are
    /// still served, so a misconfigured child keeps receiving them.
    pub fn handle_child_request(
        &mut self,
        from: NodeId,
        req: u32,
        have: Revision,
        stats: Option<StatsUpload>,
        out: &mut Outbox,
    ) -> Option<Vec<SiteStats>> {
        if !self.children.contains_key(&from) {
            reject(out, from, req, ErrorCode::UnknownPeer, Rejection::UnknownPeer);
            return None;
        }
        let Some(changes) = self.store.changes_since(have) else {
            let reason =
                Rejection::RevisionFromFuture { claimed: have, held: self.store.current() };
            reject(out, from, req, ErrorCode::RevisionFromFuture, reason);
            return None;
        };

        // Check the whole upload before storing any of it.
        let mut refused = None;
        let mut stored = None;
        let mut stats_acked = None;
        if let Some(upload) = stats {
            match upload.sites.iter().find(|s| !self.may_upload(from, &s.site)) {
                Some(bad) => refused = Some(bad.site.clone()),
                None => {
                    self.store_child_stats(from, &upload.sites, out);
                    stats_acked = Some(upload.seq);
                    stored = Some(upload.sites);
                }
            }
        }
        let upto = self.store.current();
        out.send(from, Message::Policies { req, upto, changes, stats_acked });
        if let Some(site) = refused {
            reject(out, from, req, ErrorCode::WrongSite, Rejection::SiteNotBelow(site));
        }
        stored
    }

    /// Whether `child` may upload statistics for `site`: its own site; a
    /// site configured below it; or, for a child without configured
    /// sites, a site of the deployment (when known) that is neither this
    /// server's own, nor another child's own, nor already held from
    /// another child.
    fn may_upload(&self, child: NodeId, site: &SiteName) -> bool {
        if self.children.get(&child) == Some(site) {
            return true;
        }
        if let Some(below) = self.child_sites.get(&child) {
            return below.contains(site);
        }
        *site != self.own_site
            && !self.children.values().any(|s| s == site)
            && self.known_sites.as_ref().is_none_or(|k| k.contains(site))
            && self.child_stats.get(site).is_none_or(|(c, _)| *c == child)
    }

    /// Whether child server `child` may send a proposal made at `origin`:
    /// its own, or one it relays from a server below it. Never one naming
    /// this server, its parent or another child as origin: proposals are
    /// deduplicated by (origin, proposal id), so a forged origin would
    /// make the real origin's proposal of the same id count as already
    /// accepted, and it would be lost.
    pub fn may_propose_for(&self, child: NodeId, origin: NodeId) -> bool {
        let own = self.parent.is_none_or(|p| p != origin) && origin != self.self_id;
        own && (origin == child || !self.children.contains_key(&origin))
    }

    /// Keeps the newest statistics per site from a child.
    ///
    /// A known limit: "newest" is by the child's own `as_of`, so a child
    /// that uploads statistics dated in the future keeps its later,
    /// honestly dated uploads for that site from being stored until that
    /// time has passed.
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
        if let Some((child, _)) = self.child_sites.iter().find(|(_, below)| below.contains(site)) {
            return Some(*child);
        }
        self.children.iter().find(|(_, s)| *s == site).map(|(id, _)| *id)
    }

    /// Sites known to lie below `child`: configured, or seen in its uploads.
    pub fn sites_below(&self, child: NodeId) -> Vec<SiteName> {
        let mut sites: BTreeSet<SiteName> = self
            .child_stats
            .iter()
            .filter(|(_, (c, _))| *c == child)
            .map(|(s, _)| s.clone())
            .collect();
        if let Some(own) = self.children.get(&child) {
            sites.insert(own.clone());
        }
        if let Some(below) = self.child_sites.get(&child) {
            sites.extend(below.iter().cloned());
        }
        sites.into_iter().collect()
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
