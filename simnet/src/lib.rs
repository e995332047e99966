pub mod calendar;
pub mod queue;
pub mod transport;
