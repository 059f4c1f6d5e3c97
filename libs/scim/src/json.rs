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

/// A hash of `value` consistent with `==`: equal values hash alike, in
/// whatever order their objects' keys come.
pub(crate) fn content_hash(value: &Value) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    match value {
        Value::Null => 0u8.hash(&mut hasher),
        Value::Bool(b) => (1u8, b).hash(&mut hasher),
        Value::Number(n) => (2u8, n.as_u64(), n.as_i64(), n.as_f64().map(f64::to_bits)).hash(&mut hasher),
        Value::String(s) => (3u8, s).hash(&mut hasher),
        Value::Array(items) => {
            4u8.hash(&mut hasher);
            for item in items {
                content_hash(item).hash(&mut hasher);
            }
        }
        Value::Object(entries) => {
            // A sum does not depend on the order of its terms.
            let sum = entries.iter().fold(0u64, |sum, (key, value)| {
                let mut entry = DefaultHasher::new();
                (key, content_hash(value)).hash(&mut entry);
                sum.wrapping_add(entry.finish())
            });
            (5u8, sum).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The elements of an array indexed by content, so that asking whether a
/// value is among them costs a hash, not a pass over the array: a PATCH
/// adding N values to an attribute of M runs in O(N + M), not O(N × M).
pub(crate) struct ValueIndex(std::collections::HashMap<u64, Vec<usize>>);

impl ValueIndex {
    /// The index of `items`.
    pub(crate) fn of(items: &[Value]) -> ValueIndex {
        let mut index = ValueIndex(std::collections::HashMap::with_capacity(items.len()));
        for (position, item) in items.iter().enumerate() {
            index.insert(position, item);
        }
        index
    }

    /// Records that `items[position]` is `value`.
    pub(crate) fn insert(&mut self, position: usize, value: &Value) {
        self.0.entry(content_hash(value)).or_default().push(position);
    }

    /// Whether `items`, the array this index was built on, has an element
    /// equal to `value`.
    pub(crate) fn contains(&self, items: &[Value], value: &Value) -> bool {
        self.0
            .get(&content_hash(value))
            .is_some_and(|positions| positions.iter().any(|&p| items.get(p) == Some(value)))
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

    #[test]
    fn equal_values_hash_alike_whatever_their_key_order() {
        let a: Value = serde_json::from_str(r#"{"value": "x", "type": "work", "n": [1, {"p": true}]}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"n": [1, {"p": true}], "type": "work", "value": "x"}"#).expect("json");
        assert_eq!(a, b);
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&json!([1, 2])), content_hash(&json!([2, 1])));
        assert_ne!(content_hash(&json!({"a": "b"})), content_hash(&json!({"b": "a"})));
    }

    #[test]
    fn the_index_finds_exactly_the_equal_elements() {
        let mut items = vec![json!({"value": "a"}), json!("b"), json!(3)];
        let mut index = ValueIndex::of(&items);
        assert!(index.contains(&items, &json!({"value": "a"})));
        assert!(index.contains(&items, &json!(3)));
        assert!(!index.contains(&items, &json!("a")));
        items.push(json!("c"));
        index.insert(3, &items[3]);
        assert!(index.contains(&items, &json!("c")));
    }
}
