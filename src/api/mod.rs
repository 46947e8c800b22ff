//! The gRPC services clients talk to. Each decodes the request, calls the
//! node's domain logic and maps the result; errors map in `status`.

pub mod admin;
pub mod conflicts;
pub mod continuation;
pub mod faults;
pub mod kv;
pub mod status;
