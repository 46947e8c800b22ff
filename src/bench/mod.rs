//! `meridian bench`: a closed-loop load generator against one endpoint,
//! reporting throughput and latency percentiles a person can compare.
//!
//! - [`args`]: the command-line arguments and their limits.
//! - [`runner`]: the client tasks, the prefill and the progress bar (I/O).
//! - [`report`]: the numbers, computed from the merged results (pure).

pub mod args;
pub mod report;
pub mod runner;
