//! The scan continuation: an opaque string naming where the next page
//! starts. It holds the last key of the page and a check over the scan it
//! belongs to (container and key range), so a token that was altered, cut
//! short or taken from another scan is refused as INVALID_ARGUMENT instead
//! of silently restarting the scan or skipping keys. The check is FNV-1a,
//! which catches mistakes, not an adversary: a client that wants other keys
//! can ask for them with `start` anyway.
//!
//! Format: `1.<key as lowercase hex>.<check as 16 hex digits>`.

use crate::error::Error;
use crate::item::KeyRange;
use crate::limits::KEY_BYTES_MAX;

const VERSION: &str = "1";
/// The longest token this module issues; anything longer is malformed.
pub const CONTINUATION_CHARS_MAX: usize = VERSION.len() + 1 + 2 * KEY_BYTES_MAX + 1 + 16;

/// The continuation after `last_key` in the scan of `container` over `range`.
pub fn encode(container: &str, range: &KeyRange, last_key: &str) -> String {
    let hex: String = last_key.bytes().map(|b| format!("{b:02x}")).collect();
    let check = check(container, range, last_key);
    format!("{VERSION}.{hex}.{check:016x}")
}

/// The key a page continues after, or `None` for an empty token (the
/// first page).
pub fn decode(container: &str, range: &KeyRange, token: &str) -> Result<Option<String>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let key = parse(token).map_err(|why| {
        Error::InvalidArgument(format!(
            "scan continuation {:?} is malformed: {why}; pass the continuation of the \
             previous page unchanged, or an empty one to start from the beginning",
            shorten(token)
        ))
    })?;
    if parse_check(token)? != check(container, range, &key) {
        return Err(Error::InvalidArgument(
            "scan continuation was not issued for this scan (it was altered, or comes from a \
             scan of another container, prefix, start or end): pass the continuation of the \
             previous page unchanged, with the same request fields"
                .to_string(),
        ));
    }
    Ok(Some(key))
}

fn parse(token: &str) -> Result<String, String> {
    if token.len() > CONTINUATION_CHARS_MAX {
        return Err(format!(
            "it is {} characters; the longest is {CONTINUATION_CHARS_MAX}",
            token.len()
        ));
    }
    let mut parts = token.split('.');
    let (Some(version), Some(hex), Some(check), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected three dot-separated parts".to_string());
    };
    if version != VERSION {
        return Err(format!("unknown version {version:?}"));
    }
    if check.len() != 16 || !check.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the check is not 16 hex digits".to_string());
    }
    let bytes = from_hex(hex).ok_or("the key is not hex")?;
    let key = String::from_utf8(bytes).map_err(|_| "the key is not UTF-8".to_string())?;
    if key.is_empty() {
        return Err("the key is empty".to_string());
    }
    Ok(key)
}

/// The check digits of a token `parse` accepted.
fn parse_check(token: &str) -> Result<u64, Error> {
    let digits = token.rsplit('.').next().unwrap_or_default();
    u64::from_str_radix(digits, 16)
        .map_err(|e| Error::InvalidArgument(format!("scan continuation check: {e}")))
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// FNV-1a over each field with its length, so fields cannot run into
/// each other.
fn check(container: &str, range: &KeyRange, key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let fields = [
        container,
        &range.prefix,
        range.start.as_deref().unwrap_or_default(),
        range.end.as_deref().unwrap_or_default(),
        key,
    ];
    let mut hash = OFFSET;
    for field in fields {
        let len = (field.len() as u64).to_be_bytes();
        for b in len.iter().chain(field.as_bytes()) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(PRIME);
        }
    }
    hash
}

/// The start of a bad token, for the error message.
fn shorten(token: &str) -> String {
    match token.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &token[..at]),
        None => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(prefix: &str) -> KeyRange {
        KeyRange {
            prefix: prefix.into(),
            ..Default::default()
        }
    }

    fn message(result: Result<Option<String>, Error>) -> String {
        match result {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn a_token_round_trips_within_its_scan() {
        let r = range("u/");
        for key in ["u/1", "u/ключ", &"k".repeat(KEY_BYTES_MAX)] {
            let token = encode("c", &r, key);
            assert!(token.len() <= CONTINUATION_CHARS_MAX);
            assert_eq!(decode("c", &r, &token).unwrap().as_deref(), Some(key));
        }
        assert_eq!(decode("c", &r, "").unwrap(), None);
    }

    #[test]
    fn a_token_from_another_scan_is_refused() {
        let token = encode("c", &range("u/"), "u/1");
        for (container, r) in [("d", range("u/")), ("c", range("v/")), ("c", range(""))] {
            assert!(message(decode(container, &r, &token)).contains("not issued for this scan"));
        }
        let mut start = range("u/");
        start.start = Some("u/0".into());
        assert!(message(decode("c", &start, &token)).contains("not issued for this scan"));
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_reason() {
        let good = encode("c", &range(""), "k");
        let forged_key = good.replacen("6b", "6c", 1);
        let cases = [
            ("k", "three dot-separated parts"),
            ("2.6b.0000000000000000", "unknown version"),
            ("1.6b.zz", "16 hex digits"),
            ("1.6.0000000000000000", "not hex"),
            ("1.ff.0000000000000000", "not UTF-8"),
            ("1..0000000000000000", "empty"),
            (&good[..good.len() - 1], "16 hex digits"),
        ];
        for (token, why) in cases {
            let m = message(decode("c", &range(""), token));
            assert!(m.contains("malformed") && m.contains(why), "{token}: {m}");
        }
        let long = "1.".to_string() + &"6b".repeat(KEY_BYTES_MAX + 1) + ".0000000000000000";
        assert!(message(decode("c", &range(""), &long)).contains("characters"));
        assert!(message(decode("c", &range(""), &forged_key)).contains("not issued for this scan"));
    }
}
