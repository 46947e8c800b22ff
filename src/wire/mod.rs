//! The wire: generated protobuf code and its conversions to domain types.
//! Nothing outside `wire`, `api`, `client` and `cli` sees `pb::` types.

pub mod convert;
pub mod pb;
