pub mod calendar;
pub mod link;
pub mod meter;
pub mod queue;
pub mod transport;
