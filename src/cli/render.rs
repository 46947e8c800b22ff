//! Pure rendering shared by the commands: aligned tables, dashes for
//! absent figures, GLSNs and serving nodes as text, and values as UTF-8
//! or marked base64.

use base64::Engine as _;
use serde::Serialize;

use crate::glsn::Glsn;
use crate::ids::ReplicaId;

/// Rows under a header, each column as wide as its widest cell, two spaces
/// apart, with no trailing blanks.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        assert_eq!(
            row.len(),
            header.len(),
            "a table row has one cell per column"
        );
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or("-".to_string(), |v| v.to_string())
}

pub fn non_empty_or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// A GLSN as `e3:1000`, `None` when absent.
pub fn glsn_text(glsn: Option<Glsn>) -> Option<String> {
    glsn.map(|g| g.to_string())
}

/// The serving node as `west/n2`; `None` when the server did not say.
pub fn served_by_text(served_by: &Option<ReplicaId>) -> Option<String> {
    served_by.as_ref().map(ReplicaId::to_string)
}

/// How a value is shown: as text when it is UTF-8, else base64 (standard
/// alphabet, padded), which is shorter than hex and decodes with `base64 -d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueEncoding {
    Utf8,
    Base64,
}

pub fn render_value(bytes: &[u8]) -> (String, ValueEncoding) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), ValueEncoding::Utf8),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            ValueEncoding::Base64,
        ),
    }
}

/// The value as one text field: base64 is marked so it cannot be mistaken
/// for a UTF-8 value that happens to look like base64.
pub fn value_text(bytes: &[u8]) -> String {
    match render_value(bytes) {
        (text, ValueEncoding::Utf8) => text,
        (text, ValueEncoding::Base64) => format!("base64:{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_utf8_else_base64() {
        assert_eq!(
            render_value("héllo".as_bytes()),
            ("héllo".to_string(), ValueEncoding::Utf8)
        );
        assert_eq!(
            render_value(&[0xff, 0x00, 0x01]),
            ("/wAB".to_string(), ValueEncoding::Base64)
        );
        assert_eq!(value_text(&[0xff, 0x00, 0x01]), "base64:/wAB");
        assert_eq!(value_text(b""), "");
    }
}
