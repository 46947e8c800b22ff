//! Everything openraft: type configuration, the storage adapters over
//! `storage/`, the replica transport, and `Replica`, the domain-level handle
//! the rest of meridian uses. No openraft type leaves this module.

// openraft's traits fix the error type (`StorageError`, ~224 bytes); boxing
// it in our helpers would only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod chase;
pub mod codec;
pub mod config;
pub mod log_cache;
pub mod log_store;
pub mod meta_machine;
pub mod meta_replica;
pub mod network;
pub mod replica;
pub mod runtime;
pub mod service;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod suite_test;
