pub mod scenario;
pub mod units;
