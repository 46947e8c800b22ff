//! The verification harness: recorded histories and the checkers that
//! judge them (issue 5). Each checker is a pure function over a history.

pub mod convergence;
pub mod durability;
pub mod history;
pub mod linearizable;
pub mod prefix;
pub mod session;
pub mod staleness;
pub mod verdict;
