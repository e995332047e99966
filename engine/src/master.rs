//! The master policy server (patent Fig. 2A, blocks 201–217).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::blob::Blob;
use crate::fanout::{Fanout, Pending, ReplyTo, normalise};
use crate::ids::{NodeId, PolicyId, Revision, SiteName};
use crate::message::{ErrorCode, Message, Scope};
use crate::outbox::{Observation, Outbox, Rejection, StatusAnswer, Timer};
use crate::policy::{
    HeldPolicy, PolicyChange, PolicyRecord, PolicySpec, SignedPolicy, VariantSig, effective_digest,
};
use crate::serve::{ClientAdmission, ServeMode, Serving, reject};
use crate::sign::PolicySigner;
use crate::stats::SiteStats;
use crate::store::{DEFAULT_LOG_KEEP, PolicyStore};
use crate::time::Time;

/// Default time the master waits for current status from its children:
/// long enough for a reply over a slow, loaded WAN link, short enough for
/// an operator at a console.
pub const DEFAULT_STATUS_DEADLINE: Duration = Duration::from_secs(30);

/// Default time after which a silent client counts as stale: three days
/// covers a long weekend without flagging every office machine.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(3 * 86_400);

/// How the master is set up.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// This node.
    pub id: NodeId,
    /// The master's own site.
    pub site: SiteName,
    /// Every site of the deployment; clients of these may poll the master
    /// directly (the flat baselines), and status drill-downs may name them.
    pub sites: Vec<SiteName>,
    /// The local servers directly below the master, with their site.
    pub children: BTreeMap<NodeId, SiteName>,
    /// Sites below each child server, its own included, when known: a
    /// child may then upload statistics only for these. A child not listed
    /// may upload for its own site and any site of `sites` that is not the
    /// master's, not another child's own, and not already held from
    /// another child.
    pub child_sites: BTreeMap<NodeId, BTreeSet<SiteName>>,
    /// Which clients may poll and report to the master directly. Defaults
    /// to every site of `sites`, any platform (what the flat baselines
    /// need); a tiered deployment narrows it to the sites without a local
    /// server.
    pub clients: ClientAdmission,
    /// How clients polling the master directly are served.
    pub client_mode: ServeMode,
    /// Change-log entries kept before compacting.
    pub log_keep: usize,
    /// How long a current status query waits for children.
    pub status_deadline: Duration,
    /// Silence after which a client counts as stale.
    pub stale_after: Duration,
    /// The signing key's 32 secret bytes.
    pub signing_secret: [u8; 32],
}

impl MasterConfig {
    /// A configuration with defaults for everything but identity, sites,
    /// children and key.
    pub fn new(
        id: NodeId,
        site: SiteName,
        sites: Vec<SiteName>,
        children: BTreeMap<NodeId, SiteName>,
        signing_secret: [u8; 32],
    ) -> MasterConfig {
        MasterConfig {
            id,
            site,
            clients: ClientAdmission::sites(sites.clone()),
            sites,
            children,
            child_sites: BTreeMap::new(),
            client_mode: ServeMode::Conditional,
            log_keep: DEFAULT_LOG_KEEP,
            status_deadline: DEFAULT_STATUS_DEADLINE,
            stale_after: DEFAULT_STALE_AFTER,
            signing_secret,
        }
    }
}

/// Whether a status query reads the store or asks the sites now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusKind {
    /// Ask every local server now, wait until the deadline.
    Current,
    /// Answer from stored uploads: the latest of each site received at or
    /// before `at` (the latest of all when `None`).
    Historical {
        /// The point in time asked about.
        at: Option<Time>,
    },
}

/// One statistics upload kept in the global data store.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredUpload {
    /// When the master received it.
    pub received: Time,
    /// The child that sent it.
    pub from: NodeId,
    /// Its statistics.
    pub sites: Vec<SiteStats>,
}

/// What a master keeps on disk to survive a restart (see
/// [`Master::restore`]).
#[derive(Clone, Debug, Default)]
pub struct MasterState {
    /// Every revision the master assigned, in any order. Only the latest of
    /// each policy is served; the others rebuild the change log.
    pub revisions: Vec<HeldPolicy>,
    /// Proposals already given a revision: origin, proposal id, revision.
    pub accepted: Vec<(NodeId, u64, Revision)>,
    /// Every statistics upload received, oldest first.
    pub history: Vec<StoredUpload>,
}

/// The master policy server.
#[derive(Debug)]
pub struct Master {
    cfg: MasterConfig,
    serving: Serving,
    signer: PolicySigner,
    /// Proposals already given a revision, so that a resent proposal is
    /// acknowledged again rather than applied twice.
    accepted: BTreeMap<(NodeId, u64), Revision>,
    history: Vec<StoredUpload>,
    fanout: Fanout,
}

impl Master {
    /// A master holding no policy yet.
    pub fn new(cfg: MasterConfig) -> Master {
        let serving = Serving {
            self_id: cfg.id,
            store: PolicyStore::new(cfg.log_keep),
            clients: Default::default(),
            mode: cfg.client_mode,
            admission: cfg.clients.clone(),
            own_site: cfg.site.clone(),
            parent: None,
            children: cfg.children.clone(),
            child_sites: cfg.child_sites.clone(),
            known_sites: Some(cfg.sites.clone()),
            child_stats: BTreeMap::new(),
            stale_after: cfg.stale_after,
        };
        let signer = PolicySigner::from_secret(cfg.signing_secret);
        Master {
            cfg,
            serving,
            signer,
            accepted: BTreeMap::new(),
            history: Vec::new(),
            fanout: Fanout::default(),
        }
    }

    /// A master rebuilt from what a previous incarnation persisted.
    ///
    /// Revisions are inserted in revision order, so the change log is the
    /// one the previous incarnation had (compacted by the same rule), and
    /// the latest statistics per site are replayed from `history`. Status
    /// queries in flight are lost: their operator gets no answer and asks
    /// again. The caller checks that the signing key in `cfg` is the one
    /// that signed `revisions`; a different key would serve revisions
    /// every verifier refuses.
    pub fn restore(cfg: MasterConfig, state: MasterState) -> Master {
        let mut master = Master::new(cfg);
        let mut revisions = state.revisions;
        revisions.sort_by_key(|h| h.revision());
        let upto = revisions.last().map_or(Revision::ZERO, |h| h.revision());
        for held in revisions {
            master.serving.store.insert(held);
        }
        master.serving.store.advance_to(upto);
        master.accepted = state.accepted.into_iter().map(|(o, p, r)| ((o, p), r)).collect();
        let mut scratch = Outbox::new();
        for upload in &state.history {
            master.serving.store_child_stats(upload.from, &upload.sites, &mut scratch);
        }
        master.history = state.history;
        master
    }

    /// Proposals already given a revision: origin, proposal id, revision,
    /// in (origin, proposal) order. A driver persists them so that a
    /// proposal resent after a restart is not applied twice.
    pub fn accepted(&self) -> impl Iterator<Item = (NodeId, u64, Revision)> + '_ {
        self.accepted.iter().map(|((o, p), r)| (*o, *p, *r))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &MasterConfig {
        &self.cfg
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The master's public key, for every verifier.
    pub fn public_key(&self) -> [u8; 32] {
        self.signer.public()
    }

    /// The policy set.
    pub fn store(&self) -> &PolicyStore {
        &self.serving.store
    }

    /// Every statistics upload received, oldest first.
    pub fn history(&self) -> &[StoredUpload] {
        &self.history
    }

    /// Latest statistics per site, as the master knows them.
    pub fn latest_stats(&self) -> impl Iterator<Item = &SiteStats> {
        self.serving.child_stats.values().map(|(_, s)| s)
    }

    /// Clients reporting to the master directly (flat baselines).
    pub fn clients(&self) -> &crate::stats::ClientTable {
        &self.serving.clients
    }

    /// Handles a message from a peer.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Outbox) {
        // Any message from a child reported down shows it reachable again.
        self.fanout.on_child_up(from);
        match msg {
            Message::Sync { req, have, stats } => {
                if let Some(sites) = self.serving.handle_child_request(from, req, have, stats, out)
                {
                    self.history.push(StoredUpload { received: now, from, sites });
                }
            }
            Message::Check { req, have } => {
                self.serving.handle_child_request(from, req, have, None, out);
            }
            Message::Propose { origin, proposal, change } => {
                if !self.serving.children.contains_key(&from)
                    || !self.serving.may_propose_for(from, origin)
                {
                    reject(out, from, 0, ErrorCode::UnknownPeer, Rejection::UnknownPeer);
                    return;
                }
                let reply = match self.accept(origin, proposal, *change, out) {
                    Ok(revision) => Message::Accepted { origin, proposal, revision },
                    Err(code) => Message::Refused { origin, proposal, code },
                };
                out.send(from, reply);
            }
            Message::StatusReply { .. } if !self.serving.children.contains_key(&from) => {
                reject(out, from, 0, ErrorCode::UnknownPeer, Rejection::UnknownPeer);
            }
            Message::StatusReply { query, sites, missing, client } => {
                if let Some(p) = self.fanout.on_reply(from, query, sites, missing, client) {
                    self.finish_query(p, out);
                }
            }
            Message::Poll { have, site, platform } => {
                self.serving.handle_poll(from, have, &site, &platform, out);
            }
            Message::Report { report } => self.serving.handle_report(now, from, report, out),
            Message::Error { code, .. } => {
                out.observe(Observation::Rejected {
                    peer: from,
                    reason: Rejection::RefusedByPeer(code),
                });
            }
            _ => reject(out, from, 0, ErrorCode::Unexpected, Rejection::Unexpected),
        }
    }

    /// Handles a timer the master asked for.
    pub fn handle_timer(&mut self, _now: Time, timer: Timer, out: &mut Outbox) {
        if let Timer::StatusDeadline { query } = timer
            && let Some(mut p) = self.fanout.on_deadline(query)
        {
            for child in std::mem::take(&mut p.waiting) {
                p.missing.extend(self.serving.sites_below(child));
            }
            self.finish_query(p, out);
        }
    }

    /// The connection to `peer` closed. When `peer` is a child server, a
    /// current-status query waiting for it stops waiting and marks the
    /// sites below it missing, answering at once if it awaited nothing
    /// else; queries started afterwards mark them missing without asking
    /// it, until [`Master::handle_peer_up`] or any message from it. Other
    /// peers (clients polling the master directly) are ignored.
    ///
    /// Only drivers that see connections call this (the TCP daemons); the
    /// simulator does not, so there a silent child is marked missing only
    /// at the deadline.
    pub fn handle_peer_down(&mut self, _now: Time, peer: NodeId, out: &mut Outbox) {
        if !self.serving.children.contains_key(&peer) {
            return;
        }
        let below = self.serving.sites_below(peer);
        for p in self.fanout.on_child_down(peer, &below) {
            self.finish_query(p, out);
        }
    }

    /// The connection to `peer` is up again (authenticated): queries
    /// started from now on ask it again. Only drivers that see connections
    /// call this.
    pub fn handle_peer_up(&mut self, _now: Time, peer: NodeId, _out: &mut Outbox) {
        self.fanout.on_child_up(peer);
    }

    /// An operator changes or creates a policy at the master (block 201).
    /// `proposal` is the operator's id for the change, echoed in the
    /// observation.
    pub fn handle_set_policy(
        &mut self,
        _now: Time,
        change: PolicyChange,
        proposal: u64,
        out: &mut Outbox,
    ) -> Result<Revision, ErrorCode> {
        self.accept(self.cfg.id, proposal, change, out)
    }

    /// An operator asks for status (blocks 209–217).
    pub fn handle_status_query(
        &mut self,
        now: Time,
        query: u64,
        kind: StatusKind,
        scope: Scope,
        out: &mut Outbox,
    ) {
        if let Scope::Site(site) = &scope
            && !self.cfg.sites.contains(site)
        {
            let answer = StatusAnswer {
                sites: vec![],
                missing: vec![],
                client: None,
                error: Some(ErrorCode::UnknownSite),
            };
            out.observe(Observation::StatusAnswered { query, answer });
            return;
        }
        match (kind, &scope) {
            (StatusKind::Historical { at }, Scope::All | Scope::Site(_)) => {
                let sites = self.historical(at, &scope);
                let answer = StatusAnswer { sites, missing: vec![], client: None, error: None };
                out.observe(Observation::StatusAnswered { query, answer });
            }
            _ => self.start_current_query(now, query, scope, out),
        }
    }

    /// The latest stored upload of each site in `scope` received at or
    /// before `at`.
    fn historical(&self, at: Option<Time>, scope: &Scope) -> Vec<SiteStats> {
        let mut latest: BTreeMap<SiteName, SiteStats> = BTreeMap::new();
        let visible = self.history.iter().filter(|u| at.is_none_or(|t| u.received <= t));
        for upload in visible {
            for s in &upload.sites {
                if let Scope::Site(want) = scope
                    && &s.site != want
                {
                    continue;
                }
                latest.insert(s.site.clone(), s.clone());
            }
        }
        latest.into_values().collect()
    }

    fn start_current_query(&mut self, now: Time, query: u64, scope: Scope, out: &mut Outbox) {
        // The master's own clients (flat baselines) answer at once.
        let own = self.serving.own_stats(now);
        let mut sites: Vec<SiteStats> = match &scope {
            Scope::Site(s) => own.into_iter().filter(|st| &st.site == s).collect(),
            _ => own,
        };
        let client = match &scope {
            Scope::Client(c) => self.serving.clients.get(*c).map(|r| {
                crate::message::ClientDetail { client: *c, seen: r.seen, report: r.report.clone() }
            }),
            _ => None,
        };
        if matches!(scope, Scope::Client(_)) {
            sites.clear();
        }

        // Then the children that can hold the answer. A site drill-down
        // goes to the one child whose subtree holds the site. A client
        // drill-down goes to every child, and only the server that holds
        // the client answers with its detail: the master keeps consolidated
        // statistics, which do not grow with the clients, so it has no
        // client-to-site map to route by.
        let targets: BTreeSet<NodeId> = match (&scope, &client) {
            (_, Some(_)) => BTreeSet::new(),
            (Scope::Site(s), _) => match self.serving.route_to_site(s) {
                Some(child) => [child].into(),
                None => self.serving.children.keys().copied().collect(),
            },
            _ => self.serving.children.keys().copied().collect(),
        };
        let mut pending = Pending {
            reply_to: ReplyTo::Operator(query),
            scope: scope.clone(),
            waiting: targets,
            sites,
            missing: vec![],
            client,
        };
        self.fanout.skip_down(&mut pending, |c| self.serving.sites_below(c));
        if pending.waiting.is_empty() {
            self.finish_query(pending, out);
            return;
        }
        let deadline = now + self.cfg.status_deadline;
        let targets = pending.waiting.clone();
        let id = self.fanout.start(pending);
        for child in targets {
            out.send(child, Message::StatusRequest { query: id, scope: scope.clone(), deadline });
        }
        out.set_timer(deadline, Timer::StatusDeadline { query: id });
    }

    fn finish_query(&mut self, mut p: Pending, out: &mut Outbox) {
        normalise(&mut p);
        let ReplyTo::Operator(query) = p.reply_to else { return };
        let error = match (&p.scope, &p.client) {
            (Scope::Client(_), None) if p.missing.is_empty() => Some(ErrorCode::UnknownClient),
            _ => None,
        };
        let answer = StatusAnswer { sites: p.sites, missing: p.missing, client: p.client, error };
        out.observe(Observation::StatusAnswered { query, answer });
    }

    /// Gives a change its revision, signs it, stores it, and wakes the
    /// children when it is urgent.
    ///
    /// The conflict rule (see the crate documentation): concurrent changes
    /// to one policy are ordered by arrival here. Each is applied to the
    /// policy as the master holds it at that moment (its absent fields keep
    /// the master's values, not the proposer's), gets the next revision,
    /// and the later one wins every field both set, everywhere, because
    /// every node converges to the master's latest revision.
    fn accept(
        &mut self,
        origin: NodeId,
        proposal: u64,
        change: PolicyChange,
        out: &mut Outbox,
    ) -> Result<Revision, ErrorCode> {
        if let Some(rev) = self.accepted.get(&(origin, proposal)) {
            return Ok(*rev);
        }
        let prev = self.serving.store.get(&change.id);
        if prev.is_none() && change.platforms.is_none() {
            out.observe(Observation::Rejected {
                peer: origin,
                reason: Rejection::UnknownPolicy(change.id.clone()),
            });
            return Err(ErrorCode::UnknownPolicy);
        }

        // Build the new definition and content.
        let revision = self.serving.store.current().next();
        let base = prev.map(|p| p.full.record.spec.clone()).unwrap_or_default();
        let spec = change.apply_to(&base);
        let (content, content_revision) = match (&change.content, prev) {
            (Some(c), _) => (c.clone(), revision),
            (None, Some(p)) => (p.content.clone(), p.full.record.content_revision),
            (None, None) => (Blob::empty(), revision),
        };
        let held = self.sign(&change.id, revision, content_revision, change.urgent, spec, content);

        // Store it; it is now part of every delta after `revision - 1`.
        self.serving.store.insert(held);
        self.serving.store.advance_to(revision);
        self.accepted.insert((origin, proposal), revision);
        tracing::debug!(policy = %change.id, %revision, %origin, "revision assigned");
        out.observe(Observation::RevisionAssigned {
            policy: change.id.clone(),
            revision,
            origin,
            proposal,
            urgent: change.urgent,
        });

        if change.urgent {
            self.serving.wake_all(revision, out);
        }
        Ok(revision)
    }

    /// Signs a revision and each of its effective variants.
    fn sign(
        &self,
        id: &PolicyId,
        revision: Revision,
        content_revision: Revision,
        urgent: bool,
        spec: PolicySpec,
        content: Blob,
    ) -> HeldPolicy {
        let record = PolicyRecord {
            id: id.clone(),
            revision,
            content_revision,
            content_digest: content.digest(),
            content_len: content.len() as u64,
            urgent,
            spec,
        };
        let signature = self.signer.sign(&record.signing_digest());
        let scopes: Vec<Option<SiteName>> = std::iter::once(None)
            .chain(record.spec.site_params.keys().cloned().map(Some))
            .collect();
        let mut variants = Vec::new();
        for platform in &record.spec.platforms {
            for scope in &scopes {
                let params = record.spec.derive_params(scope.as_ref(), platform);
                let digest = effective_digest(
                    id,
                    revision,
                    content_revision,
                    &record.content_digest,
                    platform,
                    scope,
                    &params,
                );
                variants.push(VariantSig {
                    platform: platform.clone(),
                    site: scope.clone(),
                    signature: self.signer.sign(&digest),
                });
            }
        }
        HeldPolicy::new(SignedPolicy { record, signature, variants, content: None }, content)
    }
}
