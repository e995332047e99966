//! tiersync-engine: the tiersync protocol as sans-IO state machines.
//!
//! The master policy server ([`Master`]), local policy servers at any depth
//! ([`Local`]) and clients ([`Client`]) are deterministic state machines.
//! They never read a clock, open a socket or draw randomness from anywhere
//! but a generator seeded by their driver: time arrives as the `now`
//! argument of every `handle_*` call, and effects leave through an
//! [`Outbox`] (messages to send, timers to arm, observations). The same
//! code runs under the simulator (virtual time) and the TCP daemons (wall
//! clock). See [`Node`] for the calling order.
//!
//! # Layout
//!
//! - [`time`], [`ids`]: instants, node ids, names, revisions.
//! - [`value`], [`blob`], [`policy`]: parameters, payloads, policies and
//!   the derivation of effective policies.
//! - [`sign`]: the master's signatures and their verification.
//! - [`stats`]: client reports and their consolidation.
//! - [`message`], [`codec`]: the wire messages and their framing.
//! - [`store`], [`schedule`], [`outbox`]: a server's policy set, the sync
//!   window, the effects of a call.
//! - [`master`], [`local`], [`client`], [`node`]: the nodes.
//! - [`testkit`]: a small deterministic harness for tests.
//! - [`units`]: durations, sizes, rates and windows as people write them,
//!   parsed once for scenario files and daemon configuration files alike.

pub mod blob;
pub mod client;
pub mod codec;
mod fanout;
pub mod ids;
pub mod local;
pub mod master;
pub mod message;
pub mod node;
pub mod outbox;
pub mod policy;
pub mod schedule;
pub mod serve;
pub mod sign;
pub mod stats;
pub mod store;
pub mod testkit;
pub mod time;
pub mod units;
pub mod value;

pub use blob::Blob;
pub use client::{Client, ClientProfile, ClientState};
pub use ids::{Name, NodeId, Platform, PolicyId, Revision, SiteName};
pub use local::{Local, LocalConfig, LocalState};
pub use master::{Master, MasterConfig, MasterState, StatusKind, StoredUpload};
pub use message::{Message, MessageKind, Scope};
pub use node::Node;
pub use outbox::{Observation, Outbox, Timer, Transmit};
pub use policy::PolicyChange;
pub use serve::ServeMode;
pub use sign::{PolicySigner, PolicyVerifier};
pub use time::Time;
pub use value::{Params, Value};
