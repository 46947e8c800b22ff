//! A running node's logic: requests (`kv`), proposal batching
//! (`proposer`), shared read indexes (`read_index`), node-to-node requests
//! (`calls`), the cross-region runtime (`geo`) and the serving side of geo
//! shipping (`ship_source`). Its assembly with storage, raft and the gRPC
//! servers is the top-level `server` module, above `node` and `api`.

pub mod calls;
pub mod geo;
pub mod kv;
pub mod proposer;
pub mod read_index;
pub mod ship_source;
