//! In-memory filter evaluation against a JSON resource.
//!
//! Comparison follows the attribute's definition: strings compare
//! case-insensitively unless the attribute is caseExact, dateTime attributes
//! compare as instants, numbers numerically and booleans only for equality.
//! A multi-valued attribute matches when any of its values does, and a
//! complex multi-valued attribute compared without a sub-attribute
//! (`emails co "@example.com"`) compares its `value` sub-attribute.
//! `ne` is the negation of `eq`, so an absent attribute is `ne` anything
//! but `null`; `eq null` holds exactly when `pr` does not.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{CompValue, CompareOp, Filter};
use crate::json::{bool_from_str, get_ci};
use crate::path::AttrPath;
use crate::schema::{Attribute, AttributeType, Container, ResourceSchema};

/// Whether `resource` (a JSON object) matches `filter`, reading attribute
/// definitions from `schema`. Anything but an object matches nothing.
pub fn matches(filter: &Filter, resource: &Value, schema: &ResourceSchema) -> bool {
    match resource.as_object() {
        Some(doc) => eval(filter, &Scope::Resource { doc, schema }),
        None => false,
    }
}

/// Whether one value of a multi-valued attribute matches a value filter
/// whose paths are relative to that value (`type eq "work"` for an element
/// of `emails`). `parent` is the multi-valued attribute's definition.
pub(crate) fn matches_element(filter: &Filter, element: &Value, parent: Option<&'static Attribute>) -> bool {
    eval(filter, &Scope::Element { element, parent })
}

/// What a filter's attribute paths are relative to.
enum Scope<'a> {
    /// A whole resource.
    Resource {
        doc: &'a Map<String, Value>,
        schema: &'a ResourceSchema,
    },
    /// One value of a multi-valued attribute.
    Element {
        element: &'a Value,
        parent: Option<&'static Attribute>,
    },
}

/// The values a path reaches, with the definition of what they are.
struct Reached<'a> {
    def: Option<&'static Attribute>,
    values: Vec<&'a Value>,
}

fn eval(filter: &Filter, scope: &Scope<'_>) -> bool {
    match filter {
        Filter::And(left, right) => eval(left, scope) && eval(right, scope),
        Filter::Or(left, right) => eval(left, scope) || eval(right, scope),
        Filter::Not(inner) => !eval(inner, scope),
        Filter::Present(path) => reach(path, scope).values.into_iter().any(is_present),
        Filter::Compare { path, op, value } => {
            let reached = comparable(reach(path, scope));
            match (op, value) {
                (CompareOp::Eq, CompValue::Null) => !reached.values.into_iter().any(is_present),
                (CompareOp::Ne, CompValue::Null) => reached.values.into_iter().any(is_present),
                (_, CompValue::Null) => false,
                (CompareOp::Ne, _) => !reached
                    .values
                    .iter()
                    .any(|actual| compare(actual, CompareOp::Eq, value, reached.def)),
                _ => reached
                    .values
                    .iter()
                    .any(|actual| compare(actual, *op, value, reached.def)),
            }
        }
        Filter::ValuePath { path, filter } => {
            let reached = reach(path, scope);
            reached
                .values
                .into_iter()
                .any(|element| matches_element(filter, element, reached.def))
        }
    }
}

/// The values at `path`, with arrays flattened (a multi-valued attribute
/// contributes each of its values).
fn reach<'a>(path: &AttrPath, scope: &Scope<'a>) -> Reached<'a> {
    let (top, def) = match scope {
        Scope::Resource { doc, schema } => {
            let container = match schema.container(path.urn.as_deref()) {
                Container::Core => Some(*doc),
                Container::Extension(ext) => get_ci(doc, ext.id).and_then(Value::as_object),
                Container::Unknown(urn) => get_ci(doc, urn).and_then(Value::as_object),
            };
            let top = container.and_then(|c| get_ci(c, &path.attr));
            let def = schema.resolve(&AttrPath {
                sub_attr: None,
                ..path.clone()
            });
            (top, def)
        }
        Scope::Element { element, parent } => {
            let def = parent.and_then(|p| p.sub_attribute(&path.attr));
            let top = match element {
                Value::Object(o) => get_ci(o, &path.attr),
                // A simple multi-valued attribute's values are their own `value`.
                simple if path.attr.eq_ignore_ascii_case("value") => Some(*simple),
                _ => None,
            };
            (top, def)
        }
    };
    let mut values = Vec::new();
    flatten(top, &mut values);
    match &path.sub_attr {
        None => Reached { def, values },
        Some(sub) => {
            let sub_values = values
                .into_iter()
                .filter_map(|v| v.as_object().and_then(|o| get_ci(o, sub)))
                .collect::<Vec<_>>();
            let mut flat = Vec::new();
            for v in sub_values {
                flatten(Some(v), &mut flat);
            }
            Reached {
                def: def.and_then(|d| d.sub_attribute(sub)),
                values: flat,
            }
        }
    }
}

fn flatten<'a>(value: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    match value {
        Some(Value::Array(items)) => out.extend(items.iter()),
        Some(v) => out.push(v),
        None => {}
    }
}

/// Complex values compare through their `value` sub-attribute.
fn comparable(reached: Reached<'_>) -> Reached<'_> {
    let complex =
        reached.def.is_some_and(|d| d.kind == AttributeType::Complex) || reached.values.iter().any(|v| v.is_object());
    if !complex {
        return reached;
    }
    Reached {
        def: reached.def.and_then(|d| d.sub_attribute("value")),
        values: reached
            .values
            .into_iter()
            .filter_map(|v| v.as_object().and_then(|o| get_ci(o, "value")))
            .collect(),
    }
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present),
        Value::Object(o) => o.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(actual: &Value, op: CompareOp, expected: &CompValue, def: Option<&Attribute>) -> bool {
    match (actual, expected) {
        (Value::String(a), CompValue::Str(e)) => compare_strings(a, op, e, def),
        (Value::Number(a), CompValue::Num(e)) => ordered(op, compare_numbers(a, e)),
        (Value::Bool(a), CompValue::Bool(e)) => op == CompareOp::Eq && a == e,
        // Entra ID and others send booleans as strings, in either direction.
        (Value::String(a), CompValue::Bool(e)) => op == CompareOp::Eq && bool_from_str(a) == Some(*e),
        (Value::Bool(a), CompValue::Str(e)) => op == CompareOp::Eq && bool_from_str(e) == Some(*a),
        _ => false,
    }
}

fn compare_strings(actual: &str, op: CompareOp, expected: &str, def: Option<&Attribute>) -> bool {
    if def.is_some_and(|d| d.kind == AttributeType::DateTime)
        && let (Ok(a), Ok(e)) = (
            OffsetDateTime::parse(actual, &Rfc3339),
            OffsetDateTime::parse(expected, &Rfc3339),
        )
    {
        return ordered(op, Some(a.cmp(&e)));
    }
    let case_exact = def.is_some_and(|d| d.case_exact);
    let (a, e) = if case_exact {
        (actual.to_owned(), expected.to_owned())
    } else {
        (super::fold_text(actual), super::fold_text(expected))
    };
    match op {
        CompareOp::Co => a.contains(&e),
        CompareOp::Sw => a.starts_with(&e),
        CompareOp::Ew => a.ends_with(&e),
        _ => ordered(op, Some(a.cmp(&e))),
    }
}

fn compare_numbers(a: &serde_json::Number, e: &serde_json::Number) -> Option<Ordering> {
    if let (Some(a), Some(e)) = (a.as_i64(), e.as_i64()) {
        return Some(a.cmp(&e));
    }
    if let (Some(a), Some(e)) = (a.as_u64(), e.as_u64()) {
        return Some(a.cmp(&e));
    }
    a.as_f64()?.partial_cmp(&e.as_f64()?)
}

fn ordered(op: CompareOp, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else { return false };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;
    use crate::schema::USER_RESOURCE;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Bjensen-Ext",
            "userName": "Bjensen@Example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "title": "Tour Guide",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            },
            "urn:example:ext:1.0:User": {"shoeSize": 44},
            "meta": {"lastModified": "2011-05-13T04:42:34Z", "created": "2010-01-23T04:56:22Z"}
        })
    }

    fn check(filter: &str) -> bool {
        let f = parse(filter).expect(filter);
        matches(&f, &user(), &USER_RESOURCE)
    }

    #[test]
    fn okta_filter_on_username_is_case_insensitive() {
        assert!(check(r#"userName eq "bjensen@example.com""#));
        assert!(check(r#"userName Eq "BJENSEN@EXAMPLE.COM""#));
        assert!(!check(r#"userName eq "bjensen""#));
    }

    #[test]
    fn case_exact_attributes_compare_exactly() {
        assert!(check(r#"externalId eq "Bjensen-Ext""#));
        assert!(!check(r#"externalId eq "bjensen-ext""#));
        assert!(check(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
    }

    #[test]
    fn string_operators_work() {
        assert!(check(r#"title co "guide""#));
        assert!(check(r#"title sw "tour""#));
        assert!(check(r#"title ew "GUIDE""#));
        assert!(!check(r#"title sw "guide""#));
        assert!(check(r#"title gt "A""#) && check(r#"title lt "z""#));
        assert!(check(r#"title ge "tour guide""#) && check(r#"title le "tour guide""#));
    }

    #[test]
    fn sub_attributes_are_reached() {
        assert!(check(r#"name.familyName eq "jensen""#));
        assert!(!check(r#"name.givenName eq "jensen""#));
    }

    #[test]
    fn multi_valued_attribute_matches_when_any_value_does() {
        assert!(check(r#"emails.value eq "babs@jensen.org""#));
        assert!(check(r#"emails.type eq "work""#));
        assert!(!check(r#"emails.type eq "other""#));
    }

    #[test]
    fn complex_multi_valued_attribute_without_sub_attribute_compares_value() {
        assert!(check(r#"emails co "jensen.org""#));
        assert!(!check(r#"emails co "nowhere""#));
    }

    #[test]
    fn entra_sub_attribute_after_a_value_filter_looks_at_the_same_element() {
        assert!(check(r#"emails[type eq "work"].value eq "BJENSEN@example.com""#));
        assert!(!check(r#"emails[type eq "work"].value eq "babs@jensen.org""#));
        assert!(!check(r#"emails[type eq "home"].value eq "bjensen@example.com""#));
        assert!(check(r#"emails[type eq "home"].value pr"#));
        assert!(check(r#"not (emails[type eq "other"].value pr)"#));
    }

    #[test]
    fn value_path_requires_one_element_to_match_everything() {
        assert!(check(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!check(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(check(r#"emails[primary eq true]"#));
        assert!(check(r#"emails[not (type eq "work")]"#));
    }

    #[test]
    fn booleans_compare_for_equality_only() {
        assert!(check("active eq true"));
        assert!(!check("active eq false"));
        assert!(check("active ne false"));
        assert!(!check("active gt false"));
        assert!(check(r#"active eq "True""#));
    }

    #[test]
    fn entra_boolean_strings_match_boolean_literals() {
        let doc = json!({"userName": "a", "active": "False"});
        let f = parse("active eq false").expect("filter");
        assert!(matches(&f, &doc, &USER_RESOURCE));
    }

    #[test]
    fn date_times_compare_as_instants() {
        assert!(check(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#));
        assert!(!check(r#"meta.lastModified lt "2011-05-13T06:42:33+02:00""#));
        assert!(check(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
        assert!(check(r#"meta.created le "2010-01-23T04:56:22.000Z""#));
    }

    #[test]
    fn numbers_compare_numerically() {
        let doc = json!({"urn:example:ext:1.0:User": {"shoeSize": 44}});
        let f = |s: &str| matches(&parse(s).expect(s), &doc, &USER_RESOURCE);
        assert!(f("urn:example:ext:1.0:User:shoeSize gt 43.5"));
        assert!(f("urn:example:ext:1.0:User:shoeSize eq 44"));
        assert!(!f("urn:example:ext:1.0:User:shoeSize lt 9"));
        assert!(!f(r#"urn:example:ext:1.0:User:shoeSize eq "44""#));
    }

    #[test]
    fn extension_attributes_are_reached_through_their_urn() {
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#
        ));
        assert!(check(
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.value pr"#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#
        ));
        assert!(!check(r#"department eq "tour operations""#));
    }

    #[test]
    fn present_means_non_null_and_non_empty() {
        assert!(check("title pr"));
        assert!(check("emails pr"));
        assert!(!check("nickName pr"));
        let doc = json!({"title": "", "emails": [], "nickName": null, "name": {}});
        for attr in ["title", "emails", "nickName", "name"] {
            let f = parse(&format!("{attr} pr")).expect("filter");
            assert!(!matches(&f, &doc, &USER_RESOURCE), "{attr}");
        }
    }

    #[test]
    fn null_comparisons_mean_absence_and_presence() {
        assert!(check("nickName eq null"));
        assert!(!check("title eq null"));
        assert!(check("title ne null"));
        assert!(!check("title gt null"));
    }

    #[test]
    fn ne_is_the_negation_of_eq() {
        assert!(check(r#"title ne "Boss""#));
        assert!(!check(r#"title ne "tour guide""#));
        assert!(check(r#"nickName ne "x""#));
        assert!(!check(r#"emails.type ne "home""#));
    }

    #[test]
    fn logical_operators_combine() {
        assert!(check(r#"title pr and userName sw "b""#));
        assert!(check(r#"nickName pr or userName sw "b""#));
        assert!(!check(r#"nickName pr and userName sw "b""#));
        assert!(check(r#"not (nickName pr)"#));
        assert!(check(
            r#"userType ne "Employee" and not (emails co "example.org" or emails.value co "example.net")"#
        ));
    }

    #[test]
    fn mismatched_types_never_match() {
        assert!(!check("title eq 5"));
        assert!(!check(r#"active co "t""#));
        assert!(!check("name eq 1"));
    }

    #[test]
    fn non_object_resources_match_nothing() {
        let f = parse("title pr").expect("filter");
        assert!(!matches(&f, &json!([1, 2]), &USER_RESOURCE));
        assert!(!matches(&f, &json!("x"), &USER_RESOURCE));
    }

    #[test]
    fn simple_multi_valued_values_match_by_value() {
        let f = parse(r#"value eq "b""#).expect("filter");
        assert!(matches_element(&f, &json!("B"), None));
        assert!(!matches_element(&f, &json!("c"), None));
    }
}
