//! tiersync-net: the tiersync engine over real TCP.
//!
//! The daemons run the very [`tiersync_engine`] nodes the simulator runs.
//! A driver ([`daemon`]) turns each node's `handle_*`/`poll_*` calls into
//! socket reads and writes over mutually-authenticated TLS 1.3, its timers
//! into sleeps on the wall clock, and commits what the node must not lose
//! to an embedded SQLite store ([`store`]) before any message that
//! acknowledges it leaves the process.
//!
//! # Layout
//!
//! - [`clock`]: the only place that reads the wall clock.
//! - [`ids`]: certificate names, roles, and their [`tiersync_engine::NodeId`]s.
//! - [`config`]: the daemons' TOML files and `init-config`.
//! - [`pki`]: a CA and node certificates for trying a deployment; the TLS
//!   set-up of every connection.
//! - [`conn`]: sessions, the accept loop, the reconnecting dial loop.
//! - [`setup`]: a daemon built from its configuration file.
//! - [`frame`]: frames on a byte stream, with size and time bounds.
//! - [`store`]: the SQLite stores of the master, local servers and clients.
//! - [`daemon`]: the driver: connections, timers, persistence, shutdown.
//! - [`operator`]: operator requests, their answers and their tables.
//! - [`metrics`]: counters and the Prometheus text endpoint.
//! - [`replay`]: many nodes in one process over loopback TLS with the
//!   engine's clock compressed, for `tiersync replay` (which builds the
//!   nodes from a scenario and sets the bytes beside the simulator's).
//! - [`cli`]: the command-line arguments and entry points.

pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod frame;
pub mod ids;
pub mod metrics;
pub mod operator;
pub mod pki;
pub mod replay;
pub mod setup;
pub mod store;
