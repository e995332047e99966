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
//! # Rules every node follows
//!
//! **Derivation.** A client's effective parameters are the policy's global
//! parameters, then its site's overlay, then its platform's overlay, merged
//! key by key ([`value::merge`]): global < site < platform. When a site and
//! a platform overlay set the same key, the platform's value wins. Example:
//! global `{scan = "daily", limits = {cpu = 50, io = 20}}`, site `tokyo`
//! `{scan = "weekly", limits = {cpu = 10}}`, platform `linux`
//! `{scan = "hourly", limits = {io = 5}}`: a Linux client in Tokyo gets
//! `{scan = "hourly", limits = {cpu = 10, io = 5}}`, a Windows client in
//! Tokyo `{scan = "weekly", limits = {cpu = 10, io = 20}}`.
//!
//! **Conflicts.** Two locals changing the same policy at once end in one
//! result everywhere, by revision order at the master: the master applies
//! proposals in the order they reach it, each to the policy as the master
//! holds it at that moment (a field the change leaves out keeps the
//! master's value, not the proposer's), and gives each the next revision.
//! Of two changes setting the same field, the later arrival wins; fields
//! only one of them sets keep that one's value. Every node converges to
//! the master's latest revision of each policy, so all agree.
//!
//! **Who may talk to a server.** Child servers are the configured
//! `children`; a child uploads statistics only for the sites of its
//! subtree (`child_sites`, or by default a known site no other child
//! claims); it proposes policies in its own name or relays them for
//! servers below it, never in the name of its parent, of the server it
//! talks to or of a sibling. Clients are checked against a known list
//! ([`serve::ClientAdmission`]): their site must be one the server serves,
//! their platform a configured one, and the driver's own check, if any,
//! must accept them. Anything else gets a typed error and changes nothing.
//!
//! **Ahead of the parent.** A node told that its revision is from the
//! future (its parent was restored from an older backup) asks again at once
//! from revision zero, receives a snapshot, and replaces its whole set; a
//! client receiving a full set replaces its own. A known limit: this works
//! only if the child asks before the restored parent has assigned as many
//! new revisions as it lost; after that, revision numbers are reused and
//! the child cannot tell that its revisions were lost.
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

#![warn(missing_docs)]

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
