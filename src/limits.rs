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
/// What one item adds to a scan response besides its key and value: the
/// container name, etag, GLSN, timestamp, origin region and field framing.
/// Generous, so that the page budget below overestimates and never under.
pub const SCAN_ITEM_OVERHEAD_BYTES: usize = 1024;
/// The most a single legal item can cost in a scan response.
pub const SCAN_ITEM_BYTES_MAX: usize = KEY_BYTES_MAX + VALUE_BYTES_MAX + SCAN_ITEM_OVERHEAD_BYTES;
/// What a scan response carries besides its items: the continuation
/// (which holds a key, hex-encoded), the read GLSN, the session token and
/// the serving node.
pub const SCAN_RESPONSE_OVERHEAD_BYTES: usize = 4 * KEY_BYTES_MAX;
/// A scan page takes an item only while the page, counting each item as
/// key + value + [`SCAN_ITEM_OVERHEAD_BYTES`], stays within this budget;
/// the first item of a page is always taken, so a page of one maximal item
/// is legal too. Under 4 MiB with the overhead, because that is the
/// default receive limit of most gRPC stacks, not only ours.
pub const SCAN_PAGE_BYTES_MAX: usize = 3 * 1024 * 1024;

// A page must fit one message whichever way it ends: full by budget, or
// holding one item that is larger than the budget on its own.
const _: () = assert!(SCAN_PAGE_BYTES_MAX + SCAN_RESPONSE_OVERHEAD_BYTES <= GRPC_MESSAGE_BYTES_MAX);
const _: () = assert!(SCAN_ITEM_BYTES_MAX + SCAN_RESPONSE_OVERHEAD_BYTES <= GRPC_MESSAGE_BYTES_MAX);
const _: () = assert!(SCAN_PAGE_BYTES_MAX >= SCAN_ITEM_OVERHEAD_BYTES);
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
