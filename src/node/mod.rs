//! A running node's logic: the request logic (`kv`), proposal batching
//! (`proposer`), read-index coalescing (`read_index`), the cross-region
//! runtime (`regions`; the pure geo rules are in `crate::geo`), the
//! messages between nodes (`messages`), the dispatch of those it receives
//! (`calls`) and the serving side of geo shipping (`ship_source`). Its
//! assembly with storage, raft and the gRPC servers is the top-level
//! `server` module, above `node` and `api`.
//!
//! Dependencies point one way: `calls` -> {`kv`, `regions`, `ship_source`}
//! -> `messages`, and `kv` -> `regions`.

pub mod calls;
pub mod kv;
pub mod messages;
pub mod proposer;
pub mod read_index;
pub mod regions;
pub mod ship_source;
