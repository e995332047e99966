pub mod calendar;
pub mod link;
pub mod queue;
pub mod transport;
