//! Rendering a stored resource for the wire (`id` and `meta` added), and
//! the ETags (`W/"<version>"`) that carry its version in HTTP headers.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::ScimError;

/// What the service provider knows about a resource beyond its document.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The resource type name, e.g. `User`.
    pub resource_type: &'static str,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    /// The version, incremented on every change; rendered as an ETag.
    pub version: i64,
    /// The resource's absolute URL.
    pub location: String,
}

/// The resource as served: `schemas`, `id`, the document's attributes, and
/// `meta` last, with times in RFC 3339 UTC (`Z`) and `meta.version` the
/// resource's ETag. Any `id` or `meta` in the document is replaced.
pub fn render(doc: &Map<String, Value>, id: &str, meta: &Meta) -> Value {
    let mut out = Map::new();
    if let Some(schemas) = doc.get("schemas") {
        out.insert("schemas".to_owned(), schemas.clone());
    }
    out.insert("id".to_owned(), Value::from(id));
    for (key, value) in doc {
        if !matches!(key.as_str(), "schemas" | "id" | "meta") {
            out.insert(key.clone(), value.clone());
        }
    }
    let mut rendered_meta = Map::new();
    rendered_meta.insert("resourceType".to_owned(), Value::from(meta.resource_type));
    rendered_meta.insert("created".to_owned(), Value::from(timestamp(meta.created)));
    rendered_meta.insert("lastModified".to_owned(), Value::from(timestamp(meta.last_modified)));
    rendered_meta.insert("location".to_owned(), Value::from(meta.location.as_str()));
    rendered_meta.insert("version".to_owned(), Value::from(etag(meta.version)));
    out.insert("meta".to_owned(), Value::Object(rendered_meta));
    Value::Object(out)
}

/// An instant in RFC 3339, UTC, with a `Z`. Years RFC 3339 cannot write
/// (before 0 or after 9999) fall back to the `time` crate's own format
/// rather than failing a response.
fn timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

/// The weak ETag of a version: `W/"<version>"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// 412: a write named `expected`, but the `resource` (a "user", a "group")
/// has moved on to `actual`. Both are written as ETags, as the client sent
/// the one it had.
pub fn stale_version(resource: &str, expected: i64, actual: i64) -> ScimError {
    ScimError::precondition_failed(format!(
        "version {} is stale: the {resource} is at {}",
        etag(expected),
        etag(actual)
    ))
}

/// What an `If-Match` or `If-None-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    /// `*`: any current version.
    Any,
    /// One of these versions.
    Versions(Vec<i64>),
}

/// Parses an `If-Match` / `If-None-Match` value: `*`, or a comma-separated
/// list of `W/"n"` or `"n"` tags. `None` when any tag is not one of ours
/// (not a quoted integer), since such a tag can never match.
pub fn parse_etag_header(v: &str) -> Option<EtagMatch> {
    let v = v.trim();
    if v == "*" {
        return Some(EtagMatch::Any);
    }
    let versions = v
        .split(',')
        .map(|tag| {
            let tag = tag.trim();
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            opaque.strip_prefix('"')?.strip_suffix('"')?.parse::<i64>().ok()
        })
        .collect::<Option<Vec<i64>>>()?;
    Some(EtagMatch::Versions(versions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn meta() -> Meta {
        Meta {
            resource_type: "User",
            created: datetime!(2010-01-23 04:56:22 UTC),
            last_modified: datetime!(2011-05-13 06:42:34.5 +02:00),
            version: 3,
            location: "https://example.com/scim/v2/d1/Users/2819c223".to_owned(),
        }
    }

    #[test]
    fn render_puts_schemas_and_id_first_and_meta_last() {
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen",
            "active": true
        });
        let Value::Object(doc) = doc else { panic!("object") };
        let rendered = render(&doc, "2819c223", &meta());
        assert_eq!(
            rendered,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "2819c223",
                "userName": "bjensen",
                "active": true,
                "meta": {
                    "resourceType": "User",
                    "created": "2010-01-23T04:56:22Z",
                    "lastModified": "2011-05-13T04:42:34.5Z",
                    "location": "https://example.com/scim/v2/d1/Users/2819c223",
                    "version": "W/\"3\""
                }
            })
        );
        let keys: Vec<&str> = rendered
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["schemas", "id", "userName", "active", "meta"]);
    }

    #[test]
    fn render_replaces_stale_id_and_meta_in_the_document() {
        let Value::Object(doc) = json!({"id": "old", "meta": {"version": "W/\"1\""}, "userName": "a"}) else {
            panic!("object")
        };
        let rendered = render(&doc, "new", &meta());
        assert_eq!(rendered["id"], "new");
        assert_eq!(rendered["meta"]["version"], "W/\"3\"");
    }

    #[test]
    fn a_stale_version_is_412_naming_both_etags() {
        let err = stale_version("user", 3, 5);
        assert_eq!(err.status, 412);
        assert_eq!(err.detail, "version W/\"3\" is stale: the user is at W/\"5\"");
    }

    #[test]
    fn etag_is_weak_and_quoted() {
        assert_eq!(etag(42), "W/\"42\"");
        assert_eq!(etag(-1), "W/\"-1\"");
    }

    #[test]
    fn if_match_star_matches_anything() {
        assert_eq!(parse_etag_header("*"), Some(EtagMatch::Any));
        assert_eq!(parse_etag_header("  * "), Some(EtagMatch::Any));
    }

    #[test]
    fn if_match_lists_weak_and_strong_tags() {
        assert_eq!(parse_etag_header("W/\"3\""), Some(EtagMatch::Versions(vec![3])));
        assert_eq!(parse_etag_header("\"3\""), Some(EtagMatch::Versions(vec![3])));
        assert_eq!(
            parse_etag_header("W/\"1\", \"2\" ,W/\"30\""),
            Some(EtagMatch::Versions(vec![1, 2, 30]))
        );
    }

    #[test]
    fn garbage_etags_are_not_parsed() {
        for v in [
            "",
            "3",
            "W/3",
            "\"abc\"",
            "W/\"3",
            "\"3\",",
            "**",
            "W/\"99999999999999999999\"",
        ] {
            assert_eq!(parse_etag_header(v), None, "{v}");
        }
    }

    #[test]
    fn etag_round_trips_through_the_header_parser() {
        assert_eq!(parse_etag_header(&etag(7)), Some(EtagMatch::Versions(vec![7])));
    }
}
