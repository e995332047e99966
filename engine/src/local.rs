//! The local policy server (patent Fig. 2B, blocks 231–245), also usable
//! as a middle tier: a local server may be the parent of other local
//! servers, speaking to them exactly as the master speaks to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::tz::TimeZone;
use rand::{RngExt as _, SeedableRng as _};
use rand_pcg::Pcg32;

use crate::fanout::{Fanout, Pending, ReplyTo, normalise};
use crate::ids::{NodeId, Revision, SiteName};
use crate::message::{Changes, ClientDetail, ErrorCode, Message, Scope, StatsUpload};
use crate::outbox::{Observation, Outbox, Rejection, Timer};
use crate::policy::{HeldPolicy, PolicyChange};
use crate::schedule::{DailyWindow, QuietHours};
use crate::serve::{ClientAdmission, ServeMode, Serving, reject};
use crate::sign::{IntegrityError, PolicyVerifier};
use crate::stats::{ClientRecord, SiteStats};
use crate::store::{DEFAULT_LOG_KEEP, PolicyStore};
use crate::time::Time;

/// Default time a local server waits for its parent's answer before it
/// asks again: ten minutes, since an answer may carry tens of megabytes of
/// content over a loaded WAN link.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Default number of tries of one synchronisation before it is abandoned
/// until the next window. With the timeout doubling after each try, six
/// tries cover about ten hours, longer than a typical WAN outage.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

/// How a local server is set up.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// This node.
    pub id: NodeId,
    /// The site it serves.
    pub site: SiteName,
    /// Its parent: the master or a regional local server.
    pub parent: NodeId,
    /// The site's time zone, in which the sync window is placed.
    pub timezone: TimeZone,
    /// The daily synchronisation window, local time.
    pub sync_window: DailyWindow,
    /// Interval of the lighter policy checks; `None` disables them.
    pub policy_check: Option<Duration>,
    /// Local hours in which no light check runs (a check due then waits
    /// for their end); `None` checks around the clock.
    pub check_quiet: Option<QuietHours>,
    /// Local servers below this one, with their site.
    pub children: BTreeMap<NodeId, SiteName>,
    /// Sites below each child server, its own included, when known: a
    /// child may then upload statistics only for these. A child not listed
    /// may upload for its own site and any site that is neither this
    /// server's, nor another child's own, nor already held from another
    /// child.
    pub child_sites: BTreeMap<NodeId, BTreeSet<SiteName>>,
    /// Which clients this server serves; by default those of its own site,
    /// any platform.
    pub clients: ClientAdmission,
    /// How this server answers its clients' polls.
    pub client_mode: ServeMode,
    /// Change-log entries kept before compacting.
    pub log_keep: usize,
    /// Wait for the parent's answer before retrying; doubles per try.
    pub request_timeout: Duration,
    /// Tries per synchronisation.
    pub max_attempts: u32,
    /// Silence after which a client counts as stale.
    pub stale_after: Duration,
    /// Delay before the very first fetch of a server that holds nothing,
    /// drawn uniformly up to this bound so that fresh servers do not all
    /// ask at once.
    pub bootstrap_splay: Duration,
    /// Checks the master's signatures.
    pub verifier: PolicyVerifier,
    /// Seed of this node's random generator.
    pub seed: u64,
}

impl LocalConfig {
    /// A configuration with defaults for everything else.
    pub fn new(
        id: NodeId,
        site: SiteName,
        parent: NodeId,
        timezone: TimeZone,
        verifier: PolicyVerifier,
        seed: u64,
    ) -> LocalConfig {
        LocalConfig {
            id,
            clients: ClientAdmission::sites(vec![site.clone()]),
            site,
            parent,
            timezone,
            sync_window: DailyWindow::NIGHT,
            policy_check: None,
            check_quiet: None,
            children: BTreeMap::new(),
            child_sites: BTreeMap::new(),
            client_mode: ServeMode::Conditional,
            log_keep: DEFAULT_LOG_KEEP,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            stale_after: crate::master::DEFAULT_STALE_AFTER,
            bootstrap_splay: Duration::from_secs(60),
            verifier,
            seed,
        }
    }
}

/// What an outstanding request to the parent was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestKind {
    Sync,
    Check,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    req: u32,
    kind: RequestKind,
    attempt: u32,
    /// The revision asked from (zero when resynchronising).
    have: Revision,
    /// The urgent revision already announced when the request was sent: a
    /// reply to a request sent before a wake-up may predate it.
    wake: Option<Revision>,
}

/// The fields of a [`Message::Policies`] reply.
struct PoliciesReply {
    req: u32,
    upto: Revision,
    changes: Changes,
    stats_acked: Option<u64>,
}

/// What a local server keeps on disk to survive a restart (see
/// [`Local::restore`]).
#[derive(Clone, Debug, Default)]
pub struct LocalState {
    /// The latest verified revision of each policy held.
    pub policies: Vec<HeldPolicy>,
    /// The revision the server was up to.
    pub upto: Revision,
    /// Every client's latest report and when it arrived.
    pub clients: Vec<(NodeId, ClientRecord)>,
    /// Latest statistics per site from child servers, with the child.
    pub child_stats: Vec<(NodeId, SiteStats)>,
    /// Policies created here that the master has not yet accepted.
    pub proposals: Vec<(u64, PolicyChange)>,
    /// Sequence number of the last statistics upload sent.
    pub stats_seq: u64,
    /// Sequence number of the last upload the parent acknowledged.
    pub stats_acked: u64,
    /// Policy revisions from the parent refused for failed verification.
    pub rejected_by_server: u64,
}

/// A local policy server.
#[derive(Debug)]
pub struct Local {
    cfg: LocalConfig,
    serving: Serving,
    rng: Pcg32,
    next_req: u32,
    outstanding: Option<Outstanding>,
    /// Close of the window of the sync last scheduled.
    window_end: Time,
    /// Policies created here and not yet accepted by the master.
    proposals: BTreeMap<u64, PolicyChange>,
    /// Proposals of servers below, relayed up: where to send the answer.
    relayed: BTreeMap<(NodeId, u64), NodeId>,
    /// An urgent revision announced by the parent, passed down once held.
    wake_pending: Option<Revision>,
    /// The highest urgent revision already passed down.
    woken: Revision,
    /// Ask for a snapshot on the next request and replace the whole set
    /// with it: content went missing, or the parent is behind this server
    /// (restored from an older backup).
    resync: bool,
    /// Policy revisions from the parent refused for failed verification;
    /// uploaded with this site's statistics so the master sees them.
    rejected_by_server: u64,
    stats_seq: u64,
    stats_acked: u64,
    fanout: Fanout,
}

impl Local {
    /// A local server holding no policy yet.
    pub fn new(cfg: LocalConfig) -> Local {
        let serving = Serving {
            self_id: cfg.id,
            store: PolicyStore::new(cfg.log_keep),
            clients: Default::default(),
            mode: cfg.client_mode,
            admission: cfg.clients.clone(),
            own_site: cfg.site.clone(),
            parent: Some(cfg.parent),
            children: cfg.children.clone(),
            child_sites: cfg.child_sites.clone(),
            known_sites: None,
            child_stats: BTreeMap::new(),
            stale_after: cfg.stale_after,
        };
        let rng = Pcg32::seed_from_u64(cfg.seed);
        Local {
            cfg,
            serving,
            rng,
            next_req: 0,
            outstanding: None,
            window_end: Time::EPOCH,
            proposals: BTreeMap::new(),
            relayed: BTreeMap::new(),
            wake_pending: None,
            woken: Revision::ZERO,
            resync: false,
            rejected_by_server: 0,
            stats_seq: 0,
            stats_acked: 0,
            fanout: Fanout::default(),
        }
    }

    /// A local server rebuilt from what a previous incarnation persisted.
    ///
    /// The change log holds only the latest revision of each policy, which
    /// yields the same deltas for any child (a delta names each changed
    /// policy once). Requests in flight, status queries and the routes of
    /// proposals relayed for servers below are lost: the parent's retries
    /// and the origin's proposal retries restore them. Call
    /// [`Local::handle_start`] next, as for a new server.
    pub fn restore(cfg: LocalConfig, state: LocalState) -> Local {
        let mut local = Local::new(cfg);
        let mut policies = state.policies;
        policies.sort_by_key(|h| h.revision());
        for held in policies {
            local.serving.store.insert(held);
        }
        local.serving.store.advance_to(state.upto);
        for (id, record) in state.clients {
            local.serving.clients.store(id, record.report, record.seen);
        }
        for (child, stats) in state.child_stats {
            local.serving.child_stats.insert(stats.site.clone(), (child, stats));
        }
        local.proposals = state.proposals.into_iter().collect();
        local.stats_seq = state.stats_seq;
        local.stats_acked = state.stats_acked.min(state.stats_seq);
        local.rejected_by_server = state.rejected_by_server;
        local
    }

    /// Policies created here that the master has not accepted yet, by
    /// proposal id.
    pub fn proposals(&self) -> impl Iterator<Item = (u64, &PolicyChange)> {
        self.proposals.iter().map(|(p, c)| (*p, c))
    }

    /// Latest statistics per site received from child servers, with the
    /// child each came from, in site order.
    pub fn child_stats(&self) -> impl Iterator<Item = (NodeId, &SiteStats)> {
        self.serving.child_stats.values().map(|(c, s)| (*c, s))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    /// Sequence number of the last statistics upload sent to the parent.
    pub fn stats_seq(&self) -> u64 {
        self.stats_seq
    }

    /// Policy revisions from the parent refused for failed verification
    /// since this server started (persist it as
    /// [`LocalState::rejected_by_server`]).
    pub fn rejected_by_server(&self) -> u64 {
        self.rejected_by_server
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// The site it serves.
    pub fn site(&self) -> &SiteName {
        &self.cfg.site
    }

    /// The policy set held.
    pub fn store(&self) -> &crate::store::PolicyStore {
        &self.serving.store
    }

    /// The latest report of every client of this site.
    pub fn clients(&self) -> &crate::stats::ClientTable {
        &self.serving.clients
    }

    /// The sequence number of the last statistics upload the parent
    /// acknowledged; uploads after it are not yet safe at the parent.
    pub fn stats_acked(&self) -> u64 {
        self.stats_acked
    }

    /// Starts the node: schedules its first synchronisation and checks, and
    /// fetches at once when it holds nothing.
    pub fn handle_start(&mut self, now: Time, out: &mut Outbox) {
        self.schedule_sync(now, out);
        if let Some(every) = self.cfg.policy_check {
            let first = self.uniform(every);
            out.set_timer(now + first, Timer::Check);
        }
        if self.serving.store.current() == Revision::ZERO {
            let delay = self.uniform(self.cfg.bootstrap_splay);
            out.set_timer(now + delay, Timer::Fetch);
        }
        if !self.proposals.is_empty() {
            self.send_proposals(now, out);
        }
    }

    /// Restarts after a crash. The policy store, the client table and the
    /// unanswered proposals survive (they are on disk in a real server);
    /// requests in flight, status queries and which children were reported
    /// down are forgotten. The driver drops the timers of the previous
    /// incarnation, and reports connections that are down again.
    pub fn handle_restart(&mut self, now: Time, out: &mut Outbox) {
        self.outstanding = None;
        self.fanout.clear();
        self.wake_pending = None;
        self.handle_start(now, out);
    }

    /// An operator creates or changes a policy here (blocks 231/233): it is
    /// sent to the master, which gives it a revision; this server applies
    /// it like any other revision, once it comes back signed.
    pub fn handle_set_policy(
        &mut self,
        now: Time,
        change: PolicyChange,
        proposal: u64,
        out: &mut Outbox,
    ) {
        self.proposals.insert(proposal, change.clone());
        let change = Box::new(change);
        out.send(self.cfg.parent, Message::Propose { origin: self.cfg.id, proposal, change });
        out.set_timer(now + self.cfg.request_timeout, Timer::ProposalRetry);
    }

    /// Synchronises with the parent now, outside the window: uploads
    /// statistics and fetches changes, as the scheduled sync does. The
    /// schedule is unchanged.
    pub fn handle_sync_now(&mut self, now: Time, out: &mut Outbox) {
        self.request(now, RequestKind::Sync, 1, out);
    }

    /// Asks the parent for new policies now (blocks 241/243).
    pub fn handle_fetch_now(&mut self, now: Time, out: &mut Outbox) {
        self.request(now, RequestKind::Check, 1, out);
    }

    /// Handles a timer this node asked for.
    pub fn handle_timer(&mut self, now: Time, timer: Timer, out: &mut Outbox) {
        match timer {
            Timer::Sync => {
                self.schedule_sync(self.window_end.max(now), out);
                self.request(now, RequestKind::Sync, 1, out);
            }
            Timer::Check => {
                let quiet = self.cfg.check_quiet.as_ref();
                if let Some(end) = quiet.and_then(|q| q.end_if_inside(&self.cfg.timezone, now)) {
                    // In the site's quiet hours: the check waits for their
                    // end, and the interval counts from there.
                    out.set_timer(end, Timer::Check);
                    return;
                }
                if let Some(every) = self.cfg.policy_check {
                    out.set_timer(now + every, Timer::Check);
                }
                if self.outstanding.is_none() {
                    self.request(now, RequestKind::Check, 1, out);
                }
            }
            Timer::Fetch => {
                if self.outstanding.is_none() {
                    self.request(now, RequestKind::Check, 1, out);
                }
            }
            Timer::Retry { req } => self.on_timeout(now, req, out),
            Timer::ProposalRetry => {
                if !self.proposals.is_empty() {
                    self.send_proposals(now, out);
                }
            }
            Timer::StatusDeadline { query } => {
                if let Some(mut p) = self.fanout.on_deadline(query) {
                    for child in std::mem::take(&mut p.waiting) {
                        p.missing.extend(self.serving.sites_below(child));
                    }
                    self.finish_query(p, out);
                }
            }
            Timer::Poll | Timer::WakePoll | Timer::Report => {}
        }
    }

    /// The connection to `peer` closed. When `peer` is a child server, a
    /// status request from the parent waiting for it stops waiting and
    /// marks the sites below it missing, answering the parent at once if
    /// it awaited nothing else; requests arriving afterwards mark them
    /// missing without asking it, until [`Local::handle_peer_up`] or any
    /// message from it. Other peers (the parent, clients) are ignored.
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

    /// The connection to `peer` is up again (authenticated): requests
    /// arriving from now on ask it again. Only drivers that see
    /// connections call this.
    pub fn handle_peer_up(&mut self, _now: Time, peer: NodeId, _out: &mut Outbox) {
        self.fanout.on_child_up(peer);
    }

    /// Handles a message from a peer.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Outbox) {
        // Any message from a child reported down shows it reachable again.
        self.fanout.on_child_up(from);
        let from_parent = from == self.cfg.parent;
        match msg {
            // From clients.
            Message::Poll { have, site, platform } => {
                self.serving.handle_poll(from, have, &site, &platform, out);
            }
            Message::Report { report } => self.serving.handle_report(now, from, report, out),

            // From child servers.
            Message::Sync { req, have, stats } => {
                self.serving.handle_child_request(from, req, have, stats, out);
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
                self.relayed.insert((origin, proposal), from);
                out.send(self.cfg.parent, Message::Propose { origin, proposal, change });
            }
            Message::StatusReply { .. } if !self.serving.children.contains_key(&from) => {
                reject(out, from, 0, ErrorCode::UnknownPeer, Rejection::UnknownPeer);
            }
            Message::StatusReply { query, sites, missing, client } => {
                if let Some(p) = self.fanout.on_reply(from, query, sites, missing, client) {
                    self.finish_query(p, out);
                }
            }

            // From the parent.
            Message::Policies { req, upto, changes, stats_acked } if from_parent => {
                self.on_policies(now, PoliciesReply { req, upto, changes, stats_acked }, out);
            }
            Message::Wake { revision } if from_parent => self.on_wake(now, revision, out),
            Message::Accepted { origin, proposal, revision } if from_parent => {
                self.on_accepted(now, origin, proposal, revision, out);
            }
            Message::Refused { origin, proposal, code } if from_parent => {
                if origin == self.cfg.id {
                    self.proposals.remove(&proposal);
                    out.observe(Observation::ProposalRefused { proposal, code });
                } else if let Some(child) = self.relayed.remove(&(origin, proposal)) {
                    out.send(child, Message::Refused { origin, proposal, code });
                }
            }
            Message::StatusRequest { query, scope, deadline } if from_parent => {
                self.on_status_request(now, query, scope, deadline, out);
            }
            // Messages only the parent sends, from anyone else.
            Message::Policies { .. }
            | Message::Wake { .. }
            | Message::Accepted { .. }
            | Message::Refused { .. }
            | Message::StatusRequest { .. } => {
                reject(out, from, 0, ErrorCode::UnknownPeer, Rejection::UnknownPeer);
            }
            Message::Error { req, code } => {
                let reason = Rejection::RefusedByPeer(code);
                out.observe(Observation::Rejected { peer: from, reason });
                let answered = self.outstanding.filter(|o| o.req == req && from_parent);
                if let Some(o) = answered {
                    self.outstanding = None;
                    // The parent is behind this server: ask again at once
                    // for a snapshot, which replaces what is held here.
                    if code == ErrorCode::RevisionFromFuture && o.have != Revision::ZERO {
                        self.resync = true;
                        self.request(now, o.kind, 1, out);
                    }
                }
            }
            _ => reject(out, from, 0, ErrorCode::Unexpected, Rejection::Unexpected),
        }
    }

    /// Schedules the next synchronisation in the first window still open
    /// after `after`.
    fn schedule_sync(&mut self, after: Time, out: &mut Outbox) {
        let (at, end) = self.cfg.sync_window.pick_after(&self.cfg.timezone, after, &mut self.rng);
        self.window_end = end;
        out.set_timer(at, Timer::Sync);
    }

    fn uniform(&mut self, bound: Duration) -> Duration {
        let ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if ns == 0 { Duration::ZERO } else { Duration::from_nanos(self.rng.random_range(0..ns)) }
    }

    /// Sends a `Sync` or `Check` to the parent and arms its timeout.
    fn request(&mut self, now: Time, kind: RequestKind, attempt: u32, out: &mut Outbox) {
        self.next_req = self.next_req.wrapping_add(1).max(1);
        let req = self.next_req;
        let have = if self.resync { Revision::ZERO } else { self.serving.store.current() };
        let wake = self.wake_pending;
        let msg = match kind {
            RequestKind::Sync => {
                self.stats_seq += 1;
                let stats = StatsUpload { seq: self.stats_seq, sites: self.subtree_stats(now) };
                out.observe(Observation::SyncStarted { attempt });
                Message::Sync { req, have, stats: Some(stats) }
            }
            RequestKind::Check => Message::Check { req, have },
        };
        self.outstanding = Some(Outstanding { req, kind, attempt, have, wake });
        out.send(self.cfg.parent, msg);
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let wait = self.cfg.request_timeout.saturating_mul(factor);
        let jitter = self.uniform(wait / 10);
        out.set_timer(now + wait + jitter, Timer::Retry { req });
    }

    /// No answer in time: try again with a longer wait, up to the limit.
    fn on_timeout(&mut self, now: Time, req: u32, out: &mut Outbox) {
        let Some(o) = self.outstanding.filter(|o| o.req == req) else { return };
        self.outstanding = None;
        if o.attempt >= self.cfg.max_attempts {
            if o.kind == RequestKind::Sync {
                out.observe(Observation::SyncAbandoned { attempts: o.attempt });
            }
            return;
        }
        self.request(now, o.kind, o.attempt + 1, out);
    }

    /// Consolidated statistics of this server's clients and of every site
    /// below it.
    fn subtree_stats(&self, now: Time) -> Vec<SiteStats> {
        let mut own = self.own_site_stats(now);
        own.extend(self.serving.child_stats.values().map(|(_, s)| s.clone()));
        own.sort_by(|a, b| a.site.cmp(&b.site));
        own
    }

    /// Verifies and stores what the parent sent.
    fn on_policies(&mut self, now: Time, reply: PoliciesReply, out: &mut Outbox) {
        let PoliciesReply { req, upto, changes, stats_acked } = reply;
        let answered = self.outstanding.filter(|o| o.req == req);
        if answered.is_some() {
            self.outstanding = None;
        }
        if let Some(seq) = stats_acked {
            self.stats_acked = self.stats_acked.max(seq);
        }
        self.drop_wake_the_parent_lacks(upto, answered, out);

        // A snapshot older than what is held is a late duplicate, unless
        // this server asked for one to move back to its parent's state.
        let snapshot = matches!(changes, Changes::Snapshot(_));
        let asked_all = answered.is_some_and(|o| o.have == Revision::ZERO);
        if snapshot && upto < self.serving.store.current() && !self.resync && !asked_all {
            tracing::debug!(%upto, held = %self.serving.store.current(), "stale snapshot ignored");
            if answered.is_some_and(|o| o.kind == RequestKind::Sync) {
                out.observe(Observation::SyncCompleted { upto: self.serving.store.current() });
            }
            self.after_reply(now, answered, out);
            return;
        }

        // Verify every revision before storing any of it.
        let mut verified = Vec::with_capacity(changes.policies().len());
        let mut failed = false;
        let mut missing = false;
        for sp in changes.policies() {
            let r = &sp.record;
            let content = sp
                .content
                .clone()
                .or_else(|| self.serving.store.content_at(&r.id, r.content_revision).cloned());
            match self.cfg.verifier.verify_record(sp, content.as_ref()) {
                Ok(()) => {
                    let content = content.unwrap_or_else(crate::blob::Blob::empty);
                    verified.push(HeldPolicy::new((**sp).clone(), content));
                }
                Err(IntegrityError::MissingContent { policy, revision }) => {
                    // Not tampering: the parent thought this server held
                    // the content. Ask for everything again.
                    failed = true;
                    missing = true;
                    let reason = Rejection::MissingContent { policy, revision };
                    out.observe(Observation::Rejected { peer: self.cfg.parent, reason });
                }
                Err(e) => {
                    failed = true;
                    self.rejected_by_server = self.rejected_by_server.saturating_add(1);
                    tracing::warn!(peer = %self.cfg.parent, error = %e, "policy refused");
                    let reason = Rejection::Integrity(e);
                    out.observe(Observation::Rejected { peer: self.cfg.parent, reason });
                }
            }
        }

        // Store; advance only when everything up to `upto` is held, so a
        // refused revision is asked for again.
        let count = verified.len();
        if snapshot && !failed {
            self.serving.store.replace_all(verified, upto);
        } else {
            for h in verified {
                self.serving.store.insert(h);
            }
            if !failed {
                self.serving.store.advance_to(upto);
            }
        }
        // Only a whole set received ends a resynchronisation: a late delta
        // answering an older request must not cancel it.
        if snapshot && !failed {
            self.resync = false;
        }
        if missing {
            self.resync = true;
        }
        if count > 0 || snapshot {
            out.observe(Observation::PoliciesStored {
                upto: self.serving.store.current(),
                count,
                snapshot,
            });
        }
        if answered.is_some_and(|o| o.kind == RequestKind::Sync) {
            out.observe(Observation::SyncCompleted { upto: self.serving.store.current() });
        }

        // Content went missing on a request that was not already a resync:
        // resynchronise at once rather than at the next check.
        if missing
            && self.outstanding.is_none()
            && answered.is_some_and(|o| o.have != Revision::ZERO)
        {
            self.request(now, RequestKind::Check, 1, out);
            return;
        }
        self.after_reply(now, answered, out);
    }

    /// A wake-up named a revision the parent does not hold: its answer to a
    /// request sent after the wake-up stops short of it (a forged wake-up,
    /// or a parent rolled back since). Stop waiting for that revision and
    /// record the rejection; kept, it would hold back every later urgent
    /// revision below it, which would then never be passed down.
    fn drop_wake_the_parent_lacks(
        &mut self,
        upto: Revision,
        answered: Option<Outstanding>,
        out: &mut Outbox,
    ) {
        let Some(w) = self.wake_pending else { return };
        let sent_after_wake = answered.is_some_and(|o| o.wake.is_some_and(|seen| seen >= w));
        if sent_after_wake && upto < w {
            self.wake_pending = None;
            let held = self.serving.store.current();
            let reason = Rejection::RevisionFromFuture { claimed: w, held };
            out.observe(Observation::Rejected { peer: self.cfg.parent, reason });
        }
    }

    /// After a reply: pass an urgent revision down once it is held, or ask
    /// again when the reply answered a request sent before the wake-up
    /// arrived (its answer may predate the urgent revision).
    fn after_reply(&mut self, now: Time, answered: Option<Outstanding>, out: &mut Outbox) {
        let Some(w) = self.wake_pending else { return };
        if self.serving.store.current() >= w {
            self.wake_pending = None;
            self.pass_wake_down(w, out);
            return;
        }
        let predates = answered.is_some_and(|o| o.wake.is_none_or(|seen| seen < w));
        if predates && self.outstanding.is_none() {
            self.request(now, RequestKind::Check, 1, out);
        }
    }

    /// Sends a wake-up for `revision` to every child server and client,
    /// once per revision.
    fn pass_wake_down(&mut self, revision: Revision, out: &mut Outbox) {
        if revision > self.woken {
            self.woken = revision;
            self.serving.wake_all(revision, out);
        }
    }

    fn on_wake(&mut self, now: Time, revision: Revision, out: &mut Outbox) {
        // Already held (a check fetched it before the wake-up came): the
        // servers and clients below may not have it, so pass it on now.
        if revision <= self.serving.store.current() {
            self.pass_wake_down(revision, out);
            return;
        }
        self.wake_pending = Some(self.wake_pending.map_or(revision, |w| w.max(revision)));
        // With a request in flight, its reply may predate the urgent
        // revision; `after_reply` then asks again.
        if self.outstanding.is_none() {
            self.request(now, RequestKind::Check, 1, out);
        }
    }

    fn on_accepted(
        &mut self,
        now: Time,
        origin: NodeId,
        proposal: u64,
        revision: Revision,
        out: &mut Outbox,
    ) {
        if origin != self.cfg.id {
            if let Some(child) = self.relayed.remove(&(origin, proposal)) {
                out.send(child, Message::Accepted { origin, proposal, revision });
            }
            return;
        }
        if self.proposals.remove(&proposal).is_some()
            && revision > self.serving.store.current()
            && self.outstanding.is_none()
        {
            // Fetch the signed revision at once so this site's clients get
            // the change made here without waiting for the next check.
            self.request(now, RequestKind::Check, 1, out);
        }
    }

    fn send_proposals(&mut self, now: Time, out: &mut Outbox) {
        for (proposal, change) in &self.proposals {
            let msg = Message::Propose {
                origin: self.cfg.id,
                proposal: *proposal,
                change: Box::new(change.clone()),
            };
            out.send(self.cfg.parent, msg);
        }
        out.set_timer(now + self.cfg.request_timeout, Timer::ProposalRetry);
    }

    /// The parent asks for current status: answer for this site at once,
    /// and ask the servers below with half of the time left.
    fn on_status_request(
        &mut self,
        now: Time,
        query: u64,
        scope: Scope,
        deadline: Time,
        out: &mut Outbox,
    ) {
        let own = self.subtree_own(now, &scope);
        let client = match &scope {
            Scope::Client(c) => self.serving.clients.get(*c).map(|r| ClientDetail {
                client: *c,
                seen: r.seen,
                report: r.report.clone(),
            }),
            _ => None,
        };
        let targets: BTreeSet<NodeId> = match (&scope, &client) {
            (_, Some(_)) => BTreeSet::new(),
            (Scope::Site(s), _) if self.cfg.clients.sites.contains(s) || s == &self.cfg.site => {
                BTreeSet::new()
            }
            (Scope::Site(s), _) => match self.serving.route_to_site(s) {
                Some(child) => [child].into(),
                None => self.serving.children.keys().copied().collect(),
            },
            _ => self.serving.children.keys().copied().collect(),
        };
        let mut pending = Pending {
            reply_to: ReplyTo::Parent { node: self.cfg.parent, query },
            scope: scope.clone(),
            waiting: targets,
            sites: own,
            missing: vec![],
            client,
        };
        self.fanout.skip_down(&mut pending, |c| self.serving.sites_below(c));
        if pending.waiting.is_empty() {
            self.finish_query(pending, out);
            return;
        }
        // The deadline comes from the parent: saturate, whatever its value.
        let left = deadline.0.saturating_sub(now.0).max(0);
        let sub_deadline = Time(now.0.saturating_add(left / 2));
        let targets = pending.waiting.clone();
        let id = self.fanout.start(pending);
        for child in targets {
            let msg =
                Message::StatusRequest { query: id, scope: scope.clone(), deadline: sub_deadline };
            out.send(child, msg);
        }
        out.set_timer(sub_deadline, Timer::StatusDeadline { query: id });
    }

    /// This server's own part of a status answer for `scope`.
    fn subtree_own(&self, now: Time, scope: &Scope) -> Vec<SiteStats> {
        match scope {
            Scope::All => self.own_site_stats(now),
            Scope::Site(s) => {
                self.own_site_stats(now).into_iter().filter(|st| &st.site == s).collect()
            }
            Scope::Client(_) => Vec::new(),
        }
    }

    /// Fresh statistics of the sites whose clients this server serves,
    /// its own site always among them, carrying this server's count of
    /// refused revisions.
    fn own_site_stats(&self, now: Time) -> Vec<SiteStats> {
        let mut own = self.serving.own_stats(now);
        if !own.iter().any(|s| s.site == self.cfg.site) {
            own.push(SiteStats::empty(self.cfg.site.clone(), now));
        }
        for s in &mut own {
            if s.site == self.cfg.site {
                s.rejected_by_server = self.rejected_by_server;
            }
        }
        own.sort_by(|a, b| a.site.cmp(&b.site));
        own
    }

    fn finish_query(&mut self, mut p: Pending, out: &mut Outbox) {
        normalise(&mut p);
        if let ReplyTo::Parent { node, query } = p.reply_to {
            let msg = Message::StatusReply {
                query,
                sites: p.sites,
                missing: p.missing,
                client: p.client,
            };
            out.send(node, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Name;
    use crate::sign::PolicySigner;

    fn t(s: &str) -> Time {
        Time::from_jiff(s.parse().expect("a valid instant"))
    }

    /// A Tokyo server checking every 6 h, quiet in office hours.
    fn tokyo(quiet: Option<QuietHours>) -> Local {
        let verifier = PolicyVerifier::new(PolicySigner::from_secret([7; 32]).public());
        let tz = TimeZone::get("Asia/Tokyo").expect("bundled zone");
        let mut cfg = LocalConfig::new(NodeId(1), Name::new("tokyo"), NodeId(0), tz, verifier, 1);
        cfg.policy_check = Some(Duration::from_secs(6 * 3600));
        cfg.check_quiet = quiet;
        Local::new(cfg)
    }

    /// A check due in the quiet hours sends nothing and comes back when
    /// they end; outside them, or without quiet hours, it asks the parent.
    #[test]
    fn a_check_in_quiet_hours_waits_for_their_end() {
        // Monday 11:00 JST.
        let at = t("2026-03-02T02:00:00Z");

        let mut quiet = tokyo(Some(QuietHours::OFFICE));
        let mut out = Outbox::new();
        quiet.handle_timer(at, Timer::Check, &mut out);
        assert!(out.poll_transmit().is_none(), "a check was sent in office hours");
        assert_eq!(out.poll_timer(), Some((t("2026-03-02T09:00:00Z"), Timer::Check)));
        assert!(out.is_empty());

        // At 18:00 JST it runs, and the next one is 6 h later.
        let mut out = Outbox::new();
        quiet.handle_timer(t("2026-03-02T09:00:00Z"), Timer::Check, &mut out);
        let sent = out.poll_transmit().expect("the check goes out at 18:00");
        assert!(matches!(sent.msg, Message::Check { .. }));
        let timers: Vec<_> = std::iter::from_fn(|| out.poll_timer()).collect();
        assert!(timers.contains(&(t("2026-03-02T15:00:00Z"), Timer::Check)), "{timers:?}");

        // Without quiet hours the same 11:00 check goes out at once.
        let mut always = tokyo(None);
        let mut out = Outbox::new();
        always.handle_timer(at, Timer::Check, &mut out);
        assert!(matches!(out.poll_transmit().map(|t| t.msg), Some(Message::Check { .. })));
    }
}
