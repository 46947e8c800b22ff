//! A running node: the request logic (`kv`), proposal batching
//! (`proposer`), and its assembly with storage, raft and the gRPC servers
//! (`launch`).

pub mod calls;
pub mod geo;
pub mod kv;
pub mod launch;
pub mod proposer;
pub mod read_index;
pub mod ship_source;
