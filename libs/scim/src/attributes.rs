//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which
//! attributes a response carries, with each attribute's `returned`
//! characteristic (RFC 7643 §7) honoured.
//!
//! - `always` attributes (`id`, and `schemas`) are in every response.
//! - `never` attributes (`password`) are in none.
//! - `request` attributes appear only when `attributes` names them.
//! - `default` attributes appear unless `excludedAttributes` names them, or
//!   `attributes` is given and does not.
//!
//! Names match in any case, may be URN-qualified, may name a sub-attribute
//! (`name.givenName`, `emails.value`, `meta.lastModified`) or a whole
//! extension by its URN. Names this resource type does not define are
//! ignored: RFC 7644 defines no error for them (only that names are in
//! attribute notation, so a malformed name is 400 `invalidValue`), and IdPs
//! send attributes of other resource types (`excludedAttributes=members` on
//! a User list). RFC 7644 §3.4.2.5 lets a client use one of the two
//! parameters and says nothing of both; when both are given, `attributes`
//! chooses and `excludedAttributes` then removes, so that neither is
//! silently ignored.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::path::AttrPath;
use crate::schema::{Attribute, ResourceSchema, Returned, Schema};

/// What a response should contain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    /// `attributes`, when given: only these (and `always` ones).
    only: Option<Vec<Named>>,
    /// `excludedAttributes`: not these (unless `always`).
    except: Vec<Named>,
}

/// The query parameters of a request about one resource: `attributes` and
/// `excludedAttributes` (RFC 7644 §3.9), on GET and on the responses to
/// POST, PUT and PATCH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributeParams {
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl AttributeParams {
    /// Reads the parameters from raw (already URL-decoded) query pairs,
    /// names in any case. Any other parameter is 400 `invalidValue`, so a
    /// misspelt one is not silently ignored, except the IdPs' own that
    /// [`crate::dialect`] lists.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<AttributeParams, ScimError> {
        let mut params = AttributeParams::default();
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "attributes" => params.attributes = Some(value.to_owned()),
                "excludedattributes" => params.excluded_attributes = Some(value.to_owned()),
                _ if crate::dialect::ignores_query_parameter(name) => {}
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "unsupported query parameter {name}: a single resource takes attributes and excludedAttributes"
                    )));
                }
            }
        }
        Ok(params)
    }

    /// Whether the client named `attributes` or `excludedAttributes` at all.
    pub fn is_given(&self) -> bool {
        self.attributes.is_some() || self.excluded_attributes.is_some()
    }

    /// What responses about a resource of `schema` carry.
    pub fn projection(&self, schema: &ResourceSchema) -> Result<Projection, ScimError> {
        Projection::parse(self.attributes.as_deref(), self.excluded_attributes.as_deref(), schema)
    }
}

/// One name of an attribute list, resolved against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// A whole extension object.
    Extension(&'static str),
    /// An attribute, in the core (`extension: None`) or in an extension, or
    /// one of its sub-attributes.
    Attribute {
        extension: Option<&'static str>,
        attr: &'static str,
        sub: Option<&'static str>,
    },
}

impl Projection {
    /// Reads the comma-separated `attributes` and `excludedAttributes`
    /// values. A name that is not an attribute path at all is 400
    /// `invalidValue`; a well-formed name this schema lacks is ignored.
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
        schema: &ResourceSchema,
    ) -> Result<Projection, ScimError> {
        let only = attributes
            .filter(|list| !list.trim().is_empty())
            .map(|list| names(list, schema, "attributes"))
            .transpose()?;
        let except = excluded
            .map(|list| names(list, schema, "excludedAttributes"))
            .transpose()?
            .unwrap_or_default();
        Ok(Projection { only, except })
    }

    /// Whether the response will carry the top-level core attribute `attr`
    /// (in whole or in part): lets a service skip reading what will not be
    /// returned, such as a group's `members`.
    pub fn includes(&self, schema: &ResourceSchema, attr: &str) -> bool {
        let Some(def) = schema.core_attribute(attr) else {
            return false;
        };
        self.decide(None, def) != Decision::Drop
    }

    /// Removes from a rendered resource (`schemas`, `id`, attributes,
    /// extension objects, `meta`) what the response should not carry.
    pub fn apply(&self, resource: &mut Value, schema: &ResourceSchema) {
        let Value::Object(doc) = resource else { return };
        let keys: Vec<String> = doc.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            let keep = match (schema.extension(&key), doc.get_mut(&key)) {
                (Some(extension), Some(Value::Object(inner))) => {
                    self.apply_extension(extension, inner);
                    !inner.is_empty()
                }
                (_, Some(value)) => match schema.core_attribute(&key) {
                    Some(def) => self.apply_attribute(None, def, value),
                    // Unknown keys are objects of undeclared extensions:
                    // returned by default, like any default attribute.
                    None => self.only.is_none(),
                },
                (_, None) => false,
            };
            if !keep {
                doc.shift_remove(&key);
            }
        }
    }

    fn apply_extension(&self, extension: &'static Schema, inner: &mut Map<String, Value>) {
        let whole = |list: &[Named]| list.contains(&Named::Extension(extension.id));
        if whole(&self.except) {
            inner.clear();
            return;
        }
        let everything = self.only.as_deref().is_some_and(whole);
        let keys: Vec<String> = inner.keys().cloned().collect();
        for key in keys {
            let keep = match (extension.attribute(&key), inner.get_mut(&key)) {
                (Some(def), Some(value)) if everything => {
                    let widened = Projection {
                        only: None,
                        except: self.except.clone(),
                    };
                    widened.apply_attribute(Some(extension.id), def, value)
                }
                (Some(def), Some(value)) => self.apply_attribute(Some(extension.id), def, value),
                _ => self.only.is_none(),
            };
            if !keep {
                inner.shift_remove(&key);
            }
        }
    }

    /// Trims one attribute's value; `false` when it goes altogether.
    fn apply_attribute(&self, extension: Option<&'static str>, def: &'static Attribute, value: &mut Value) -> bool {
        match self.decide(extension, def) {
            Decision::Keep => true,
            Decision::Drop => false,
            Decision::Some => {
                let trim = |object: &mut Map<String, Value>| {
                    object.retain(|key, _| match def.sub_attribute(key) {
                        Some(sub) => self.keeps_sub(extension, def, sub),
                        None => self.only.is_none(),
                    });
                    !object.is_empty()
                };
                match value {
                    Value::Object(object) => trim(object),
                    Value::Array(items) => {
                        items.retain_mut(|item| match item {
                            Value::Object(object) => trim(object),
                            _ => true,
                        });
                        !items.is_empty()
                    }
                    _ => true,
                }
            }
        }
    }

    fn decide(&self, extension: Option<&'static str>, def: &'static Attribute) -> Decision {
        match def.returned {
            Returned::Always => return Decision::Keep,
            Returned::Never => return Decision::Drop,
            Returned::Default | Returned::Request => {}
        }
        let named = |list: &[Named], whole: bool| {
            list.iter().any(|n| match n {
                Named::Attribute {
                    extension: e,
                    attr,
                    sub,
                } => *e == extension && *attr == def.name && (sub.is_none() || !whole),
                Named::Extension(_) => false,
            })
        };
        let chosen = match &self.only {
            Some(only) if named(only, true) => Decision::Keep,
            Some(only) if named(only, false) => Decision::Some,
            Some(_) => return Decision::Drop,
            None if def.returned == Returned::Request => return Decision::Drop,
            None => Decision::Keep,
        };
        if named(&self.except, true) {
            Decision::Drop
        } else if named(&self.except, false) || def.sub_attributes.iter().any(|s| s.returned == Returned::Request) {
            Decision::Some
        } else {
            chosen
        }
    }

    fn keeps_sub(&self, extension: Option<&'static str>, def: &Attribute, sub: &Attribute) -> bool {
        let is = |n: &Named| {
            matches!(n, Named::Attribute { extension: e, attr, sub: Some(s) }
                if *e == extension && *attr == def.name && *s == sub.name)
        };
        let whole = |n: &Named| {
            matches!(n, Named::Attribute { extension: e, attr, sub: None }
                if *e == extension && *attr == def.name)
        };
        match sub.returned {
            Returned::Always => return true,
            Returned::Never => return false,
            Returned::Default | Returned::Request => {}
        }
        if self.except.iter().any(is) {
            return false;
        }
        match &self.only {
            Some(only) => only
                .iter()
                .any(|n| is(n) || (whole(n) && sub.returned == Returned::Default)),
            None => sub.returned == Returned::Default,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Keep,
    Drop,
    /// Keep some sub-attributes.
    Some,
}

fn names(list: &str, schema: &ResourceSchema, parameter: &str) -> Result<Vec<Named>, ScimError> {
    let mut named = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(extension) = schema.extension(name) {
            named.push(Named::Extension(extension.id));
            continue;
        }
        let path = AttrPath::parse(name)
            .map_err(|_| ScimError::invalid_value(format!("{parameter}: {name:?} is not an attribute name")))?;
        let top = AttrPath {
            sub_attr: None,
            ..path.clone()
        };
        let Some(def) = schema.resolve(&top) else { continue };
        let sub = match path.sub_attr.as_deref() {
            None => None,
            Some(sub) => match def.sub_attribute(sub) {
                Some(sub) => Some(sub.name),
                None => continue,
            },
        };
        let extension = path.urn.as_deref().and_then(|urn| schema.extension(urn)).map(|e| e.id);
        named.push(Named::Attribute {
            extension,
            attr: def.name,
            sub,
        });
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::USER_RESOURCE;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn one_resource_takes_the_entra_flag_beside_its_two_parameters_and_nothing_else() {
        let params = AttributeParams::from_pairs([("aadOptscim062020", ""), ("excludedAttributes", "members")]);
        assert_eq!(params.map(|p| p.excluded_attributes), Ok(Some("members".to_owned())));
        let err = AttributeParams::from_pairs([("aadOptscim062020", ""), ("filter", "x pr")]).expect_err("filter");
        assert!(
            err.detail.starts_with("unsupported query parameter filter"),
            "{}",
            err.detail
        );
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": "u1",
            "externalId": "e1",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@x.org", "type": "work", "primary": true}, {"value": "h@x.org", "type": "home"}],
            "active": true,
            ENTERPRISE: {"department": "R&D", "employeeNumber": "7"},
            "urn:example:custom:1.0": {"shoe": 44},
            "meta": {"resourceType": "User", "lastModified": "2026-01-01T00:00:00Z", "version": "W/\"1\""}
        })
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut doc = user();
        Projection::parse(attributes, excluded, &USER_RESOURCE)
            .expect("valid")
            .apply(&mut doc, &USER_RESOURCE);
        doc
    }

    #[test]
    fn no_parameters_return_the_default_set() {
        assert_eq!(project(None, None), user());
        assert_eq!(project(Some(" "), Some("")), user());
    }

    #[test]
    fn attributes_returns_those_and_the_always_ones() {
        assert_eq!(
            project(Some("USERNAME,name.givenName"), None),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "id": "u1",
                "userName": "bjensen",
                "name": {"givenName": "Barbara"}
            })
        );
    }

    #[test]
    fn sub_attributes_of_multi_valued_attributes_and_meta_are_selected_in_each_value() {
        let doc = project(Some("emails.value,meta.lastModified"), None);
        assert_eq!(doc["emails"], json!([{"value": "b@x.org"}, {"value": "h@x.org"}]));
        assert_eq!(doc["meta"], json!({"lastModified": "2026-01-01T00:00:00Z"}));
    }

    #[test]
    fn extension_attributes_are_selected_by_urn_or_whole() {
        let one = project(Some(&format!("{ENTERPRISE}:department")), None);
        assert_eq!(one[ENTERPRISE], json!({"department": "R&D"}));
        assert_eq!(one.get("userName"), None);
        let whole = project(Some(ENTERPRISE), None);
        assert_eq!(whole[ENTERPRISE], user()[ENTERPRISE]);
        assert_eq!(whole.get("urn:example:custom:1.0"), None);
    }

    #[test]
    fn excluded_attributes_removes_from_the_default_set_but_never_id() {
        let doc = project(None, Some("emails,id,name.familyName,meta"));
        assert_eq!(doc.get("emails"), None);
        assert_eq!(doc.get("meta"), None);
        assert_eq!(doc["id"], "u1");
        assert_eq!(doc["name"], json!({"givenName": "Barbara"}));
        assert_eq!(doc["userName"], "bjensen");
        assert_eq!(doc["urn:example:custom:1.0"], json!({"shoe": 44}));
        let no_extension = project(None, Some(ENTERPRISE));
        assert_eq!(no_extension.get(ENTERPRISE), None);
    }

    #[test]
    fn both_parameters_choose_then_remove() {
        let doc = project(Some("name,emails"), Some("name.givenName"));
        assert_eq!(doc["name"], json!({"familyName": "Jensen"}));
        assert!(doc.get("emails").is_some());
        assert_eq!(doc.get("userName"), None);
    }

    #[test]
    fn unknown_names_are_ignored_and_malformed_ones_rejected() {
        assert_eq!(project(None, Some("members,urn:example:other:1.0:x")), user());
        let err = Projection::parse(Some("userName,[bad"), None, &USER_RESOURCE).expect_err("malformed");
        assert_eq!(err.scim_type, Some(crate::ScimType::InvalidValue));
    }

    #[test]
    fn includes_answers_whether_an_attribute_is_returned() {
        let members = |a, e| {
            Projection::parse(a, e, &USER_RESOURCE)
                .expect("valid")
                .includes(&USER_RESOURCE, "emails")
        };
        assert!(members(None, None));
        assert!(!members(None, Some("emails")));
        assert!(members(Some("emails.value"), None));
        assert!(!members(Some("userName"), None));
    }

    #[test]
    fn never_returned_attributes_are_dropped_even_when_asked_for() {
        let mut doc = user();
        doc["password"] = json!("s3cret");
        let projection = Projection::parse(Some("password,userName"), None, &USER_RESOURCE).expect("valid");
        projection.apply(&mut doc, &USER_RESOURCE);
        assert_eq!(doc.get("password"), None);
        assert_eq!(doc["userName"], "bjensen");
        let mut doc = user();
        doc["password"] = json!("s3cret");
        Projection::default().apply(&mut doc, &USER_RESOURCE);
        assert_eq!(doc, user());
        assert!(!Projection::default().includes(&USER_RESOURCE, "password"));
    }

    #[test]
    fn id_stays_whatever_is_asked() {
        let keys = |doc: &Value| doc.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        let only_id = project(Some("id"), None);
        assert_eq!(keys(&only_id), Some(vec!["schemas".to_owned(), "id".to_owned()]));
        assert_eq!(project(Some("meta.version"), Some("id,schemas"))["id"], "u1");
    }

    /// A resource type with `request` attributes, which the standard
    /// schemas lack.
    mod badges {
        use crate::schema::{Attribute, AttributeType, ResourceSchema, Returned, Schema, attr};

        const fn on_request(a: Attribute) -> Attribute {
            Attribute {
                returned: Returned::Request,
                ..a
            }
        }

        static BADGE_SUBS: [Attribute; 2] = [
            attr("value", AttributeType::String, "The badge number."),
            on_request(attr("pin", AttributeType::String, "The badge's PIN.")),
        ];
        static ATTRIBUTES: [Attribute; 3] = [
            attr("displayName", AttributeType::String, "A name."),
            on_request(attr("salary", AttributeType::Integer, "Only on request.")),
            Attribute {
                multi_valued: true,
                sub_attributes: &BADGE_SUBS,
                ..attr("badges", AttributeType::Complex, "Badges.")
            },
        ];
        static CORE: Schema = Schema {
            id: "urn:example:schemas:1.0:Employee",
            name: "Employee",
            description: "A resource type with request-only attributes.",
            attributes: &ATTRIBUTES,
        };
        pub static EMPLOYEE: ResourceSchema = ResourceSchema {
            name: "Employee",
            endpoint: "/Employees",
            core: &CORE,
            extensions: &[],
        };
    }

    #[test]
    fn request_attributes_appear_only_when_named() {
        let employee = || {
            json!({
                "schemas": ["urn:example:schemas:1.0:Employee"],
                "id": "e1",
                "displayName": "Ada",
                "salary": 100,
                "badges": [{"value": "b1", "pin": "1234"}, {"value": "b2", "pin": "5678"}]
            })
        };
        let project = |attributes: Option<&str>, excluded: Option<&str>| {
            let mut doc = employee();
            Projection::parse(attributes, excluded, &badges::EMPLOYEE)
                .expect("valid")
                .apply(&mut doc, &badges::EMPLOYEE);
            doc
        };
        let default = project(None, None);
        assert_eq!(default.get("salary"), None);
        assert_eq!(default["badges"], json!([{"value": "b1"}, {"value": "b2"}]));
        assert_eq!(project(None, Some("displayName")).get("salary"), None);

        let asked = project(Some("salary,badges.pin"), None);
        assert_eq!(asked["salary"], 100);
        assert_eq!(asked["badges"], json!([{"pin": "1234"}, {"pin": "5678"}]));
        assert_eq!(asked.get("displayName"), None);
        assert_eq!(project(Some("badges"), None)["badges"], default["badges"]);

        let wants = |attributes, attr| {
            Projection::parse(attributes, None, &badges::EMPLOYEE)
                .expect("valid")
                .includes(&badges::EMPLOYEE, attr)
        };
        assert!(!wants(None, "salary"));
        assert!(wants(Some("SALARY"), "salary"));
        assert!(wants(None, "badges"));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn projecting_only_removes_keeps_id_and_is_idempotent(
            doc in crate::test_support::user_doc(),
            attributes in proptest::option::of(proptest::collection::vec(crate::test_support::key(), 0..4)),
            excluded in proptest::option::of(proptest::collection::vec(crate::test_support::key(), 0..4)),
        ) {
            let mut doc = Value::Object(doc);
            doc["id"] = json!("u1");
            let attributes = attributes.map(|names| names.join(","));
            let excluded = excluded.map(|names| names.join(","));
            let Ok(projection) = Projection::parse(attributes.as_deref(), excluded.as_deref(), &USER_RESOURCE) else {
                return Ok(());
            };
            let mut projected = doc.clone();
            projection.apply(&mut projected, &USER_RESOURCE);
            prop_assert_eq!(&projected["id"], &json!("u1"));
            prop_assert!(projected.get("password").is_none());
            let original = doc.as_object().expect("object");
            for key in projected.as_object().expect("object").keys() {
                prop_assert!(original.contains_key(key), "{} appeared", key);
            }
            let mut again = projected.clone();
            projection.apply(&mut again, &USER_RESOURCE);
            prop_assert_eq!(&again, &projected);

            let chosen = Projection::parse(attributes.as_deref(), None, &USER_RESOURCE).expect("parsed before");
            let mut wider = doc.clone();
            chosen.apply(&mut wider, &USER_RESOURCE);
            for key in projected.as_object().expect("object").keys() {
                prop_assert!(wider.get(key).is_some(), "excluding added {}", key);
            }
        }
    }
}
