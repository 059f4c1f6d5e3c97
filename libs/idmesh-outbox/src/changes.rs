//! What a write changed, for `changed_attributes`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The top-level attributes whose values differ between two SCIM
/// documents (present in one and not the other, or with another value), in
/// name order. Attribute names compare case-insensitively, as SCIM's do;
/// `meta` is the server's bookkeeping and never counts.
pub fn changed_attributes(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    fn by_folded_name(doc: &Map<String, Value>) -> BTreeMap<String, (&String, &Value)> {
        doc.iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("meta"))
            .map(|(name, value)| (name.to_ascii_lowercase(), (name, value)))
            .collect()
    }
    let (before, after) = (by_folded_name(before), by_folded_name(after));
    let added_or_changed = after
        .iter()
        .filter(|(key, (_, value))| before.get(*key).is_none_or(|(_, old)| old != value))
        .map(|(_, (name, _))| name);
    let removed = before
        .iter()
        .filter(|(key, _)| !after.contains_key(*key))
        .map(|(_, (name, _))| name);
    let mut changed: Vec<String> = added_or_changed.chain(removed).map(|name| (*name).clone()).collect();
    changed.sort_by_key(|name| name.to_ascii_lowercase());
    changed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("a test document is an object"),
        }
    }

    #[test]
    fn names_added_removed_and_changed_attributes_but_not_equal_ones() {
        let before = doc(json!({"userName": "a", "title": "x", "nickName": "n", "meta": {"version": "1"}}));
        let after = doc(json!({"userName": "a", "title": "y", "active": false, "meta": {"version": "2"}}));
        assert_eq!(changed_attributes(&before, &after), ["active", "nickName", "title"]);
    }

    #[test]
    fn a_rewrite_that_only_changes_the_case_of_a_name_changes_nothing() {
        let before = doc(json!({"displayName": "Ops"}));
        let after = doc(json!({"displayname": "Ops"}));
        assert!(changed_attributes(&before, &after).is_empty());
    }
}
