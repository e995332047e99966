//! The client: polls its server, applies effective policies, reports its
//! security information.

use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt as _, SeedableRng as _};
use rand_pcg::Pcg32;

use crate::blob::Blob;
use crate::ids::{NodeId, Platform, PolicyId, Revision, SiteName};
use crate::message::{ErrorCode, Message};
use crate::outbox::{Observation, Outbox, Rejection, Timer};
use crate::policy::EffectivePolicy;
use crate::sign::{IntegrityError, PolicyVerifier};
use crate::stats::SecurityReport;
use crate::time::Time;

/// Settings shared by every client of one site and platform.
///
/// Shared by reference so that a million simulated clients carry one copy
/// of their settings, not a million.
#[derive(Clone)]
pub struct ClientProfile {
    /// The clients' site.
    pub site: SiteName,
    /// The clients' platform.
    pub platform: Platform,
    /// Their server: the site's local server, or the master (flat).
    pub server: NodeId,
    /// Interval between polls.
    pub poll: Duration,
    /// Bound of the random delay of the first poll, spreading clients
    /// over the poll interval.
    pub splay: Duration,
    /// Interval between status reports.
    pub status_every: Duration,
    /// The inventory payload carried by every report.
    pub inventory: Blob,
    /// Security engine version reported.
    pub engine_version: u32,
    /// Probability that a report finds a new threat.
    pub threat_rate: f64,
    /// Interval between full scans.
    pub scan_every: Duration,
    /// Bound of the random delay of the poll that follows a wake-up.
    pub wake_splay: Duration,
    /// Checks the master's signatures.
    pub verifier: PolicyVerifier,
}

/// What a client keeps on disk so that it enforces its last good policy
/// after a reboot with no network (see [`Client::restore`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientState {
    /// The revision it holds.
    pub have: Revision,
    /// The effective policies it enforces, content included.
    pub applied: Vec<Arc<EffectivePolicy>>,
    /// Threats found since installation.
    pub threats: u32,
    /// Policy revisions refused for failed verification.
    pub rejected: u32,
    /// When the last full scan finished.
    pub last_scan: Time,
}

/// A client machine.
#[derive(Debug)]
pub struct Client {
    id: NodeId,
    profile: Arc<ClientProfile>,
    rng: Pcg32,
    have: Revision,
    applied: Vec<Arc<EffectivePolicy>>,
    threats: u32,
    rejected: u32,
    last_scan: Time,
    /// Ask for everything on the next poll, and replace the whole set
    /// with the answer.
    resync: bool,
    /// Whether the last poll sent asked for everything.
    polled_all: bool,
    /// The last report sent, resent as is while nothing in it changed: a
    /// report carries no timestamp (the server notes when it arrived), so
    /// an unchanged report is the same value, shared instead of rebuilt.
    last_report: Option<Arc<SecurityReport>>,
}

impl std::fmt::Debug for ClientProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientProfile")
            .field("site", &self.site)
            .field("platform", &self.platform)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A freshly installed client: it holds no policy.
    pub fn new(id: NodeId, profile: Arc<ClientProfile>, seed: u64) -> Client {
        Client {
            id,
            profile,
            rng: Pcg32::seed_from_u64(seed),
            have: Revision::ZERO,
            applied: Vec::new(),
            threats: 0,
            rejected: 0,
            last_scan: Time::EPOCH,
            resync: false,
            polled_all: false,
            last_report: None,
        }
    }

    /// A client rebuilt from a persisted [`ClientState`]: it enforces what
    /// it applied before, and its next poll asks only for what changed
    /// since, so nothing is applied twice. Call [`Client::handle_start`]
    /// next.
    pub fn restore(
        id: NodeId,
        profile: Arc<ClientProfile>,
        seed: u64,
        state: ClientState,
    ) -> Client {
        let mut client = Client::new(id, profile, seed);
        let mut applied = state.applied;
        applied.sort_by(|a, b| a.id.cmp(&b.id));
        applied.dedup_by(|a, b| a.id == b.id);
        client.applied = applied;
        client.have = state.have;
        client.threats = state.threats;
        client.rejected = state.rejected;
        client.last_scan = state.last_scan;
        client
    }

    /// What must be persisted to restore this client.
    pub fn state(&self) -> ClientState {
        ClientState {
            have: self.have,
            applied: self.applied.clone(),
            threats: self.threats,
            rejected: self.rejected,
            last_scan: self.last_scan,
        }
    }

    /// Polls the server now, outside the schedule: a driver calls it when
    /// the connection to the server comes up, so that a client back from a
    /// network outage does not wait a whole poll interval.
    pub fn handle_poll_now(&mut self, _now: Time, out: &mut Outbox) {
        self.poll(out);
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The settings it runs with.
    pub fn profile(&self) -> &Arc<ClientProfile> {
        &self.profile
    }

    /// The revision it holds.
    pub fn have(&self) -> Revision {
        self.have
    }

    /// The effective policies it enforces, in id order.
    pub fn applied(&self) -> &[Arc<EffectivePolicy>] {
        &self.applied
    }

    /// The report it sent last, which its next report resends while
    /// nothing in it changed (a driver may warm its memory before the
    /// client's next report timer).
    pub fn last_report(&self) -> Option<&Arc<SecurityReport>> {
        self.last_report.as_ref()
    }

    /// Starts (or restarts after power-on) the client: first poll and
    /// report at random points so that clients do not arrive together.
    pub fn handle_start(&mut self, now: Time, out: &mut Outbox) {
        let first_poll = self.uniform(self.profile.splay);
        let first_report = self.uniform(self.profile.status_every);
        out.set_timer(now + first_poll, Timer::Poll);
        out.set_timer(now + first_report, Timer::Report);
    }

    /// Handles a timer this node asked for.
    pub fn handle_timer(&mut self, now: Time, timer: Timer, out: &mut Outbox) {
        match timer {
            Timer::Poll => {
                out.set_timer(now + self.profile.poll, Timer::Poll);
                self.poll(out);
            }
            Timer::WakePoll => self.poll(out),
            Timer::Report => {
                out.set_timer(now + self.profile.status_every, Timer::Report);
                self.report(now, out);
            }
            _ => {}
        }
    }

    /// Handles a message from a peer. Only the client's server is heard.
    pub fn handle_message(&mut self, now: Time, from: NodeId, msg: Message, out: &mut Outbox) {
        if from != self.profile.server {
            out.observe(Observation::Rejected { peer: from, reason: Rejection::UnknownPeer });
            return;
        }
        match msg {
            Message::PolicyUpdate { current, policies, removed, full } => {
                self.apply(current, policies, removed, full, out);
            }
            Message::Wake { revision } => {
                if revision > self.have {
                    let delay = self.uniform(self.profile.wake_splay);
                    out.set_timer(now + delay, Timer::WakePoll);
                }
            }
            Message::ReportAck => {}
            Message::Error { code, .. } => {
                out.observe(Observation::Rejected {
                    peer: from,
                    reason: Rejection::RefusedByPeer(code),
                });
                // The server is behind this client (restored from an older
                // backup): ask for everything now and replace the set.
                if code == ErrorCode::RevisionFromFuture && !self.resync {
                    self.resync = true;
                    self.poll(out);
                }
            }
            _ => out.observe(Observation::Rejected { peer: from, reason: Rejection::Unexpected }),
        }
    }

    fn uniform(&mut self, bound: Duration) -> Duration {
        let ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if ns == 0 { Duration::ZERO } else { Duration::from_nanos(self.rng.random_range(0..ns)) }
    }

    fn poll(&mut self, out: &mut Outbox) {
        let have = if self.resync { Revision::ZERO } else { self.have };
        self.polled_all = self.resync;
        let p = &self.profile;
        out.send(
            p.server,
            Message::Poll { have, site: p.site.clone(), platform: p.platform.clone() },
        );
    }

    fn report(&mut self, now: Time, out: &mut Outbox) {
        let p = &self.profile;
        if self.rng.random_bool(p.threat_rate.clamp(0.0, 1.0)) {
            self.threats = self.threats.saturating_add(1);
            self.last_report = None;
        }
        if now.saturating_since(self.last_scan) >= p.scan_every {
            self.last_scan = now;
            self.last_report = None;
        }
        if let Some(report) = &self.last_report {
            out.send(p.server, Message::Report { report: report.clone() });
            return;
        }
        let applied: Vec<(PolicyId, Revision)> =
            self.applied.iter().map(|e| (e.id.clone(), e.revision)).collect();
        let signature_version =
            self.applied.iter().map(|e| e.content_revision.0).max().unwrap_or(0);
        let report = SecurityReport {
            platform: p.platform.clone(),
            site: p.site.clone(),
            applied,
            engine_version: p.engine_version,
            signature_version,
            firewall_on: self.applied.iter().any(|e| e.id.as_str() == "firewall"),
            threats_found: self.threats,
            last_scan: self.last_scan,
            rejected_policies: self.rejected,
            inventory: p.inventory.clone(),
        };
        let report = Arc::new(report);
        self.last_report = Some(report.clone());
        out.send(p.server, Message::Report { report });
    }

    /// Verifies and applies an update. A policy that fails verification is
    /// not applied: the client keeps enforcing its last good revision, counts
    /// the refusal in its next report, and asks again on its next poll.
    ///
    /// A known limit: only policies carry the master's signature; the
    /// `removed` list, and what a `full` update leaves out, do not, so a
    /// dishonest server can make its clients drop a policy (though never
    /// install one of its own making).
    ///
    /// A `full` update is the client's whole set: it replaces what is held,
    /// even with older revisions when the client asked for everything (its
    /// server was restored from an older backup). A `full` update older
    /// than what is held, not asked for so, is a late duplicate and ignored.
    fn apply(
        &mut self,
        current: Revision,
        policies: Vec<Arc<EffectivePolicy>>,
        removed: Vec<PolicyId>,
        full: bool,
        out: &mut Outbox,
    ) {
        if !full && policies.is_empty() && removed.is_empty() {
            // Nothing changed (most answers): only the revision may move,
            // never back for a late answer to an older poll.
            self.have = self.have.max(current);
            return;
        }
        if full && current < self.have && !self.resync {
            tracing::debug!(%current, have = %self.have, "stale full update ignored");
            return;
        }
        let mut failed = false;
        let mut missing = false;
        let mut keep: Vec<PolicyId> = Vec::new();
        let held_before = self.applied.len();
        for incoming in policies {
            keep.push(incoming.id.clone());
            let held = self.applied.iter().position(|e| e.id == incoming.id);
            // In a full set, a policy is kept only when it is the very same
            // signed variant (a server restored from a backup may reuse a
            // revision number for another change).
            if let Some(i) = held {
                let mine = &self.applied[i];
                let already = if full {
                    mine.revision == incoming.revision && mine.signature == incoming.signature
                } else {
                    mine.revision >= incoming.revision
                };
                if already {
                    continue;
                }
            }
            // Whatever happens next, the next report differs.
            self.last_report = None;
            match self.verify(&incoming, held) {
                Ok(()) => {}
                Err(IntegrityError::MissingContent { policy, revision }) => {
                    // Not tampering: the server thought this client held
                    // the content. Not counted as a refusal.
                    failed = true;
                    missing = true;
                    let reason = Rejection::MissingContent { policy, revision };
                    out.observe(Observation::Rejected { peer: self.profile.server, reason });
                    continue;
                }
                Err(e) => {
                    failed = true;
                    self.rejected = self.rejected.saturating_add(1);
                    let reason = Rejection::Integrity(e);
                    out.observe(Observation::Rejected { peer: self.profile.server, reason });
                    continue;
                }
            }
            let stored = match (&incoming.content, held) {
                (Some(_), _) | (None, None) => incoming,
                (None, Some(i)) => Arc::new(incoming.with_content(self.applied[i].content.clone())),
            };
            out.observe(Observation::Applied {
                policy: stored.id.clone(),
                revision: stored.revision,
            });
            match held {
                Some(i) => self.applied[i] = stored,
                None => {
                    let at = self.applied.partition_point(|e| e.id < stored.id);
                    self.applied.insert(at, stored);
                }
            }
        }
        // Most answers remove nothing: then the held list is not touched.
        if full || !removed.is_empty() {
            self.applied.retain(|e| {
                let gone = removed.contains(&e.id) || (full && !keep.contains(&e.id));
                if gone {
                    out.observe(Observation::Removed { policy: e.id.clone() });
                }
                !gone
            });
        }
        if self.applied.len() != held_before {
            self.last_report = None;
        }
        // Only a whole set received ends a resynchronisation: a late
        // answer to an older poll must not cancel it.
        if !failed && full {
            self.have = current;
            self.resync = false;
        } else if !failed {
            // A late answer to an older poll does not move the client back.
            self.have = self.have.max(current);
        }

        // Content went missing: ask for everything at once, unless this
        // answer already was to such a request (a server that strips
        // content then gets one request per poll interval, not a loop).
        if missing {
            self.resync = true;
            if !self.polled_all {
                self.poll(out);
            }
        }
    }

    fn verify(&self, p: &EffectivePolicy, held: Option<usize>) -> Result<(), IntegrityError> {
        let content = match (&p.content, held) {
            (Some(c), _) => Some(c),
            (None, Some(i)) if self.applied[i].content_revision == p.content_revision => {
                self.applied[i].content.as_ref()
            }
            _ => None,
        };
        let prof = &self.profile;
        prof.verifier.verify_effective(p, &prof.site, &prof.platform, content)
    }
}
