//! Small helpers for JSON objects whose keys are SCIM attribute names, which
//! match case-insensitively (RFC 7643 §2.1).

use serde_json::{Map, Value};

/// The key of `map` that equals `name` ignoring ASCII case.
pub(crate) fn key_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
    if map.contains_key(name) {
        return map.get_key_value(name).map(|(k, _)| k.as_str());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).map(String::as_str)
}

/// The value under `name`, any case.
pub(crate) fn get_ci<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    key_ci(map, name).and_then(|k| map.get(k))
}

/// Removes the entry under `name`, any case, keeping the order of the rest.
pub(crate) fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(map, name)?.to_owned();
    map.shift_remove(&key)
}

/// Sets `name` to `value`, replacing an entry whose key differs only in case.
pub(crate) fn insert_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    if let Some(existing) = key_ci(map, name).filter(|k| *k != name).map(str::to_owned) {
        map.shift_remove(&existing);
    }
    map.insert(name.to_owned(), value);
}

/// Whether a value means `true`: the boolean, or the string "true" in any
/// case, as Microsoft Entra ID sends it.
pub(crate) fn is_true(value: Option<&Value>) -> bool {
    value.and_then(as_bool) == Some(true)
}

/// Whether an element of a multi-valued attribute is marked primary.
pub(crate) fn is_primary(element: &Value) -> bool {
    element.as_object().is_some_and(|o| is_true(get_ci(o, "primary")))
}

/// A boolean from `true`/`false` or their strings in any case.
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => bool_from_str(s),
        _ => None,
    }
}

/// The boolean a string spells, in any case ("True" from Entra ID).
pub(crate) fn bool_from_str(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lookup_ignores_case_and_prefers_the_exact_key() {
        let m = map(json!({"UserName": "a", "userName": "b"}));
        assert_eq!(get_ci(&m, "userName"), Some(&json!("b")));
        assert_eq!(get_ci(&m, "USERNAME"), Some(&json!("a")));
        assert_eq!(get_ci(&m, "title"), None);
    }

    #[test]
    fn insert_replaces_a_key_that_differs_in_case() {
        let mut m = map(json!({"USERNAME": "a", "title": "t"}));
        insert_ci(&mut m, "userName", json!("b"));
        assert_eq!(Value::Object(m), json!({"title": "t", "userName": "b"}));
    }

    #[test]
    fn remove_keeps_order() {
        let mut m = map(json!({"a": 1, "B": 2, "c": 3}));
        assert_eq!(remove_ci(&mut m, "b"), Some(json!(2)));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn entra_boolean_strings_are_understood() {
        assert!(is_true(Some(&json!("True"))));
        assert!(!is_true(Some(&json!("False"))));
        assert_eq!(as_bool(&json!("FALSE")), Some(false));
        assert_eq!(as_bool(&json!("yes")), None);
        assert!(is_primary(&json!({"Primary": true})));
    }
}
