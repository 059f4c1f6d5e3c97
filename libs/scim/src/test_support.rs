//! Generators shared by the property tests: JSON built from SCIM-looking
//! names and values, so that random documents reach deep into the code.

use proptest::prelude::*;
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "userName",
    "USERNAME",
    "displayName",
    "active",
    "name",
    "givenName",
    "familyName",
    "emails",
    "phoneNumbers",
    "addresses",
    "value",
    "type",
    "primary",
    "display",
    "groups",
    "id",
    "meta",
    "password",
    "externalId",
    "schemas",
    "manager",
    "department",
    "$ref",
    "name.givenName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:example:ext:1.0:User",
    "urn:",
    "x",
];

const STRINGS: &[&str] = &[
    "",
    "work",
    "home",
    "True",
    "false",
    "a@b.c",
    "2020-01-01T00:00:00Z",
    "x",
];

/// A key that is usually a SCIM attribute name.
pub(crate) fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z:.$\\[\\] \"]{0,12}",
    ]
}

/// A JSON value built mostly from SCIM-looking pieces.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A JSON object that has a userName, so that validation gets past the
/// required-attribute check.
pub(crate) fn user_doc() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((key(), json_value()), 0..8).prop_map(|entries| {
        let mut doc: Map<String, Value> = entries.into_iter().collect();
        doc.insert("userName".to_owned(), Value::from("someone"));
        doc
    })
}
