//! The one binary encoding for everything meridian stores or sends between
//! its own nodes (log entries, items, snapshots, replica messages): bincode
//! over serde. Decoding never trusts its input: a size limit bounds what a
//! corrupt length prefix could make it allocate, and errors are values.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits::PEER_MESSAGE_BYTES_MAX;

/// Decoding refuses to allocate more than this for one value.
const DECODE_BYTES_MAX: usize = PEER_MESSAGE_BYTES_MAX * 4;

#[derive(Debug, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub struct DecodeError {
    pub what: &'static str,
    pub reason: String,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_BYTES_MAX>()
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for our types (no maps with
    // non-string keys, no custom serializers that error).
    bincode::serde::encode_to_vec(value, config()).expect("bincode encoding of an in-memory value")
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| DecodeError {
            what,
            reason: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(DecodeError {
            what,
            reason: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let v = (7u64, "west".to_string(), vec![1u8, 2, 3]);
        let bytes = encode(&v);
        let back: (u64, String, Vec<u8>) = decode("tuple", &bytes).unwrap();
        assert_eq!(back, v);
        assert!(decode::<(u64, String, Vec<u8>)>("tuple", &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<(u64, String, Vec<u8>)>("tuple", &longer).is_err());
        // A huge claimed length must be refused, not allocated.
        assert!(
            decode::<Vec<u8>>(
                "vec",
                &[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
            )
            .is_err()
        );
    }
}
