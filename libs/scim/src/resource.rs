//! Validation and canonicalisation of an incoming resource: a POST or PUT
//! body, or the document a PATCH produced.
//!
//! The result is what services store: attribute names in their schema
//! spelling and order, values of the declared types, no read-only
//! attributes, no nulls, and the password set aside.

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ScimError;
use crate::json::{as_bool, insert_ci, is_primary, remove_ci};
use crate::path::{AttrPath, is_urn};
use crate::schema::{Attribute, AttributeType, COMMON_ATTRIBUTES, Container, Mutability, ResourceSchema, Schema};

/// A validated resource document and the password it carried, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The document to store: `schemas` first, then attributes in schema
    /// order, then extension objects. Never contains `id` or `meta`.
    pub doc: Map<String, Value>,
    /// The writeOnly `password`, taken out of the document so that it is
    /// never stored or returned as part of it.
    pub password: Option<String>,
}

/// Validates and canonicalises a resource body against `schema`.
///
/// - The body must be a JSON object (else 400 `invalidSyntax`).
/// - Attribute names match in any case and are rewritten to their schema
///   spelling, at the top level, in sub-attributes and inside extension
///   objects (whose URN key is canonicalised too). A key that is a
///   URN-qualified attribute (`urn:...:enterprise:2.0:User:department`) or a
///   dotted one (`name.givenName`) is placed where it belongs.
/// - Read-only attributes (`id`, `meta`, `groups`, `manager.displayName`)
///   are dropped (RFC 7644 §3.3); `password` moves to [`Normalized::password`].
/// - Types are checked (400 `invalidValue` naming the attribute); booleans
///   also accept "true"/"false" strings in any case (Entra ID sends "True");
///   a complex attribute with a `value` sub-attribute accepts a bare value
///   (`"manager": "<id>"` means `{"value": "<id>"}`), and a single-valued
///   complex attribute a list of at most one value (Entra ID's
///   `"manager": [{"$ref": null, "value": "<id>"}]`); a single value of a
///   multi-valued attribute is wrapped in an array.
/// - Nulls, empty arrays and empty objects are unassigned values and removed.
/// - Required attributes (`userName`) must be present and non-blank.
/// - Unknown attributes without a URN are dropped; objects under URNs the
///   resource type does not declare are kept whole, as given.
/// - At most one value of a multi-valued attribute may be primary.
/// - `schemas` is rebuilt from what the document contains: the core schema
///   first, then each extension present.
pub fn normalize(body: Value, schema: &ResourceSchema) -> Result<Normalized, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::invalid_syntax("a resource must be a JSON object"));
    };
    let mut sorted = Sorted::default();
    for (key, value) in body {
        sorted.add(schema, key, value)?;
    }

    let mut password = None;
    let mut core = Map::new();
    let core_defs = COMMON_ATTRIBUTES.iter().chain(schema.core.attributes);
    normalize_object(sorted.core, core_defs, "", &mut core, Some(&mut password))?;

    let mut schemas = vec![Value::from(schema.core.id)];
    let mut extensions = Vec::new();
    for (ext, raw) in sorted.extensions {
        let mut out = Map::new();
        normalize_object(raw, ext.attributes.iter(), &format!("{}:", ext.id), &mut out, None)?;
        if !out.is_empty() {
            schemas.push(Value::from(ext.id));
            extensions.push((ext.id.to_owned(), Value::Object(out)));
        }
    }
    for (urn, value) in sorted.unknown {
        schemas.push(Value::from(urn.as_str()));
        extensions.push((urn, value));
    }

    let mut doc = Map::new();
    doc.insert("schemas".to_owned(), Value::Array(schemas));
    doc.extend(core);
    doc.extend(extensions);
    Ok(Normalized { doc, password })
}

/// A body's entries sorted by where they belong, keys still as given.
#[derive(Default)]
struct Sorted {
    core: Map<String, Value>,
    extensions: Vec<(&'static Schema, Map<String, Value>)>,
    unknown: Map<String, Value>,
}

impl Sorted {
    fn add(&mut self, schema: &ResourceSchema, key: String, value: Value) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            return Ok(());
        }
        if !is_urn(&key) {
            if !key.contains('.') {
                insert_ci(&mut self.core, &key, value);
            } else if let Ok(path) = AttrPath::parse(&key) {
                place(&mut self.core, &path, value);
            }
            return Ok(());
        }
        match schema.container(Some(&key)) {
            Container::Core => self.merge(Container::Core, &key, value),
            Container::Extension(ext) => self.merge(Container::Extension(ext), &key, value),
            Container::Unknown(_) => {
                if let Ok(path) = AttrPath::parse(&key) {
                    let container = schema.container(path.urn.as_deref());
                    if let Some(map) = self.map(container) {
                        place(map, &path, value);
                        return Ok(());
                    }
                }
                if value.is_object() {
                    insert_ci(&mut self.unknown, &key, value);
                }
                Ok(())
            }
        }
    }

    /// Merges the object under a schema URN key into that schema's entries.
    fn merge(&mut self, container: Container<'_>, urn: &str, value: Value) -> Result<(), ScimError> {
        let entries = match value {
            Value::Null => return Ok(()),
            Value::Object(entries) => entries,
            _ => return Err(ScimError::invalid_value(format!("{urn} must be an object"))),
        };
        if let Some(map) = self.map(container) {
            for (k, v) in entries {
                insert_ci(map, &k, v);
            }
        }
        Ok(())
    }

    fn map(&mut self, container: Container<'_>) -> Option<&mut Map<String, Value>> {
        match container {
            Container::Core => Some(&mut self.core),
            Container::Extension(ext) => {
                let index = match self.extensions.iter().position(|(s, _)| s.id == ext.id) {
                    Some(index) => index,
                    None => {
                        self.extensions.push((ext, Map::new()));
                        self.extensions.len() - 1
                    }
                };
                self.extensions.get_mut(index).map(|(_, map)| map)
            }
            Container::Unknown(_) => None,
        }
    }
}

/// Puts `value` at `path` (attribute or attribute.sub) in `map`.
fn place(map: &mut Map<String, Value>, path: &AttrPath, value: Value) {
    match &path.sub_attr {
        None => insert_ci(map, &path.attr, value),
        Some(sub) => {
            let mut parent = match remove_ci(map, &path.attr) {
                Some(Value::Object(parent)) => parent,
                _ => Map::new(),
            };
            insert_ci(&mut parent, sub, value);
            map.insert(path.attr.clone(), Value::Object(parent));
        }
    }
}

/// Validates the entries of `raw` that `defs` define, in `defs` order, into
/// `out`. `prefix` makes error messages name the attribute as a client
/// would write its path. When `password` is given, the writeOnly
/// `password` attribute is taken out into it.
fn normalize_object<'d>(
    mut raw: Map<String, Value>,
    defs: impl Iterator<Item = &'d Attribute> + Clone,
    prefix: &str,
    out: &mut Map<String, Value>,
    mut password: Option<&mut Option<String>>,
) -> Result<(), ScimError> {
    for def in defs.clone() {
        let Some(value) = remove_ci(&mut raw, def.name) else {
            continue;
        };
        let label = format!("{prefix}{}", def.name);
        match def.mutability {
            Mutability::ReadOnly => continue,
            Mutability::WriteOnly => {
                if let Some(slot) = password.as_deref_mut().filter(|_| def.name == "password") {
                    *slot = password_value(value, &label)?;
                }
                continue;
            }
            Mutability::ReadWrite | Mutability::Immutable => {}
        }
        if let Some(v) = normalize_value(def, value, &label)? {
            out.insert(def.name.to_owned(), v);
        }
    }
    for def in defs.filter(|d| d.required && d.mutability != Mutability::ReadOnly) {
        let present = match out.get(def.name) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
            None => false,
        };
        if !present {
            return Err(ScimError::invalid_value(format!("{prefix}{} is required", def.name)));
        }
    }
    Ok(())
}

fn password_value(value: Value, label: &str) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(ScimError::invalid_value(format!("{label} must be a string"))),
    }
}

fn normalize_value(def: &Attribute, value: Value, label: &str) -> Result<Option<Value>, ScimError> {
    if !def.multi_valued {
        return match value {
            // Entra ID sends the enterprise `manager` as a list of one
            // (`[{"$ref": null, "value": "<id>"}]`), the form its provisioning
            // documentation shows; a list of one complex value is that value.
            Value::Array(items) if def.kind == AttributeType::Complex && items.len() <= 1 => {
                match items.into_iter().next() {
                    Some(item) => normalize_single(def, item, label),
                    None => Ok(None),
                }
            }
            Value::Array(_) => Err(ScimError::invalid_value(format!(
                "{label} is single-valued and cannot be an array"
            ))),
            value => normalize_single(def, value, label),
        };
    }
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = normalize_single(def, item, label)? {
            out.push(v);
        }
    }
    if out.iter().filter(|v| is_primary(v)).count() > 1 {
        return Err(ScimError::invalid_value(format!(
            "{label} has more than one primary value"
        )));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn normalize_single(def: &Attribute, value: Value, label: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |expected: &str| ScimError::invalid_value(format!("{label} must be {expected}"));
    match (def.kind, value) {
        (_, Value::Null) => Ok(None),
        (AttributeType::String | AttributeType::Reference | AttributeType::Binary, Value::String(s)) => {
            Ok(Some(Value::String(s)))
        }
        (AttributeType::String | AttributeType::Reference | AttributeType::Binary, _) => Err(wrong("a string")),
        (AttributeType::DateTime, Value::String(s)) if OffsetDateTime::parse(&s, &Rfc3339).is_ok() => {
            Ok(Some(Value::String(s)))
        }
        (AttributeType::DateTime, _) => Err(wrong("an RFC 3339 dateTime string")),
        (AttributeType::Boolean, v) => as_bool(&v)
            .map(|b| Some(Value::Bool(b)))
            .ok_or_else(|| wrong("a boolean")),
        (AttributeType::Integer, Value::Number(n)) => integer(&n)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(|| wrong("an integer")),
        (AttributeType::Integer, _) => Err(wrong("an integer")),
        (AttributeType::Decimal, Value::Number(n)) => Ok(Some(Value::Number(n))),
        (AttributeType::Decimal, _) => Err(wrong("a number")),
        (AttributeType::Complex, Value::Object(obj)) => {
            let mut out = Map::new();
            normalize_object(obj, def.sub_attributes.iter(), &format!("{label}."), &mut out, None)?;
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        (AttributeType::Complex, scalar @ (Value::String(_) | Value::Number(_) | Value::Bool(_)))
            if def.sub_attribute("value").is_some() =>
        {
            let mut wrapped = Map::new();
            wrapped.insert("value".to_owned(), scalar);
            normalize_single(def, Value::Object(wrapped), label)
        }
        (AttributeType::Complex, _) => Err(wrong("an object")),
    }
}

/// An integer-valued number, also from a whole float (what a protobuf
/// `Struct` makes of every number).
fn integer(n: &Number) -> Option<Number> {
    if n.is_i64() || n.is_u64() {
        return Some(n.clone());
    }
    let f = n.as_f64()?;
    let whole = f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64;
    whole.then(|| Number::from(f as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{ENTERPRISE_USER_SCHEMA_ID, GROUP_RESOURCE, USER_RESOURCE, USER_SCHEMA_ID};
    use serde_json::json;

    fn norm(body: Value) -> Result<Normalized, ScimError> {
        normalize(body, &USER_RESOURCE)
    }

    fn doc(body: Value) -> Value {
        Value::Object(norm(body).expect("valid").doc)
    }

    fn invalid(body: Value) -> ScimError {
        let err = norm(body).expect_err("invalid");
        assert_eq!(
            (err.status, err.scim_type),
            (400, Some(ScimType::InvalidValue)),
            "{err}"
        );
        err
    }

    #[test]
    fn a_manager_listed_as_one_element_is_that_element_and_an_empty_list_unassigns_it() {
        let body = json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: {"manager": [{"$ref": null, "value": "m1"}]}});
        assert_eq!(
            doc(body)[ENTERPRISE_USER_SCHEMA_ID],
            json!({"manager": {"value": "m1"}})
        );
        let body = json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: {"manager": ["m2"]}});
        assert_eq!(
            doc(body)[ENTERPRISE_USER_SCHEMA_ID],
            json!({"manager": {"value": "m2"}})
        );
        let body = json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: {"department": "D", "manager": []}});
        assert_eq!(doc(body)[ENTERPRISE_USER_SCHEMA_ID], json!({"department": "D"}));
    }

    #[test]
    fn okta_create_user_body_is_kept_in_schema_order() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "dade.murphy@example.com",
            "name": {"givenName": "Dade", "familyName": "Murphy"},
            "emails": [{"primary": true, "value": "dade.murphy@example.com", "type": "work"}],
            "displayName": "Dade Murphy",
            "locale": "en-US",
            "externalId": "00u1dhhb1fkIGP7RL1d8",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        });
        let n = norm(body).expect("valid");
        assert_eq!(n.password.as_deref(), Some("1mz050nq"));
        assert_eq!(
            Value::Object(n.doc),
            json!({
                "schemas": [USER_SCHEMA_ID],
                "externalId": "00u1dhhb1fkIGP7RL1d8",
                "userName": "dade.murphy@example.com",
                "name": {"familyName": "Murphy", "givenName": "Dade"},
                "displayName": "Dade Murphy",
                "locale": "en-US",
                "active": true,
                "emails": [{"value": "dade.murphy@example.com", "type": "work", "primary": true}]
            })
        );
    }

    #[test]
    fn entra_create_user_body_with_enterprise_extension_and_boolean_strings() {
        let body = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": "True",
            "emails": [{"primary": "true", "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "Department": "some department",
                "manager": "a9f1b6c2"
            }
        });
        let d = doc(body);
        assert_eq!(d["active"], json!(true));
        assert_eq!(d["emails"][0]["primary"], json!(true));
        assert!(d.get("meta").is_none() && d.get("roles").is_none());
        assert_eq!(
            d[ENTERPRISE_USER_SCHEMA_ID],
            json!({"department": "some department", "manager": {"value": "a9f1b6c2"}})
        );
        assert_eq!(d["schemas"], json!([USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID]));
    }

    #[test]
    fn non_object_body_is_invalid_syntax() {
        for body in [json!([]), json!("x"), json!(null), json!(1)] {
            let err = norm(body).expect_err("invalid");
            assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
        }
    }

    #[test]
    fn attribute_names_are_canonicalised_at_every_level() {
        let d = doc(json!({
            "USERNAME": "a",
            "Name": {"GIVENNAME": "A"},
            "EMAILS": [{"VALUE": "a@b.c", "Type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"DEPARTMENT": "x"}
        }));
        assert_eq!(
            d,
            json!({
                "schemas": [USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID],
                "userName": "a",
                "name": {"givenName": "A"},
                "emails": [{"value": "a@b.c", "type": "work"}],
                ENTERPRISE_USER_SCHEMA_ID: {"department": "x"}
            })
        );
    }

    #[test]
    fn read_only_attributes_are_dropped_silently() {
        let d = doc(json!({
            "id": "client-chosen",
            "meta": {"version": "W/\"3\""},
            "userName": "a",
            "groups": [{"value": "g1"}],
            ENTERPRISE_USER_SCHEMA_ID: {"manager": {"value": "m1", "displayName": "Boss"}}
        }));
        assert_eq!(
            d,
            json!({
                "schemas": [USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID],
                "userName": "a",
                ENTERPRISE_USER_SCHEMA_ID: {"manager": {"value": "m1"}}
            })
        );
    }

    #[test]
    fn password_is_taken_out_of_the_document() {
        let n = norm(json!({"userName": "a", "Password": "s3cret"})).expect("valid");
        assert_eq!(n.password.as_deref(), Some("s3cret"));
        assert!(n.doc.keys().all(|k| !k.eq_ignore_ascii_case("password")));
        assert_eq!(
            norm(json!({"userName": "a", "password": null})).map(|n| n.password),
            Ok(None)
        );
        invalid(json!({"userName": "a", "password": 5}));
    }

    #[test]
    fn user_name_is_required() {
        assert_eq!(invalid(json!({"displayName": "x"})).detail, "userName is required");
        invalid(json!({"userName": ""}));
        invalid(json!({"userName": "   "}));
        invalid(json!({"userName": null}));
        invalid(json!({"userName": 7}));
    }

    #[test]
    fn type_errors_name_the_attribute() {
        assert!(
            invalid(json!({"userName": "a", "displayName": 1}))
                .detail
                .contains("displayName")
        );
        assert!(
            invalid(json!({"userName": "a", "active": "yes"}))
                .detail
                .contains("active must be a boolean")
        );
        assert!(
            invalid(json!({"userName": "a", "name": "x"}))
                .detail
                .contains("name must be an object")
        );
        assert!(
            invalid(json!({"userName": "a", "name": {"givenName": 1}}))
                .detail
                .contains("name.givenName")
        );
        assert!(
            invalid(json!({"userName": "a", "emails": [{"value": true}]}))
                .detail
                .contains("emails.value")
        );
        assert!(
            invalid(json!({"userName": "a", "title": ["x"]}))
                .detail
                .contains("single-valued")
        );
        assert!(
            invalid(
                json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: {"manager": [{"value": "m1"}, {"value": "m2"}]}})
            )
            .detail
            .contains("single-valued")
        );
        let ext = invalid(json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: {"department": 5}}));
        assert!(
            ext.detail.contains(&format!("{ENTERPRISE_USER_SCHEMA_ID}:department")),
            "{}",
            ext.detail
        );
        invalid(json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: "x"}));
        invalid(json!({"userName": "a", "emails": [["nested"]]}));
    }

    #[test]
    fn boolean_strings_in_any_case_become_booleans() {
        assert_eq!(doc(json!({"userName": "a", "active": "False"}))["active"], json!(false));
        assert_eq!(doc(json!({"userName": "a", "active": "TRUE"}))["active"], json!(true));
    }

    #[test]
    fn single_value_of_multi_valued_attribute_is_wrapped() {
        let d = doc(json!({"userName": "a", "emails": {"value": "a@b.c"}, "phoneNumbers": "+1 555"}));
        assert_eq!(d["emails"], json!([{"value": "a@b.c"}]));
        assert_eq!(d["phoneNumbers"], json!([{"value": "+1 555"}]));
    }

    #[test]
    fn nulls_and_empty_values_are_removed() {
        let d = doc(json!({
            "userName": "a",
            "title": null,
            "emails": [],
            "name": {"givenName": null},
            "phoneNumbers": [null, {"value": null}],
            ENTERPRISE_USER_SCHEMA_ID: {"department": null}
        }));
        assert_eq!(d, json!({"schemas": [USER_SCHEMA_ID], "userName": "a"}));
    }

    #[test]
    fn unknown_attributes_are_dropped_and_unknown_extensions_kept_whole() {
        let d = doc(json!({
            "userName": "a",
            "shoeSize": 44,
            "name": {"nickname": "x", "givenName": "A"},
            "urn:example:custom:1.0:User": {"Badge": 17, "nested": {"x": null}},
            "urn:example:scalar": "dropped"
        }));
        assert_eq!(
            d,
            json!({
                "schemas": [USER_SCHEMA_ID, "urn:example:custom:1.0:User"],
                "userName": "a",
                "name": {"givenName": "A"},
                "urn:example:custom:1.0:User": {"Badge": 17, "nested": {"x": null}}
            })
        );
    }

    #[test]
    fn schemas_is_rebuilt_when_the_client_forgot_it() {
        let d = doc(json!({"userName": "a", ENTERPRISE_USER_SCHEMA_ID: {"costCenter": "4130"}}));
        assert_eq!(d["schemas"], json!([USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID]));
        let d = doc(json!({"schemas": ["urn:bogus", ENTERPRISE_USER_SCHEMA_ID], "userName": "a"}));
        assert_eq!(d["schemas"], json!([USER_SCHEMA_ID]));
    }

    #[test]
    fn several_primary_values_are_rejected() {
        let err = invalid(json!({
            "userName": "a",
            "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": "True"}]
        }));
        assert!(
            err.detail.contains("emails has more than one primary"),
            "{}",
            err.detail
        );
        doc(
            json!({"userName": "a", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": false}]}),
        );
    }

    #[test]
    fn urn_qualified_and_dotted_keys_are_placed_where_they_belong() {
        let d = doc(json!({
            "urn:ietf:params:scim:schemas:core:2.0:User:userName": "a",
            "name.familyName": "F",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "D",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "M",
            "urn:ietf:params:scim:schemas:core:2.0:User": {"title": "T"}
        }));
        assert_eq!(
            d,
            json!({
                "schemas": [USER_SCHEMA_ID, ENTERPRISE_USER_SCHEMA_ID],
                "userName": "a",
                "name": {"familyName": "F"},
                "title": "T",
                ENTERPRISE_USER_SCHEMA_ID: {"department": "D", "manager": {"value": "M"}}
            })
        );
    }

    #[test]
    fn external_id_is_kept() {
        assert_eq!(
            doc(json!({"userName": "a", "externalId": "E-1"}))["externalId"],
            json!("E-1")
        );
        invalid(json!({"userName": "a", "externalId": 1}));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        let once = norm(json!({
            "USERNAME": "a", "active": "true", "emails": {"value": "x@y", "primary": "True"},
            ENTERPRISE_USER_SCHEMA_ID: {"manager": "m"}, "urn:x:y": {"k": 1}
        }))
        .expect("valid");
        let twice = norm(Value::Object(once.doc.clone())).expect("valid");
        assert_eq!(twice.doc, once.doc);
    }

    #[test]
    fn group_requires_a_display_name_and_keeps_members() {
        let err = normalize(json!({"members": []}), &GROUP_RESOURCE).expect_err("invalid");
        assert_eq!(err.detail, "displayName is required");
        let n = normalize(
            json!({"displayName": "Admins", "members": [{"value": "u1", "display": "Ann", "type": "User"}]}),
            &GROUP_RESOURCE,
        )
        .expect("valid");
        assert_eq!(
            Value::Object(n.doc),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Admins",
                "members": [{"value": "u1", "type": "User"}]
            })
        );
    }

    fn typed(kind: AttributeType) -> Attribute {
        crate::schema::attr("x", kind, "")
    }

    #[test]
    fn date_time_and_number_types_are_checked() {
        let date_time = typed(AttributeType::DateTime);
        let stamp = json!("2020-01-01T00:00:00Z");
        assert_eq!(normalize_value(&date_time, stamp.clone(), "x"), Ok(Some(stamp)));
        assert!(normalize_value(&date_time, json!("yesterday"), "x").is_err());
        let integer = typed(AttributeType::Integer);
        assert_eq!(normalize_value(&integer, json!(5.0), "x"), Ok(Some(json!(5))));
        assert_eq!(normalize_value(&integer, json!(-7), "x"), Ok(Some(json!(-7))));
        assert!(normalize_value(&integer, json!(5.5), "x").is_err());
        assert!(normalize_value(&integer, json!(1e300), "x").is_err());
        assert!(normalize_value(&integer, json!("5"), "x").is_err());
        let decimal = typed(AttributeType::Decimal);
        assert_eq!(normalize_value(&decimal, json!(5.5), "x"), Ok(Some(json!(5.5))));
        assert!(normalize_value(&decimal, json!("5.5"), "x").is_err());
        let binary = typed(AttributeType::Binary);
        assert!(normalize_value(&binary, json!(1), "x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn normalize_never_panics(body in crate::test_support::json_value()) {
            let _ = norm(body);
        }

        #[test]
        fn normalizing_a_valid_document_twice_changes_nothing(body in crate::test_support::user_doc()) {
            let body = Value::Object(body);
            if let Ok(once) = norm(body) {
                let twice = norm(Value::Object(once.doc.clone()));
                proptest::prop_assert_eq!(twice.map(|n| n.doc), Ok(once.doc));
            }
        }
    }
}
