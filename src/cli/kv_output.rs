//! What the key-value commands print: a write's result, an item, a read's
//! result, as text for people and JSON (`Serialize`) for scripts. Pure.

use serde::Serialize;

use crate::cli::render::{ValueEncoding, glsn_text, render_value, served_by_text};
use crate::client::results::{Item, Read, Written};

/// The result of `put` or `delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutput {
    pub container: String,
    pub key: String,
    pub etag: String,
    pub glsn: Option<String>,
    pub session_token: String,
    pub region: Option<String>,
    pub node_id: Option<u64>,
    /// `region/node`, as the text output shows it.
    pub served_by: Option<String>,
}

impl WriteOutput {
    pub fn new(container: &str, key: &str, r: &Written) -> WriteOutput {
        WriteOutput {
            container: container.to_string(),
            key: key.to_string(),
            etag: r.etag.clone(),
            glsn: glsn_text(r.glsn),
            session_token: r.session_token.clone(),
            region: r.served_by.as_ref().map(|s| s.region.to_string()),
            node_id: r.served_by.as_ref().map(|s| s.node.0),
            served_by: served_by_text(&r.served_by),
        }
    }

    pub fn to_text(&self) -> String {
        let etag = if self.etag.is_empty() {
            "-"
        } else {
            &self.etag
        };
        format!(
            "etag: {etag}\nglsn: {}\nsession_token: {}\nserved_by: {}",
            self.glsn.as_deref().unwrap_or("-"),
            self.session_token,
            self.served_by.as_deref().unwrap_or("-")
        )
    }
}

/// An item as `get` and `scan` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemOutput {
    pub key: String,
    pub value: String,
    pub value_encoding: ValueEncoding,
    pub etag: String,
    pub glsn: Option<String>,
    pub ts: u64,
    pub origin_region: String,
}

impl ItemOutput {
    pub fn new(item: &Item) -> ItemOutput {
        let (value, value_encoding) = render_value(&item.value);
        ItemOutput {
            key: item.key.clone(),
            value,
            value_encoding,
            etag: item.etag.clone(),
            glsn: glsn_text(item.glsn),
            ts: item.ts,
            origin_region: item.origin_region.to_string(),
        }
    }
}

/// The result of `get`; the item's fields are absent when not found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetOutput {
    pub found: bool,
    pub container: String,
    pub key: String,
    /// Nested rather than flattened: the item carries its own `key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemOutput>,
    pub read_glsn: Option<String>,
    pub session_token: String,
    pub region: Option<String>,
    pub node_id: Option<u64>,
    /// `region/node`, as the text output shows it.
    pub served_by: Option<String>,
}

impl GetOutput {
    pub fn new(container: &str, key: &str, r: &Read) -> GetOutput {
        GetOutput {
            found: r.item.is_some(),
            container: container.to_string(),
            key: key.to_string(),
            item: r.item.as_ref().map(ItemOutput::new),
            read_glsn: glsn_text(r.read_glsn),
            session_token: r.session_token.clone(),
            region: r.served_by.as_ref().map(|s| s.region.to_string()),
            node_id: r.served_by.as_ref().map(|s| s.node.0),
            served_by: served_by_text(&r.served_by),
        }
    }

    pub fn to_text(&self) -> String {
        let Some(item) = &self.item else {
            return "not found".to_string();
        };
        let value_line = match item.value_encoding {
            ValueEncoding::Utf8 => format!("value: {}", item.value),
            ValueEncoding::Base64 => format!("value (not UTF-8, shown as base64): {}", item.value),
        };
        format!(
            "{value_line}\netag: {}\nglsn: {}\nsession_token: {}\nserved_by: {}",
            item.etag,
            item.glsn.as_deref().unwrap_or("-"),
            self.session_token,
            self.served_by.as_deref().unwrap_or("-")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{glsn, item, served_by};
    use crate::wire::pb::v1 as pb;

    #[test]
    fn write_output_names_server_etag_glsn_and_token() {
        let response = pb::WriteResponse {
            etag: "t9".to_string(),
            glsn: glsn(1, 42),
            session_token: "e1:42".to_string(),
            served_by: served_by(),
        };
        let view = WriteOutput::new("c", "k", &response.into());
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["etag"], "t9");
        assert_eq!(json["glsn"], "e1:42");
        assert_eq!(json["session_token"], "e1:42");
        assert_eq!(json["region"], "west");
        assert_eq!(json["node_id"], 2);
        assert_eq!(json["served_by"], "west/n2");
        assert!(view.to_text().contains("served_by: west/n2"));
        let unknown = WriteOutput::new("c", "k", &pb::WriteResponse::default().into());
        assert!(unknown.to_text().ends_with("served_by: -"));
    }

    #[test]
    fn get_output_when_found_and_when_not() {
        let mut response = pb::GetResponse {
            item: Some(item("k", &[0xff])),
            read_glsn: glsn(1, 50),
            session_token: "e1:50".to_string(),
            served_by: served_by(),
        };
        let found = GetOutput::new("c", "k", &response.clone().into());
        let json = serde_json::to_value(&found).unwrap();
        assert_eq!(json["found"], true);
        assert_eq!(json["item"]["value"], "/w==");
        assert_eq!(json["item"]["value_encoding"], "base64");
        assert_eq!(json["item"]["glsn"], "e1:42");
        assert_eq!(json["read_glsn"], "e1:50");
        assert!(
            found
                .to_text()
                .starts_with("value (not UTF-8, shown as base64): /w==")
        );

        response.item = None;
        let missing = GetOutput::new("c", "k", &response.clone().into());
        let json = serde_json::to_value(&missing).unwrap();
        assert_eq!(json["found"], false);
        assert!(json.get("item").is_none(), "{json}");
        assert_eq!(json["region"], "west");
        assert_eq!(json["served_by"], "west/n2");
        assert_eq!(json["session_token"], "e1:50");
        assert_eq!(missing.to_text(), "not found");
    }
}
