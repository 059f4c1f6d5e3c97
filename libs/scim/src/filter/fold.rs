//! The case-folded copy of a resource that storage filters against.
//!
//! A filter compares a string attribute case-insensitively unless the
//! attribute is caseExact. Databases fold case differently from each other
//! and from Rust (SQLite's `lower()` knows ASCII only, PostgreSQL's depends
//! on the database's locale), so instead of folding in SQL, a service stores
//! [`fold`]'s output next to the document and compares lower-cased filter
//! values with it: PostgreSQL, SQLite and [`super::matches`] then agree on
//! every string, whatever its script.

use serde_json::{Map, Value};

use crate::schema::{Attribute, AttributeType, ResourceSchema};

/// How a string that compares ignoring case is folded, wherever it is
/// compared: in the folded document, in a column of its own (a folded
/// `userName` or `displayName`), in a filter's value and in the in-memory
/// evaluator. If two of these folded differently, a filter would find a
/// resource in one database and not in the other.
pub fn fold_text(text: &str) -> String {
    text.to_lowercase()
}

/// `doc` (a stored, normalised resource) with every string value of a
/// non-caseExact attribute lower-cased by [`fold_text`], the function the
/// in-memory evaluator folds with. Case-exact values, keys
/// and objects under URNs the resource type does not declare are kept as
/// they are.
pub fn fold(doc: &Map<String, Value>, schema: &ResourceSchema) -> Map<String, Value> {
    doc.iter()
        .map(|(key, value)| {
            let folded = match (schema.extension(key), value) {
                (Some(extension), Value::Object(inner)) => {
                    Value::Object(fold_attributes(inner, |name| extension.attribute(name)))
                }
                _ => match schema.core_attribute(key) {
                    Some(def) => fold_value(value, def),
                    None => value.clone(),
                },
            };
            (key.clone(), folded)
        })
        .collect()
}

fn fold_attributes(
    map: &Map<String, Value>,
    definition: impl Fn(&str) -> Option<&'static Attribute>,
) -> Map<String, Value> {
    map.iter()
        .map(|(key, value)| {
            let folded = match definition(key) {
                Some(def) => fold_value(value, def),
                None => value.clone(),
            };
            (key.clone(), folded)
        })
        .collect()
}

fn fold_value(value: &Value, def: &'static Attribute) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|item| fold_value(item, def)).collect()),
        Value::Object(inner) if def.kind == AttributeType::Complex => {
            Value::Object(fold_attributes(inner, |name| def.sub_attribute(name)))
        }
        Value::String(s) if !def.case_exact && def.kind != AttributeType::Complex => Value::from(fold_text(s)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::USER_RESOURCE;

    #[test]
    fn folds_exactly_the_strings_of_non_case_exact_attributes() {
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "externalId": "Ext-ÉTÉ",
            "userName": "Bjensen@Example.COM",
            "name": {"familyName": "ÉTIENNE", "givenName": "Straße"},
            "active": true,
            "emails": [{"value": "B@X.ORG", "type": "Work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "R&D",
                "manager": {"value": "Mgr-1", "$ref": "../Users/Mgr-1"}
            },
            "urn:example:custom:1.0": {"Shoe": "XL"}
        });
        let folded = Value::Object(fold(doc.as_object().expect("object"), &USER_RESOURCE));
        assert_eq!(
            folded,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "externalId": "Ext-ÉTÉ",
                "userName": "bjensen@example.com",
                "name": {"familyName": "étienne", "givenName": "straße"},
                "active": true,
                "emails": [{"value": "b@x.org", "type": "work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "department": "r&d",
                    "manager": {"value": "mgr-1", "$ref": "../users/mgr-1"}
                },
                "urn:example:custom:1.0": {"Shoe": "XL"}
            })
        );
    }
}
