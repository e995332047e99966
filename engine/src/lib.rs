//! tiersync-engine: the protocol as sans-IO state machines.
pub mod time;
pub use time::Time;
