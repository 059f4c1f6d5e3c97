//! SCIM documents as the JSON text that the `*_json` fields carry.

use scim::ScimError;
use serde_json::{Map, Value};

/// A document as JSON text.
pub fn to_json(doc: &Map<String, Value>) -> String {
    // A map with string keys and serde_json numbers (never NaN) always
    // serialises.
    serde_json::to_string(doc).expect("a JSON object serialises")
}

/// The JSON object a request's `*_json` field carries. Empty text (a
/// caller who left the field out) is an empty object, which fails
/// validation like any document without its required attributes.
pub fn parse(text: &str) -> Result<Map<String, Value>, ScimError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(doc)) => Ok(doc),
        Ok(_) => Err(ScimError::invalid_syntax("a SCIM resource must be a JSON object")),
        Err(err) => Err(ScimError::invalid_syntax(format!(
            "the resource is not valid JSON: {err}"
        ))),
    }
}

/// [`parse`], refusing text longer than `limits.max_document_bytes` (400
/// `invalidValue`; the gateway answers 413 before a body gets here) and
/// JSON nested deeper than `limits.max_json_depth` (400 `invalidSyntax`).
pub fn parse_within(text: &str, limits: &scim::Limits) -> Result<Map<String, Value>, ScimError> {
    if text.len() > limits.max_document_bytes {
        return Err(ScimError::invalid_value(format!(
            "the resource is {} bytes long; the limit is {}",
            text.len(),
            limits.max_document_bytes
        )));
    }
    let doc = parse(text)?;
    limits.check_depth_of(&doc)?;
    Ok(doc)
}

/// The document a service answered with. A service writes only documents
/// it validated, so one that does not parse is a fault of ours: logged,
/// and an opaque 500 to the client.
pub fn from_service(text: &str) -> Result<Map<String, Value>, ScimError> {
    parse(text).map_err(|err| {
        tracing::error!(error = %err, "a service answered with a document that does not parse");
        ScimError::internal()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn integers_beyond_a_double_survive_the_trip() {
        let doc = json!({"userName": "ada", "x-big": 9_007_199_254_740_993_u64, "x-ratio": 0.5});
        let Value::Object(map) = doc.clone() else {
            unreachable!()
        };
        assert_eq!(Value::Object(parse(&to_json(&map)).expect("parses")), doc);
    }

    #[test]
    fn only_objects_are_documents() {
        assert_eq!(parse("[1]").map_err(|e| e.status), Err(400));
        assert_eq!(parse("{\"a\":").map_err(|e| e.status), Err(400));
        assert_eq!(parse("").expect("empty is an empty object"), Map::new());
    }

    #[test]
    fn a_broken_answer_from_a_service_is_internal() {
        assert_eq!(from_service("nope"), Err(ScimError::internal()));
    }
}
