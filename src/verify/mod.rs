//! The verification harness: workloads that record histories, the
//! nemesis that injects faults, the runner behind `meridian verify`, and
//! the checkers that judge histories (each a pure function).

pub mod calls;
pub mod checks;
pub mod cluster;
pub mod convergence;
pub mod durability;
pub mod history;
pub mod linearizable;
pub mod nemesis;
pub mod prefix;
pub mod procs;
pub mod runner;
pub mod session;
pub mod staleness;
pub mod verdict;
pub mod workload;
