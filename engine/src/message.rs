//! The wire messages of the protocol.
//!
//! Four conversations share one enum:
//! - a child server and its parent: [`Message::Sync`], [`Message::Check`],
//!   [`Message::Policies`], [`Message::Wake`], proposals of locally created
//!   policies ([`Message::Propose`] / [`Message::Accepted`] /
//!   [`Message::Refused`]), and on-demand status
//!   ([`Message::StatusRequest`] / [`Message::StatusReply`]);
//! - a client and its server: [`Message::Poll`] / [`Message::PolicyUpdate`]
//!   and [`Message::Report`] / [`Message::ReportAck`];
//! - any request may be answered by [`Message::Error`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, Platform, PolicyId, Revision, SiteName};
use crate::policy::{EffectivePolicy, PolicyChange, SignedPolicy};
use crate::stats::{SecurityReport, SiteStats};
use crate::time::Time;

/// One protocol message. Cloning is cheap: bulky parts are shared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Child server → parent, at its scheduled time (patent blocks
    /// 211/245): uploads consolidated statistics and asks for every policy
    /// change after `have`.
    Sync {
        /// Request id, echoed in the reply.
        req: u32,
        /// The revision the child holds.
        have: Revision,
        /// Consolidated statistics of the child's subtree.
        stats: Option<StatsUpload>,
    },
    /// Child server → parent: the lighter check for new policies between
    /// syncs (blocks 235–239), or an on-demand request (241/243).
    Check {
        /// Request id, echoed in the reply.
        req: u32,
        /// The revision the child holds.
        have: Revision,
    },
    /// Parent → child server: the answer to `Sync` or `Check`.
    Policies {
        /// The request answered.
        req: u32,
        /// The revision the child holds once it has applied `changes`.
        upto: Revision,
        /// What changed.
        changes: Changes,
        /// The sequence number of the statistics upload now stored, if the
        /// request carried one.
        stats_acked: Option<u64>,
    },
    /// Parent → child server: an urgent revision exists; fetch it now.
    Wake {
        /// The urgent revision.
        revision: Revision,
    },
    /// Local server → parent (relayed up to the master): a policy created
    /// at a local server (blocks 231/233).
    Propose {
        /// The local server where the change was made.
        origin: NodeId,
        /// Its id for the proposal, unique per origin.
        proposal: u64,
        /// The change (boxed: it is large and rare, and every other message
        /// would otherwise be as big as it is).
        change: Box<PolicyChange>,
    },
    /// Master → origin (relayed down): the proposal got a revision.
    Accepted {
        /// The proposing local server.
        origin: NodeId,
        /// The proposal.
        proposal: u64,
        /// The revision assigned.
        revision: Revision,
    },
    /// Master → origin (relayed down): the proposal was refused.
    Refused {
        /// The proposing local server.
        origin: NodeId,
        /// The proposal.
        proposal: u64,
        /// Why.
        code: ErrorCode,
    },
    /// Parent → child server: report current statistics now.
    StatusRequest {
        /// Query id, echoed in the reply.
        query: u64,
        /// What is asked for.
        scope: Scope,
        /// When the asker stops waiting; a middle tier gives its own
        /// children half of the time left.
        deadline: Time,
    },
    /// Child server → parent: the answer to `StatusRequest`.
    StatusReply {
        /// The query answered.
        query: u64,
        /// Fresh statistics per site of the child's subtree.
        sites: Vec<SiteStats>,
        /// Sites below the child that did not answer in time, or whose
        /// server's connection was down.
        missing: Vec<SiteName>,
        /// A client's latest report, for a client drill-down.
        client: Option<ClientDetail>,
    },
    /// Client → server: asks for effective policy changes.
    Poll {
        /// The revision the client holds (zero after a reinstall).
        have: Revision,
        /// The client's site.
        site: SiteName,
        /// The client's platform.
        platform: Platform,
    },
    /// Server → client: the answer to `Poll`.
    PolicyUpdate {
        /// The revision the client holds once it has applied this.
        current: Revision,
        /// Effective policies changed after the client's revision (or all
        /// of them when `full`).
        policies: Vec<Arc<EffectivePolicy>>,
        /// Policies that no longer apply to the client.
        removed: Vec<PolicyId>,
        /// Whether `policies` is the client's complete set.
        full: bool,
    },
    /// Client → server: the client's security information.
    Report {
        /// The report.
        report: Arc<SecurityReport>,
    },
    /// Server → client: the report is stored.
    ReportAck,
    /// Any node → peer: the request could not be served.
    Error {
        /// The request refused (0 when the request had no id).
        req: u32,
        /// Why.
        code: ErrorCode,
    },
}

/// Policy changes sent to a child server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Changes {
    /// The revisions after the child's; it keeps everything else.
    Delta(Vec<Arc<SignedPolicy>>),
    /// The complete set, because the parent's change log no longer reaches
    /// back to the child's revision; the child replaces what it holds.
    Snapshot(Vec<Arc<SignedPolicy>>),
}

impl Changes {
    /// The revisions carried.
    pub fn policies(&self) -> &[Arc<SignedPolicy>] {
        match self {
            Changes::Delta(p) | Changes::Snapshot(p) => p,
        }
    }
}

/// Consolidated statistics uploaded by a child server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsUpload {
    /// Upload sequence number of the child, for acknowledgement.
    pub seq: u64,
    /// One entry per site of the child's subtree.
    pub sites: Vec<SiteStats>,
}

/// What a status query asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every site.
    All,
    /// One site (a drill-down).
    Site(SiteName),
    /// One client (a drill-down).
    Client(NodeId),
}

/// One client's latest report, as its server holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientDetail {
    /// The client.
    pub client: NodeId,
    /// When its server last heard from it.
    pub seen: Time,
    /// Its latest report.
    pub report: Arc<SecurityReport>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The sender is not a configured peer of this node.
    UnknownPeer,
    /// The sender claims a revision this node has not reached.
    RevisionFromFuture,
    /// The change names a policy that does not exist and does not create it.
    UnknownPolicy,
    /// A drill-down for a client no server holds.
    UnknownClient,
    /// A drill-down for a site not in the topology.
    UnknownSite,
    /// A client of another site asked a local server.
    WrongSite,
    /// The message is not one this node serves.
    Unexpected,
    /// The frame names a protocol version this node does not speak; the
    /// connection is closed after this reply.
    UnsupportedVersion,
    /// The frame could not be decoded (garbage, trailing bytes, a length
    /// over the receiver's maximum); the connection is closed after this
    /// reply.
    BadFrame,
    /// A client of a platform the server is not configured to serve.
    UnknownPlatform,
}

impl ErrorCode {
    /// Every code, in wire order (the variant index is the position).
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::UnknownPeer,
        ErrorCode::RevisionFromFuture,
        ErrorCode::UnknownPolicy,
        ErrorCode::UnknownClient,
        ErrorCode::UnknownSite,
        ErrorCode::WrongSite,
        ErrorCode::Unexpected,
        ErrorCode::UnsupportedVersion,
        ErrorCode::BadFrame,
        ErrorCode::UnknownPlatform,
    ];
}

/// Message kinds, for metering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// [`Message::Sync`]
    Sync,
    /// [`Message::Check`]
    Check,
    /// [`Message::Policies`]
    Policies,
    /// [`Message::Wake`]
    Wake,
    /// [`Message::Propose`]
    Propose,
    /// [`Message::Accepted`]
    Accepted,
    /// [`Message::Refused`]
    Refused,
    /// [`Message::StatusRequest`]
    StatusRequest,
    /// [`Message::StatusReply`]
    StatusReply,
    /// [`Message::Poll`]
    Poll,
    /// [`Message::PolicyUpdate`]
    PolicyUpdate,
    /// [`Message::Report`]
    Report,
    /// [`Message::ReportAck`]
    ReportAck,
    /// [`Message::Error`]
    Error,
}

impl MessageKind {
    /// Every kind, in a fixed order.
    pub const ALL: [MessageKind; 14] = [
        MessageKind::Sync,
        MessageKind::Check,
        MessageKind::Policies,
        MessageKind::Wake,
        MessageKind::Propose,
        MessageKind::Accepted,
        MessageKind::Refused,
        MessageKind::StatusRequest,
        MessageKind::StatusReply,
        MessageKind::Poll,
        MessageKind::PolicyUpdate,
        MessageKind::Report,
        MessageKind::ReportAck,
        MessageKind::Error,
    ];

    /// A stable lower-case name, used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Sync => "sync",
            MessageKind::Check => "check",
            MessageKind::Policies => "policies",
            MessageKind::Wake => "wake",
            MessageKind::Propose => "propose",
            MessageKind::Accepted => "accepted",
            MessageKind::Refused => "refused",
            MessageKind::StatusRequest => "status_request",
            MessageKind::StatusReply => "status_reply",
            MessageKind::Poll => "poll",
            MessageKind::PolicyUpdate => "policy_update",
            MessageKind::Report => "report",
            MessageKind::ReportAck => "report_ack",
            MessageKind::Error => "error",
        }
    }
}

impl Message {
    /// This message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Sync { .. } => MessageKind::Sync,
            Message::Check { .. } => MessageKind::Check,
            Message::Policies { .. } => MessageKind::Policies,
            Message::Wake { .. } => MessageKind::Wake,
            Message::Propose { .. } => MessageKind::Propose,
            Message::Accepted { .. } => MessageKind::Accepted,
            Message::Refused { .. } => MessageKind::Refused,
            Message::StatusRequest { .. } => MessageKind::StatusRequest,
            Message::StatusReply { .. } => MessageKind::StatusReply,
            Message::Poll { .. } => MessageKind::Poll,
            Message::PolicyUpdate { .. } => MessageKind::PolicyUpdate,
            Message::Report { .. } => MessageKind::Report,
            Message::ReportAck => MessageKind::ReportAck,
            Message::Error { .. } => MessageKind::Error,
        }
    }
}
