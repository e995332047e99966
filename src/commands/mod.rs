//! One module per subcommand, and the thread pool they share.

pub mod check;
pub mod compare;
pub mod parallel;
pub mod replay;
pub mod run;
pub mod sweep;
