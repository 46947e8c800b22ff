//! `meridian bench`: a load generator against one endpoint (or a preferred
//! region), closed-loop or at a fixed rate, reporting throughput, latency
//! percentiles and, on a multi-region account, the replication lag it
//! caused, in numbers a person can compare.
//!
//! - [`args`]: the command-line arguments and their limits.
//! - [`schedule`]: when each operation of an open-loop run is due (pure).
//! - [`lag`]: replication lag samples and their distribution per region.
//! - [`runner`]: the client tasks, the prefill and the progress bar (I/O).
//! - [`report`]: the numbers, computed from the merged results (pure).

pub mod args;
pub mod lag;
pub mod report;
pub mod runner;
pub mod schedule;
