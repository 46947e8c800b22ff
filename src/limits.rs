//! Every limit meridian enforces, in one place. Input beyond a limit is a
//! clear INVALID_ARGUMENT naming the limit, never a panic or a truncation.

/// Longest key, in bytes of UTF-8.
pub const KEY_BYTES_MAX: usize = 2 * 1024;
/// Largest value.
pub const VALUE_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Longest container name, in characters of `[A-Za-z0-9_-]`.
pub const CONTAINER_NAME_CHARS_MAX: usize = 255;
/// Largest gRPC message a node accepts or sends: a maximal value plus its
/// key and envelope, with room to spare.
pub const GRPC_MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest replica-to-replica message: an append-entries batch or snapshot
/// chunk. openraft's batches are capped by `max_payload_entries`; a batch of
/// maximal values is bounded by this.
pub const PEER_MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Default and largest page of a scan.
pub const SCAN_PAGE_ITEMS_DEFAULT: usize = 100;
pub const SCAN_PAGE_ITEMS_MAX: usize = 1000;
/// A scan page also stops once it holds this many bytes of values.
pub const SCAN_PAGE_BYTES_MAX: usize = 3 * 1024 * 1024;
/// An append-entries message is cut down to about this many bytes: openraft
/// gives each one only the heartbeat interval to arrive, and batches by
/// count, so a batch of large values must be split by size here.
pub const APPEND_ENTRIES_BYTES_TARGET: usize = 4 * 1024 * 1024;
/// Room in a request for everything but its key and value: container name,
/// session token, field tags and lengths.
pub const REQUEST_ENVELOPE_BYTES_MAX: usize = 64 * 1024;
/// Largest request the client port decodes: a maximal key and value and
/// their envelope. Just above the largest legal request, so a larger one is
/// refused before it is read into memory (`api::status::OversizeNamed`
/// names the refusal as INVALID_ARGUMENT).
pub const GRPC_REQUEST_BYTES_MAX: usize =
    KEY_BYTES_MAX + VALUE_BYTES_MAX + REQUEST_ENVELOPE_BYTES_MAX;
