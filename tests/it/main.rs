//! meridian's integration tests: one binary, files numbered by topic. Each
//! test starts real nodes on loopback (free ports), drives them over gRPC,
//! and waits on observable conditions with deadlines, never on sleeps.

mod procs;
mod support;

#[path = "03_api.rs"]
mod api;
#[path = "12_client.rs"]
mod client;
#[path = "05_config.rs"]
mod config;
#[path = "17_containers.rs"]
mod containers;
#[path = "04_crash.rs"]
mod crash;
#[path = "09_crash_points.rs"]
mod crash_points;
#[path = "07_deploy.rs"]
mod deploy;
#[path = "06_dev.rs"]
mod dev;
#[path = "19_edge.rs"]
mod edge;
#[path = "11_failover.rs"]
mod failover;
#[path = "13_failover_cli.rs"]
mod failover_cli;
#[path = "02_faults.rs"]
mod faults;
#[path = "10_geo.rs"]
mod geo;
#[path = "16_modules.rs"]
mod modules;
#[path = "14_mutations.rs"]
mod mutations;
#[path = "01_region.rs"]
mod region;
#[path = "18_scan.rs"]
mod scan;
#[path = "15_simulation.rs"]
mod simulation;
#[path = "08_verify.rs"]
mod verify;
