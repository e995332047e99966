//! tiersync-simnet: a deterministic discrete-event network simulator that
//! runs the tiersync engine's real nodes.
//!
//! Virtual time jumps from event to event; simultaneous events run in the
//! order they were queued. One seed decides every random draw (see
//! [`seeds`]); no hash-map order, thread timing or wall clock reaches a
//! result, and every run ends with a trace hash over its delivered
//! messages so that two runs can be compared in one line.
//!
//! # Layout
//!
//! - [`scenario`], [`units`]: the scenario file format.
//! - [`build`]: from a scenario to nodes, sites and links.
//! - [`nodes`]: the engine nodes' configurations, shared with `tiersync replay`.
//! - [`queue`], [`link`], [`draws`], [`transport`], [`calendar`]: the network.
//! - [`world`]: the event loop that drives the engine's nodes.
//! - [`metrics`], [`output`]: what a run measures and reports.
//! - [`frames`]: application bytes per link and kind, for `tiersync replay`.

pub mod build;
pub mod calendar;
pub mod draws;
pub mod frames;
pub mod link;
mod meter;
pub mod metrics;
pub mod nodes;
pub mod output;
mod prefetch;
pub mod queue;
pub mod scenario;
pub mod seeds;
pub mod slab;
pub mod tracehash;
pub mod transport;
pub mod units;
pub mod world;
