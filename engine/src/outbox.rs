//! What a node asks its driver to do: the effects of a `handle_*` call.

use std::collections::VecDeque;

use crate::ids::{NodeId, Platform, PolicyId, Revision, SiteName};
use crate::message::{ClientDetail, ErrorCode, Message};
use crate::sign::IntegrityError;
use crate::stats::SiteStats;
use crate::time::Time;

/// A message to deliver.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// The receiving node.
    pub to: NodeId,
    /// The message.
    pub msg: Message,
}

/// A timer a node asks for; the driver hands it back through
/// `handle_timer` at the requested time.
///
/// Timers are never cancelled: a node recognises a timer it no longer
/// needs (a retry for a request already answered, a deadline for a query
/// already complete) and ignores it. A driver that restarts a node drops
/// the timers of the previous incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// A local server's daily synchronisation.
    Sync,
    /// A local server's periodic policy check.
    Check,
    /// A one-off fetch of new policies (a fresh server's first request).
    Fetch,
    /// A request to the parent got no answer in time.
    Retry {
        /// The request.
        req: u32,
    },
    /// Resend unanswered proposals.
    ProposalRetry,
    /// A fan-out status query stops waiting.
    StatusDeadline {
        /// The query, in the node's own numbering.
        query: u64,
    },
    /// A client's periodic poll.
    Poll,
    /// A client's extra poll after a wake-up.
    WakePoll,
    /// A client's periodic status report.
    Report,
}

/// Why a node rejected input without changing its state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Rejection {
    /// The message came from a node that is not a configured peer.
    UnknownPeer,
    /// A client of a site this server does not serve asked it.
    WrongSite,
    /// A client of a platform this server is not configured for asked it.
    UnknownPlatform(Platform),
    /// A child server uploaded statistics for a site outside its subtree;
    /// the whole upload was refused.
    SiteNotBelow(SiteName),
    /// The peer claims a revision not reached here.
    RevisionFromFuture {
        /// What the peer claimed.
        claimed: Revision,
        /// What this node holds.
        held: Revision,
    },
    /// A change for an unknown policy that does not create it.
    UnknownPolicy(PolicyId),
    /// A policy failed verification; the last good revision is kept.
    Integrity(IntegrityError),
    /// A policy came without content the receiver does not hold (its
    /// server could not know the receiver lacked it). Not a sign of
    /// tampering and not counted as one: the receiver keeps what it holds
    /// and asks for everything again at once.
    MissingContent {
        /// The policy.
        policy: PolicyId,
        /// The revision that came without content.
        revision: Revision,
    },
    /// The peer refused our request.
    RefusedByPeer(ErrorCode),
    /// A message this node does not serve.
    Unexpected,
}

/// The answer to an operator's status query.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusAnswer {
    /// Statistics per site that answered (or, historically, were stored).
    pub sites: Vec<SiteStats>,
    /// Sites that did not answer before the deadline, or whose server's
    /// connection the driver reported down.
    pub missing: Vec<SiteName>,
    /// A client's detail, for a client drill-down.
    pub client: Option<ClientDetail>,
    /// Set when the query cannot be answered (unknown site or client).
    pub error: Option<ErrorCode>,
}

/// A typed fact a node reports; the simulator turns observations into
/// metrics and the daemons into logs and counters.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Observation {
    /// The master gave a change its revision.
    RevisionAssigned {
        /// The policy.
        policy: PolicyId,
        /// Its new revision.
        revision: Revision,
        /// Where the change was made (the master's own id for changes made
        /// at the master).
        origin: NodeId,
        /// The origin's proposal id.
        proposal: u64,
        /// Whether it takes the wake-up path.
        urgent: bool,
    },
    /// A proposal was refused by the master.
    ProposalRefused {
        /// The proposal.
        proposal: u64,
        /// Why.
        code: ErrorCode,
    },
    /// A client applied a policy revision.
    Applied {
        /// The policy.
        policy: PolicyId,
        /// The revision now enforced.
        revision: Revision,
    },
    /// A client stopped enforcing a policy that no longer applies to it.
    Removed {
        /// The policy.
        policy: PolicyId,
    },
    /// A server stored policy revisions from its parent.
    PoliciesStored {
        /// The revision it now holds.
        upto: Revision,
        /// How many policy revisions arrived.
        count: usize,
        /// Whether they came as a full snapshot.
        snapshot: bool,
    },
    /// A local server started a scheduled synchronisation.
    SyncStarted {
        /// Attempt number, 1 for the first try.
        attempt: u32,
    },
    /// A local server's synchronisation completed.
    SyncCompleted {
        /// The revision it now holds.
        upto: Revision,
    },
    /// A local server gave up a synchronisation after its retries.
    SyncAbandoned {
        /// Attempts made.
        attempts: u32,
    },
    /// A server stored a statistics upload from a child.
    StatsStored {
        /// The child.
        from: NodeId,
        /// Sites and the time each was consolidated.
        sites: Vec<(SiteName, Time)>,
    },
    /// A status query was answered.
    StatusAnswered {
        /// The operator's query id.
        query: u64,
        /// The answer.
        answer: StatusAnswer,
    },
    /// Input rejected; no state changed.
    Rejected {
        /// The peer at fault.
        peer: NodeId,
        /// Why.
        reason: Rejection,
    },
}

/// The effects of `handle_*` calls, drained by the driver with `poll_*`.
///
/// One outbox may serve many nodes in turn (the simulator reuses one for
/// every event); the driver drains it after each call.
#[derive(Debug, Default)]
pub struct Outbox {
    transmits: VecDeque<Transmit>,
    timers: VecDeque<(Time, Timer)>,
    observations: VecDeque<Observation>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Queues a message.
    pub fn send(&mut self, to: NodeId, msg: Message) {
        self.transmits.push_back(Transmit { to, msg });
    }

    /// Asks for a timer at `at`.
    pub fn set_timer(&mut self, at: Time, timer: Timer) {
        self.timers.push_back((at, timer));
    }

    /// Records an observation.
    pub fn observe(&mut self, o: Observation) {
        self.observations.push_back(o);
    }

    /// The next message to deliver, in the order the node queued them.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next timer to arm.
    pub fn poll_timer(&mut self) -> Option<(Time, Timer)> {
        self.timers.pop_front()
    }

    /// The next observation.
    pub fn poll_observation(&mut self) -> Option<Observation> {
        self.observations.pop_front()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty() && self.timers.is_empty() && self.observations.is_empty()
    }
}
