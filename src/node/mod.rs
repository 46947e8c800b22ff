//! A running node: the request logic (`kv`), proposal batching
//! (`proposer`), read-index coalescing (`read_index`), the cross-region
//! runtime (`regions`; the pure geo rules are in `crate::geo`), the
//! messages between nodes (`messages`) and the dispatch of those it
//! receives (`calls`), and its assembly with storage, raft and the gRPC
//! servers (`launch`).
//!
//! Dependencies point one way: `calls` -> {`kv`, `regions`} -> `messages`,
//! and `kv` -> `regions`.

pub mod calls;
pub mod kv;
pub mod launch;
pub mod messages;
pub mod proposer;
pub mod read_index;
pub mod regions;
