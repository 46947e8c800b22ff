//! The deterministic simulation: a whole account (its nodes, the verify
//! workloads, the nemesis and the checkers) on turmoil's simulated hosts,
//! network and time, on one thread, so that a seed replays bit for bit.
//!
//! - `account`: the account as the verify runner drives it in a
//!   simulation (crashes, restarts and pauses of hosts);
//! - `driver`: builds the simulation for a seed, steps it, carries out
//!   crashes and restarts, and returns the verdicts and the trace.

pub mod account;
pub mod driver;
