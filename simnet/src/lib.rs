pub mod queue;
pub mod transport;
