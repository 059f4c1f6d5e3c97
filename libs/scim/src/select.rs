//! Reading values out of a resource by a path, as attribute mappings do:
//! `userName`, `name.givenName`, value-filtered paths such as
//! `emails[type eq "work"].value`, and URN-qualified paths of declared and
//! custom extensions (`urn:…:enterprise:2.0:User:manager.value`).
//!
//! The path grammar is PATCH's ([`PatchPath`]) and value filters are
//! evaluated by the same code as filters and PATCH, so a path selects here
//! what it would select in a PATCH.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::matches_element;
use crate::json::{get_ci, is_primary};
use crate::patch::PatchPath;
use crate::path::AttrPath;
use crate::schema::{Attribute, Container, ResourceSchema};

/// A parsed source path and the definition of what it selects, if the
/// resource type declares it (paths into custom extensions have none).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    path: PatchPath,
    /// The attribute the path's first part names.
    top: Option<&'static Attribute>,
    /// What a selected value is: the sub-attribute, or the attribute.
    leaf: Option<&'static Attribute>,
}

impl Selector {
    /// Parses `text` (`invalidPath` when malformed). A path into the core
    /// schema or a declared extension must name attributes they define.
    pub fn parse(text: &str, schema: &ResourceSchema) -> Result<Selector, ScimError> {
        let path = PatchPath::parse(text)?;
        let declared = !matches!(schema.container(path.attr.urn.as_deref()), Container::Unknown(_));
        let top = schema.resolve(&AttrPath {
            sub_attr: None,
            ..path.attr.clone()
        });
        let leaf = schema.resolve(&path.attr);
        if declared && leaf.is_none() {
            return Err(ScimError::invalid_path(format!(
                "{text:?} names no attribute of the {} schema",
                schema.name
            )));
        }
        if path.filter.is_some() && !top.is_none_or(|top| top.multi_valued) {
            return Err(ScimError::invalid_path(format!(
                "{text:?}: a value filter needs a multi-valued attribute"
            )));
        }
        Ok(Selector { path, top, leaf })
    }

    /// The definition of the values this path selects, when declared.
    pub fn leaf(&self) -> Option<&'static Attribute> {
        self.leaf
    }

    /// The non-null values the path selects in `doc`, in document order
    /// except that a primary value of an unfiltered multi-valued attribute
    /// comes first. A sub-attribute of a bare value reads the value itself
    /// when the sub-attribute is `value` (Entra ID's `"manager": "<id>"`).
    pub fn select<'a>(&self, doc: &'a Map<String, Value>, schema: &ResourceSchema) -> Vec<&'a Value> {
        let attr = &self.path.attr;
        let container = match schema.container(attr.urn.as_deref()) {
            Container::Core => Some(doc),
            Container::Extension(ext) => get_ci(doc, ext.id).and_then(Value::as_object),
            Container::Unknown(urn) => get_ci(doc, urn).and_then(Value::as_object),
        };
        let Some(top) = container.and_then(|c| get_ci(c, &attr.attr)) else {
            return Vec::new();
        };
        let mut elements: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        match &self.path.filter {
            Some(filter) => elements.retain(|element| matches_element(filter, element, self.top)),
            // Stable: the primary first, the others in their order.
            None => elements.sort_by_key(|element| !is_primary(element)),
        }
        let selected = elements
            .into_iter()
            .filter_map(|element| match (&attr.sub_attr, element) {
                (None, value) => Some(value),
                (Some(sub), Value::Object(object)) => get_ci(object, sub),
                (Some(sub), bare) if sub.eq_ignore_ascii_case("value") => Some(bare),
                (Some(_), _) => None,
            });
        selected.filter(|value| !value.is_null()).collect()
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path.filter {
            None => write!(f, "{}", self.path.attr),
            Some(filter) => {
                let top = AttrPath {
                    sub_attr: None,
                    ..self.path.attr.clone()
                };
                write!(f, "{top}[{filter}]")?;
                match &self.path.attr.sub_attr {
                    Some(sub) => write!(f, ".{sub}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{AttributeType, ENTERPRISE_USER_SCHEMA_ID, USER_RESOURCE};

    fn doc(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    fn select(path: &str, resource: &Value) -> Vec<Value> {
        let selector = Selector::parse(path, &USER_RESOURCE).expect(path);
        selector
            .select(&doc(resource.clone()), &USER_RESOURCE)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn plain_and_sub_attribute_paths_select_their_value() {
        let user = json!({"userName": "ada", "name": {"givenName": "Ada"}});
        assert_eq!(select("userName", &user), vec![json!("ada")]);
        assert_eq!(select("name.givenName", &user), vec![json!("Ada")]);
        assert_eq!(select("NAME.GIVENNAME", &user), vec![json!("Ada")]);
        assert!(select("name.familyName", &user).is_empty());
    }

    #[test]
    fn value_filters_pick_the_matching_values() {
        let user = json!({
            "emails": [
                {"value": "home@example.com", "type": "home"},
                {"value": "work@example.com", "type": "work", "primary": true}
            ],
            "phoneNumbers": [{"value": "+1 555", "type": "mobile"}]
        });
        assert_eq!(
            select("emails[type eq \"work\"].value", &user),
            vec![json!("work@example.com")]
        );
        assert_eq!(
            select("emails[primary eq true].value", &user),
            vec![json!("work@example.com")]
        );
        assert_eq!(
            select("phoneNumbers[type eq \"mobile\"].value", &user),
            vec![json!("+1 555")]
        );
        assert!(select("emails[type eq \"other\"].value", &user).is_empty());
    }

    #[test]
    fn an_unfiltered_multi_valued_path_puts_the_primary_first() {
        let user = json!({"emails": [{"value": "a@x"}, {"value": "b@x", "primary": true}]});
        assert_eq!(select("emails.value", &user), vec![json!("b@x"), json!("a@x")]);
    }

    #[test]
    fn enterprise_manager_reads_as_an_object_and_as_a_bare_id() {
        let path = format!("{ENTERPRISE_USER_SCHEMA_ID}:manager.value");
        let object = json!({ENTERPRISE_USER_SCHEMA_ID: {"manager": {"value": "m-1"}}});
        let bare = json!({ENTERPRISE_USER_SCHEMA_ID: {"manager": "m-2"}});
        assert_eq!(select(&path, &object), vec![json!("m-1")]);
        assert_eq!(select(&path, &bare), vec![json!("m-2")]);
        let department = json!({ENTERPRISE_USER_SCHEMA_ID: {"department": "Ops"}});
        assert_eq!(
            select(&format!("{ENTERPRISE_USER_SCHEMA_ID}:department"), &department),
            vec![json!("Ops")]
        );
    }

    #[test]
    fn custom_extension_paths_read_what_was_kept() {
        let user = json!({"urn:example:custom:1.0:User": {"badge": 17, "site": {"code": "BER"}}});
        assert_eq!(select("urn:example:custom:1.0:User:badge", &user), vec![json!(17)]);
        assert_eq!(
            select("urn:example:custom:1.0:User:site.code", &user),
            vec![json!("BER")]
        );
        let selector = Selector::parse("urn:example:custom:1.0:User:badge", &USER_RESOURCE).expect("a path");
        assert_eq!(selector.leaf(), None);
    }

    #[test]
    fn declared_paths_must_name_declared_attributes() {
        for bad in [
            "nickname.first",
            "favouriteColour",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize",
            "userName[value eq \"x\"]",
            "emails[type eq ]",
            "",
        ] {
            let err = Selector::parse(bad, &USER_RESOURCE).expect_err(bad);
            assert_eq!(err.scim_type, Some(crate::ScimType::InvalidPath), "{bad}");
        }
    }

    #[test]
    fn the_leaf_says_what_is_selected() {
        let leaf = |path: &str| {
            Selector::parse(path, &USER_RESOURCE)
                .expect(path)
                .leaf()
                .map(|a| a.kind)
        };
        assert_eq!(leaf("active"), Some(AttributeType::Boolean));
        assert_eq!(leaf("emails[type eq \"work\"].value"), Some(AttributeType::String));
        assert_eq!(leaf("meta.created"), Some(AttributeType::DateTime));
        assert_eq!(leaf("emails"), Some(AttributeType::Complex));
    }

    #[test]
    fn display_writes_the_path_back() {
        for path in ["userName", "emails[type eq \"work\"].value", "name.givenName"] {
            assert_eq!(Selector::parse(path, &USER_RESOURCE).expect(path).to_string(), path);
        }
    }
}
