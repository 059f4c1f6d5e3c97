//! `google.protobuf.Struct`/`Value` <-> `serde_json`.
//!
//! SCIM resources travel over gRPC as `Struct`s, so callers in any language
//! get a native map instead of a JSON string. Protobuf has only one number
//! type (double); integral numbers come back as JSON integers.

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

/// The largest integer a double holds exactly (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// A `Struct` holding the same fields as `map`.
pub fn to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(key, value)| (key.clone(), to_value(value))).collect(),
    }
}

/// A protobuf `Value` for a JSON value.
pub fn to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The JSON object a `Struct` holds. Protobuf maps are unordered, so keys
/// come back sorted.
pub fn from_struct(s: prost_types::Struct) -> Map<String, Value> {
    let mut fields: Vec<_> = s.fields.into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
        .into_iter()
        .map(|(key, value)| (key, from_value(value)))
        .collect()
}

/// The JSON value a protobuf `Value` holds; an unset kind is `null`.
pub fn from_value(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => Value::Array(list.values.into_iter().map(from_value).collect()),
        Some(Kind::StructValue(s)) => Value::Object(from_struct(s)),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        // Integral and exactly representable: the cast is lossless.
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_scim_user_survives_the_round_trip() {
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "ada@example.com"}],
            "name": {"familyName": "Lovelace", "givenName": "Ada"},
            "userName": "ada",
            "x-count": 3,
            "x-ratio": 0.5,
            "x-null": null
        });
        let Value::Object(map) = user.clone() else {
            unreachable!()
        };
        assert_eq!(Value::Object(from_struct(to_struct(&map))), user);
    }

    #[test]
    fn integral_doubles_become_integers_and_huge_ones_stay_floats() {
        assert_eq!(number(42.0), json!(42));
        assert_eq!(number(-7.0), json!(-7));
        assert_eq!(number(1e300), json!(1e300));
        assert_eq!(number(f64::NAN), Value::Null);
    }
}
