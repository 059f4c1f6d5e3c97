//! Attribute mappings: a directory's profile fields, each a key of the
//! platform's profile, a type and SCIM paths to read it from (the first
//! that has a value of the type wins). Checked when saved, evaluated
//! against a user's SCIM document when read; pure, no I/O.

use idmesh_proto::v1 as pb;
use scim::ScimError;
use scim::schema::{AttributeType, ENTERPRISE_USER_SCHEMA_ID, USER_RESOURCE};
use scim::select::Selector;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most fields one directory's profile may have.
pub const MAX_FIELDS: usize = 100;
/// Most source paths one field may try.
pub const MAX_SOURCES: usize = 8;
/// Longest field key.
const MAX_KEY_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Boolean,
    Integer,
    Timestamp,
    StringList,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
            FieldType::Integer => "integer",
            FieldType::Timestamp => "timestamp",
            FieldType::StringList => "string_list",
        }
    }

    pub fn parse(text: &str) -> Option<FieldType> {
        [
            FieldType::String,
            FieldType::Boolean,
            FieldType::Integer,
            FieldType::Timestamp,
            FieldType::StringList,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    fn from_proto(kind: i32) -> Option<FieldType> {
        match pb::ProfileFieldType::try_from(kind).ok()? {
            pb::ProfileFieldType::String => Some(FieldType::String),
            pb::ProfileFieldType::Boolean => Some(FieldType::Boolean),
            pb::ProfileFieldType::Integer => Some(FieldType::Integer),
            pb::ProfileFieldType::Timestamp => Some(FieldType::Timestamp),
            pb::ProfileFieldType::StringList => Some(FieldType::StringList),
            pb::ProfileFieldType::Unspecified => None,
        }
    }

    fn to_proto(self) -> pb::ProfileFieldType {
        match self {
            FieldType::String => pb::ProfileFieldType::String,
            FieldType::Boolean => pb::ProfileFieldType::Boolean,
            FieldType::Integer => pb::ProfileFieldType::Integer,
            FieldType::Timestamp => pb::ProfileFieldType::Timestamp,
            FieldType::StringList => pb::ProfileFieldType::StringList,
        }
    }

    /// Whether a declared attribute of `kind` can give this type.
    fn accepts(self, kind: AttributeType) -> bool {
        match self {
            FieldType::String => matches!(
                kind,
                AttributeType::String | AttributeType::Reference | AttributeType::Binary | AttributeType::DateTime
            ),
            FieldType::StringList => matches!(kind, AttributeType::String | AttributeType::Reference),
            FieldType::Boolean => kind == AttributeType::Boolean,
            FieldType::Integer => kind == AttributeType::Integer,
            FieldType::Timestamp => kind == AttributeType::DateTime,
        }
    }

    /// The field's value from what its source selected, if the values have
    /// this type (a string list takes every string value).
    fn convert(self, values: &[&Value]) -> Option<Value> {
        match self {
            FieldType::StringList => {
                let list: Vec<Value> = values.iter().filter(|v| v.is_string()).map(|v| (*v).clone()).collect();
                (!list.is_empty()).then_some(Value::Array(list))
            }
            _ => values.iter().find_map(|value| self.convert_one(value)),
        }
    }

    fn convert_one(self, value: &Value) -> Option<Value> {
        match (self, value) {
            (FieldType::String, Value::String(_)) => Some(value.clone()),
            (FieldType::Boolean, Value::Bool(_)) => Some(value.clone()),
            // Entra ID sends booleans as strings, in any case.
            (FieldType::Boolean, Value::String(text)) => match text.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            (FieldType::Integer, Value::Number(number)) => number.as_i64().map(Value::from),
            (FieldType::Integer, Value::String(text)) => text.trim().parse::<i64>().ok().map(Value::from),
            (FieldType::Timestamp, Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339)
                .ok()
                .and_then(|at| at.format(&Rfc3339).ok())
                .map(Value::String),
            _ => None,
        }
    }
}

/// One profile field, its sources parsed. A scalar field read from a
/// multi-valued attribute without a filter (`emails.value`) takes the
/// primary value, else the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub kind: FieldType,
    pub sources: Vec<Selector>,
}

impl Field {
    /// A field with its key, type and sources checked: each source must be
    /// a path of the user schema (or of a custom extension) whose values
    /// can have the field's type.
    pub fn new(key: &str, kind: FieldType, sources: &[String]) -> Result<Field, ScimError> {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !key_ok {
            return Err(ScimError::invalid_value(format!(
                "profile key {key:?}: 1 to {MAX_KEY_LEN} of A-Z, a-z, 0-9, '_', '-' and '.'"
            )));
        }
        if sources.is_empty() || sources.len() > MAX_SOURCES {
            return Err(ScimError::invalid_value(format!(
                "profile key {key:?}: 1 to {MAX_SOURCES} sources, not {}",
                sources.len()
            )));
        }
        let sources = sources
            .iter()
            .map(|text| source(key, kind, text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Field {
            key: key.to_owned(),
            kind,
            sources,
        })
    }

    fn from_proto(field: pb::ProfileField) -> Result<Field, ScimError> {
        let kind = FieldType::from_proto(field.r#type).ok_or_else(|| {
            ScimError::invalid_value(format!(
                "profile key {:?}: the type must be STRING, BOOLEAN, INTEGER, TIMESTAMP or STRING_LIST",
                field.key
            ))
        })?;
        Field::new(&field.key, kind, &field.sources)
    }

    pub fn to_proto(&self) -> pb::ProfileField {
        pb::ProfileField {
            key: self.key.clone(),
            r#type: self.kind.to_proto().into(),
            sources: self.source_texts(),
        }
    }

    pub fn source_texts(&self) -> Vec<String> {
        self.sources.iter().map(ToString::to_string).collect()
    }

    /// The field's value in `doc`: from the first source that has one.
    fn value(&self, doc: &Map<String, Value>) -> Option<Value> {
        self.sources
            .iter()
            .find_map(|source| self.kind.convert(&source.select(doc, &USER_RESOURCE)))
    }
}

fn source(key: &str, kind: FieldType, text: &str) -> Result<Selector, ScimError> {
    let selector = Selector::parse(text, &USER_RESOURCE)
        .map_err(|err| ScimError::invalid_path(format!("profile key {key:?}: {}", err.detail)))?;
    let Some(leaf) = selector.leaf() else {
        // A custom extension's attribute: its type is known only from the
        // values; one that does not convert counts as missing.
        return Ok(selector);
    };
    if leaf.kind == AttributeType::Complex {
        return Err(ScimError::invalid_value(format!(
            "profile key {key:?}: {text:?} is a complex attribute; name one of its sub-attributes, e.g. {text}.value"
        )));
    }
    if !kind.accepts(leaf.kind) {
        return Err(ScimError::invalid_value(format!(
            "profile key {key:?} is a {} but {text:?} is a {}",
            kind.as_str(),
            leaf.kind.as_str()
        )));
    }
    Ok(selector)
}

/// A directory's profile fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeMapping {
    pub fields: Vec<Field>,
}

impl AttributeMapping {
    /// The mapping a request asks for: the preset's fields, then the
    /// request's, which replace preset fields of the same key. A key given
    /// twice in the request is refused.
    pub fn from_request(preset: i32, fields: Vec<pb::ProfileField>) -> Result<AttributeMapping, ScimError> {
        let mut mapping = match pb::AttributePreset::try_from(preset) {
            Ok(pb::AttributePreset::Unspecified) => AttributeMapping::default(),
            Ok(pb::AttributePreset::Okta) => okta(),
            Ok(pb::AttributePreset::EntraId) => entra_id(),
            Err(_) => return Err(ScimError::invalid_value(format!("unknown attribute preset {preset}"))),
        };
        let mut given: Vec<String> = Vec::with_capacity(fields.len());
        for field in fields {
            let field = Field::from_proto(field)?;
            if given.contains(&field.key) {
                return Err(ScimError::invalid_value(format!(
                    "profile key {:?} is given twice",
                    field.key
                )));
            }
            given.push(field.key.clone());
            match mapping.fields.iter_mut().find(|f| f.key == field.key) {
                Some(existing) => *existing = field,
                None => mapping.fields.push(field),
            }
        }
        if mapping.fields.len() > MAX_FIELDS {
            return Err(ScimError::invalid_value(format!(
                "at most {MAX_FIELDS} profile fields, not {}",
                mapping.fields.len()
            )));
        }
        Ok(mapping)
    }

    pub fn to_proto(&self, directory_id: &str) -> pb::AttributeMapping {
        pb::AttributeMapping {
            directory_id: directory_id.to_owned(),
            fields: self.fields.iter().map(Field::to_proto).collect(),
        }
    }

    /// The profile of a user whose stored SCIM document is `doc`.
    pub fn profile(&self, doc: &Map<String, Value>) -> Map<String, Value> {
        self.fields
            .iter()
            .filter_map(|field| field.value(doc).map(|value| (field.key.clone(), value)))
            .collect()
    }
}

fn preset(fields: &[(&str, FieldType, &[&str])]) -> AttributeMapping {
    let fields = fields
        .iter()
        .map(|(key, kind, sources)| {
            let sources: Vec<String> = sources
                .iter()
                .map(|s| s.replace("{enterprise}", ENTERPRISE_USER_SCHEMA_ID))
                .collect();
            Field::new(key, *kind, &sources)
        })
        .collect::<Result<Vec<_>, _>>();
    // A preset is a constant; its_presets_are_valid below checks each.
    AttributeMapping {
        fields: fields.unwrap_or_default(),
    }
}

/// Okta's default SCIM user attributes (its "SCIM 2.0 Test App" profile):
/// the primary email, the mobile phone, and the enterprise fields.
fn okta() -> AttributeMapping {
    use FieldType::*;
    preset(&[
        ("user_name", String, &["userName"]),
        (
            "email",
            String,
            &[
                "emails[primary eq true].value",
                "emails[type eq \"work\"].value",
                "emails.value",
            ],
        ),
        ("given_name", String, &["name.givenName"]),
        ("family_name", String, &["name.familyName"]),
        ("display_name", String, &["displayName"]),
        ("mobile_phone", String, &["phoneNumbers[type eq \"mobile\"].value"]),
        ("title", String, &["title"]),
        ("locale", String, &["locale"]),
        ("department", String, &["{enterprise}:department"]),
        ("employee_number", String, &["{enterprise}:employeeNumber"]),
        ("manager_id", String, &["{enterprise}:manager.value"]),
        ("active", Boolean, &["active"]),
        ("roles", StringList, &["roles.value"]),
    ])
}

/// Microsoft Entra ID's default attribute mappings for SCIM users: the work
/// email (mail), the phones by type, the enterprise fields and externalId
/// (mailNickname).
fn entra_id() -> AttributeMapping {
    use FieldType::*;
    preset(&[
        ("user_name", String, &["userName"]),
        (
            "email",
            String,
            &["emails[type eq \"work\"].value", "emails[primary eq true].value"],
        ),
        ("given_name", String, &["name.givenName"]),
        ("family_name", String, &["name.familyName"]),
        ("display_name", String, &["displayName"]),
        ("mobile_phone", String, &["phoneNumbers[type eq \"mobile\"].value"]),
        ("business_phone", String, &["phoneNumbers[type eq \"work\"].value"]),
        ("title", String, &["title"]),
        ("country", String, &["addresses[type eq \"work\"].country"]),
        ("department", String, &["{enterprise}:department"]),
        ("employee_number", String, &["{enterprise}:employeeNumber"]),
        ("manager_id", String, &["{enterprise}:manager.value"]),
        ("external_id", String, &["externalId"]),
        ("active", Boolean, &["active"]),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(key: &str, kind: FieldType, sources: &[&str]) -> Result<Field, ScimError> {
        let sources: Vec<String> = sources.iter().map(|s| (*s).to_owned()).collect();
        Field::new(key, kind, &sources)
    }

    #[test]
    fn its_presets_are_valid() {
        assert_eq!(okta().fields.len(), 13);
        assert_eq!(entra_id().fields.len(), 14);
    }

    #[test]
    fn a_wrong_type_is_refused_with_the_reason() {
        let err = field("age", FieldType::Integer, &["userName"]).expect_err("userName is a string");
        assert!(
            err.detail.contains("is a integer but \"userName\" is a string"),
            "{err:?}"
        );
        let err = field("email", FieldType::String, &["emails"]).expect_err("complex");
        assert!(err.detail.contains("sub-attributes"), "{err:?}");
        let err = field("ok", FieldType::Boolean, &["emails[type eq ]"]).expect_err("bad filter");
        assert_eq!(err.scim_type, Some(scim::ScimType::InvalidPath));
        assert!(field("bad key", FieldType::String, &["userName"]).is_err());
        assert!(field("none", FieldType::String, &[]).is_err());
    }

    #[test]
    fn the_first_source_with_a_value_of_the_type_wins() {
        let mobile = field(
            "phone",
            FieldType::String,
            &[
                "phoneNumbers[type eq \"mobile\"].value",
                "phoneNumbers[type eq \"work\"].value",
            ],
        )
        .expect("valid");
        let flag = field("vip", FieldType::Boolean, &["urn:example:1.0:User:vip", "active"]).expect("valid");
        let mapping = AttributeMapping {
            fields: vec![mobile, flag],
        };
        let doc = json!({"phoneNumbers": [{"type": "work", "value": "1"}], "active": true, "urn:example:1.0:User": {"vip": "yes"}});
        let profile = mapping.profile(doc.as_object().expect("object"));
        assert_eq!(Value::Object(profile), json!({"phone": "1", "vip": true}));
    }

    #[test]
    fn values_convert_to_their_types() {
        let doc = json!({"urn:x:1:User": {"n": "42", "at": "2026-01-02T03:04:05+01:00", "flag": "True", "tags": ["a", 1, "b"]}});
        let doc = doc.as_object().expect("object");
        let read = |kind, path: &str| field("k", kind, &[path]).expect("valid").value(doc);
        assert_eq!(read(FieldType::Integer, "urn:x:1:User:n"), Some(json!(42)));
        assert_eq!(
            read(FieldType::Timestamp, "urn:x:1:User:at"),
            Some(json!("2026-01-02T03:04:05+01:00"))
        );
        assert_eq!(read(FieldType::Boolean, "urn:x:1:User:flag"), Some(json!(true)));
        assert_eq!(
            read(FieldType::StringList, "urn:x:1:User:tags"),
            Some(json!(["a", "b"]))
        );
        assert_eq!(read(FieldType::Integer, "urn:x:1:User:at"), None);
    }

    #[test]
    fn request_fields_replace_the_presets_and_a_key_twice_is_refused() {
        let email = pb::ProfileField {
            key: "email".to_owned(),
            r#type: pb::ProfileFieldType::String.into(),
            sources: vec!["userName".to_owned()],
        };
        let mapping =
            AttributeMapping::from_request(pb::AttributePreset::Okta.into(), vec![email.clone()]).expect("valid");
        assert_eq!(mapping.fields.len(), 13);
        let replaced = mapping.fields.iter().find(|f| f.key == "email").expect("email");
        assert_eq!(replaced.source_texts(), vec!["userName".to_owned()]);
        assert!(AttributeMapping::from_request(0, vec![email.clone(), email]).is_err());
    }
}
