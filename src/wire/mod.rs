//! The wire: generated protobuf code and its conversions to domain types.
//! Only the edges see `pb::` types: `api`, `client`, `cli`, the two ends of
//! node-to-node traffic (`raft::network`, `raft::service`) and `server`,
//! which registers the services.

pub mod convert;
pub mod pb;
