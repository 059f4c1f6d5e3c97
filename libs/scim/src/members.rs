//! SCIM PATCH on a group, taken apart: the operations on the document
//! (everything but members), which [`crate::patch::apply`] applies, and
//! the member changes, in order, for a store that keeps members as rows of
//! their own. Membership then never passes through a JSON array, so a
//! PATCH costs what it changes, whatever the group's size.
//!
//! The shapes IdPs send all land here: Okta's `remove` by
//! `members[value eq "<id>"]` next to an `add` of `members`, its full
//! `replace` of members and its path-less rename; Entra ID's capitalised
//! `Add`/`Remove` of `members` with listed values, where a `Remove` removes
//! exactly those listed and never all.

use crate::ScimError;
use crate::filter::Filter;
use crate::patch::{PatchOpKind, PatchOperation, PatchPath};
use crate::path::AttrPath;
use crate::schema::{GROUP_RESOURCE, GROUP_SCHEMA_ID, ResourceSchema, USER_RESOURCE};
use serde_json::{Map, Value};

/// A member to add: its id, and the `display` the client sent with it
/// (Okta sends the member's name; Entra ID sends none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub id: String,
    pub display: Option<String>,
}

impl From<String> for NewMember {
    fn from(id: String) -> NewMember {
        NewMember { id, display: None }
    }
}

/// One change to a group's member rows, applied in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Adds these members; those present already stay as they are.
    Add(Vec<NewMember>),
    /// Removes these ids; absent ones are ignored.
    Remove(Vec<String>),
    /// Removes the members that a filter over member sub-attributes
    /// (`value`, `type`, `display`) matches.
    RemoveMatching(Filter),
    /// Removes every member.
    RemoveAll,
}

/// A group PATCH request, split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupPatch {
    /// Operations for `scim::patch::apply` on the document without members.
    pub document: Vec<PatchOperation>,
    pub members: Vec<MemberChange>,
}

/// What a member of a group is: the resource type it refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    fn resource_type(self) -> &'static ResourceSchema {
        match self {
            MemberKind::User => &USER_RESOURCE,
            MemberKind::Group => &GROUP_RESOURCE,
        }
    }
}

/// One element of a Group's `members` (RFC 7643 §4.2): `value`, `$ref` to
/// the member under `directory_url` (its `/Users/…` or `/Groups/…` URL),
/// `type`, and `display` when the client sent one. The server adds no
/// display of its own: IdPs compare the members they sent with those they
/// get back.
pub fn render_member(directory_url: &str, id: &str, kind: MemberKind, display: &str) -> Value {
    let resource_type = kind.resource_type();
    let mut rendered = Map::new();
    rendered.insert("value".to_owned(), Value::from(id));
    rendered.insert(
        "$ref".to_owned(),
        Value::from(format!("{directory_url}{}/{id}", resource_type.endpoint)),
    );
    rendered.insert("type".to_owned(), Value::from(resource_type.name));
    if !display.is_empty() {
        rendered.insert("display".to_owned(), Value::from(display));
    }
    Value::Object(rendered)
}

/// One element of a User's readOnly `groups` (RFC 7643 §4.1.2): the group
/// as `value`, `$ref`, `display`, and `type` "direct" (groups are not
/// expanded: a member of a nested group is listed in the inner one only).
pub fn render_group_of_user(directory_url: &str, group_id: &str, display: &str) -> Value {
    let mut rendered = Map::new();
    rendered.insert("value".to_owned(), Value::from(group_id));
    rendered.insert(
        "$ref".to_owned(),
        Value::from(format!("{directory_url}{}/{group_id}", GROUP_RESOURCE.endpoint)),
    );
    rendered.insert("display".to_owned(), Value::from(display));
    rendered.insert("type".to_owned(), Value::from("direct"));
    Value::Object(rendered)
}

/// Whether `path` names the group's `members`, bare or qualified with the
/// core Group schema.
pub fn names_members(path: &AttrPath) -> bool {
    path.attr.eq_ignore_ascii_case("members")
        && path
            .urn
            .as_deref()
            .is_none_or(|urn| urn.eq_ignore_ascii_case(GROUP_SCHEMA_ID))
}

fn in_place(path: &str) -> ScimError {
    ScimError::mutability(format!(
        "{path}: a member cannot be changed in place (its value and type are immutable, its display is \
         readOnly); remove the member and add it again"
    ))
}

/// Splits PATCH operations into document operations and member changes.
/// Operations on a member's sub-attributes, and `add`/`replace` of a
/// filtered member, are 400 `mutability`.
pub fn split(ops: Vec<PatchOperation>) -> Result<GroupPatch, ScimError> {
    let mut patch = GroupPatch::default();
    for op in ops {
        match &op.path {
            Some(text) => {
                let path = PatchPath::parse(text)?;
                if !names_members(&path.attr) {
                    patch.document.push(op);
                    continue;
                }
                if path.attr.sub_attr.is_some() {
                    return Err(in_place(text));
                }
                let value = op.value.as_ref().filter(|v| !v.is_null());
                match (op.op, path.filter, value) {
                    (PatchOpKind::Remove, Some(filter), _) => patch.members.push(MemberChange::RemoveMatching(filter)),
                    (_, Some(_), _) => return Err(in_place(text)),
                    (PatchOpKind::Remove, None, None) => patch.members.push(MemberChange::RemoveAll),
                    (PatchOpKind::Remove, None, Some(listed)) => patch.members.push(MemberChange::Remove(ids(listed)?)),
                    (PatchOpKind::Add, None, value) => {
                        patch.members.push(MemberChange::Add(new_members_or_none(value)?))
                    }
                    (PatchOpKind::Replace, None, value) => {
                        patch.members.push(MemberChange::RemoveAll);
                        patch.members.push(MemberChange::Add(new_members_or_none(value)?));
                    }
                }
            }
            None => {
                let Some(Value::Object(entries)) = &op.value else {
                    // Not an object: `apply` answers what is wrong with it.
                    patch.document.push(op);
                    continue;
                };
                let mut entries = entries.clone();
                for members in take_members(&mut entries)? {
                    if op.op == PatchOpKind::Replace {
                        patch.members.push(MemberChange::RemoveAll);
                    }
                    patch.members.push(MemberChange::Add(new_members(&members)?));
                }
                patch.document.push(PatchOperation {
                    value: Some(Value::Object(entries)),
                    ..op
                });
            }
        }
    }
    Ok(patch)
}

/// Takes the `members` out of a group document or a path-less PATCH value:
/// under `members` in any case, URN-qualified, or inside an object keyed
/// by the core Group schema URN. A key naming a member's sub-attribute
/// (`members.value`) is 400 `mutability`.
pub fn take_members(doc: &mut Map<String, Value>) -> Result<Vec<Value>, ScimError> {
    let mut taken = Vec::new();
    let keys: Vec<String> = doc.keys().cloned().collect();
    for key in keys {
        if key.eq_ignore_ascii_case(GROUP_SCHEMA_ID) {
            if let Some(Value::Object(nested)) = doc.get_mut(&key) {
                taken.extend(take_members(nested)?);
            }
            continue;
        }
        let Ok(path) = AttrPath::parse(&key) else { continue };
        if !names_members(&path) {
            continue;
        }
        if path.sub_attr.is_some() {
            return Err(in_place(&key));
        }
        if let Some(members) = doc.shift_remove(&key) {
            taken.push(members);
        }
    }
    Ok(taken)
}

/// The members a value lists, or none when there is no value.
fn new_members_or_none(value: Option<&Value>) -> Result<Vec<NewMember>, ScimError> {
    value.map_or_else(|| Ok(Vec::new()), new_members)
}

/// The member ids a `members` value lists (see [`new_members`]).
pub fn ids(value: &Value) -> Result<Vec<String>, ScimError> {
    Ok(new_members(value)?.into_iter().map(|member| member.id).collect())
}

/// The members a `members` value lists: an array of member objects (or a
/// single one), each naming its id as `value`; a bare id is accepted too.
/// A member's `display` is kept as sent; `$ref` and `type` are ignored,
/// since the server knows what each id is.
pub fn new_members(value: &Value) -> Result<Vec<NewMember>, ScimError> {
    let sub = |member: &'_ Map<String, Value>, name: &str| -> Option<String> {
        member
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
            .map(str::to_owned)
    };
    let one = |element: &Value| -> Result<Option<NewMember>, ScimError> {
        let (id, display) = match element {
            Value::Null => return Ok(None),
            Value::String(id) => (Some(id.clone()), None),
            Value::Object(member) => (sub(member, "value"), sub(member, "display")),
            _ => (None, None),
        };
        match id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Ok(Some(NewMember {
                id: id.to_owned(),
                display: display.filter(|display| !display.is_empty()),
            })),
            _ => Err(ScimError::invalid_value(format!(
                "members: each member needs a \"value\" naming a user or group, not {element}"
            ))),
        }
    };
    match value {
        Value::Array(elements) => elements.iter().filter_map(|e| one(e).transpose()).collect(),
        single => Ok(one(single)?.into_iter().collect()),
    }
}

#[cfg(test)]
mod tests {
    use crate::ScimType;
    use serde_json::json;

    use super::*;

    #[test]
    fn members_refer_to_the_endpoint_of_their_type() {
        let directory = "https://scim.example.com/scim/v2/d1";
        assert_eq!(
            render_member(directory, "u1", MemberKind::User, "Ada"),
            json!({"value": "u1", "$ref": format!("{directory}/Users/u1"), "type": "User", "display": "Ada"})
        );
        assert_eq!(
            render_member(directory, "g1", MemberKind::Group, ""),
            json!({"value": "g1", "$ref": format!("{directory}/Groups/g1"), "type": "Group"})
        );
    }

    #[test]
    fn a_users_groups_are_direct_and_refer_to_the_groups() {
        let directory = "https://scim.example.com/scim/v2/d1";
        assert_eq!(
            render_group_of_user(directory, "g1", "Admins"),
            json!({"value": "g1", "$ref": format!("{directory}/Groups/g1"), "display": "Admins", "type": "direct"})
        );
    }

    fn op(kind: &str, path: Option<&str>, value: Option<Value>) -> PatchOperation {
        PatchOperation::new(kind, path.map(str::to_owned), value).expect("a valid operation")
    }

    fn ids_of(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| (*id).to_owned()).collect()
    }

    /// Members added without a display.
    fn added(list: &[&str]) -> Vec<NewMember> {
        ids_of(list).into_iter().map(NewMember::from).collect()
    }

    #[test]
    fn okta_remove_by_filter_and_add_in_one_request() {
        let patch = split(vec![
            op("remove", Some(r#"members[value eq "u1"]"#), None),
            op("add", Some("members"), Some(json!([{"value": "u2", "display": "Bob"}]))),
        ])
        .expect("split");
        assert!(patch.document.is_empty());
        assert_eq!(
            patch.members,
            vec![
                MemberChange::RemoveMatching(crate::filter::parse(r#"value eq "u1""#).expect("filter")),
                MemberChange::Add(vec![NewMember {
                    id: "u2".to_owned(),
                    display: Some("Bob".to_owned()),
                }]),
            ]
        );
    }

    #[test]
    fn okta_replace_of_members_replaces_them_all() {
        let patch = split(vec![op(
            "replace",
            Some("members"),
            Some(json!([{"value": "u1"}, {"value": "u2"}])),
        )])
        .expect("split");
        assert_eq!(
            patch.members,
            vec![MemberChange::RemoveAll, MemberChange::Add(added(&["u1", "u2"]))]
        );
    }

    #[test]
    fn okta_pathless_rename_stays_a_document_operation() {
        let rename = op("replace", None, Some(json!({"id": "g1", "displayName": "New"})));
        let patch = split(vec![rename.clone()]).expect("split");
        assert_eq!(patch.document, vec![rename]);
        assert!(patch.members.is_empty());
    }

    #[test]
    fn entra_add_and_remove_list_exactly_the_members() {
        let patch = split(vec![
            op("Add", Some("members"), Some(json!([{"$ref": null, "value": "u1"}]))),
            op("Remove", Some("members"), Some(json!([{"value": "u2"}]))),
        ])
        .expect("split");
        assert_eq!(
            patch.members,
            vec![MemberChange::Add(added(&["u1"])), MemberChange::Remove(ids_of(&["u2"]))]
        );
    }

    #[test]
    fn remove_of_members_without_a_value_removes_all() {
        for value in [None, Some(Value::Null)] {
            let patch = split(vec![op("remove", Some("members"), value)]).expect("split");
            assert_eq!(patch.members, vec![MemberChange::RemoveAll]);
        }
    }

    #[test]
    fn remove_with_an_empty_list_removes_nothing() {
        let patch = split(vec![op("remove", Some("members"), Some(json!([])))]).expect("split");
        assert_eq!(patch.members, vec![MemberChange::Remove(Vec::new())]);
    }

    #[test]
    fn a_single_member_object_and_a_bare_id_are_accepted() {
        let patch = split(vec![
            op("add", Some("members"), Some(json!({"value": "u1"}))),
            op("add", Some("members"), Some(json!("u2"))),
        ])
        .expect("split");
        assert_eq!(
            patch.members,
            vec![MemberChange::Add(added(&["u1"])), MemberChange::Add(added(&["u2"]))]
        );
    }

    #[test]
    fn pathless_objects_give_up_their_members() {
        let patch = split(vec![
            op(
                "add",
                None,
                Some(json!({"members": [{"value": "u1"}], "displayName": "A"})),
            ),
            op(
                "replace",
                None,
                Some(json!({GROUP_SCHEMA_ID: {"Members": [{"value": "u2"}]}, "externalId": "x"})),
            ),
        ])
        .expect("split");
        assert_eq!(
            patch.members,
            vec![
                MemberChange::Add(added(&["u1"])),
                MemberChange::RemoveAll,
                MemberChange::Add(added(&["u2"])),
            ]
        );
        assert_eq!(
            patch.document,
            vec![
                op("add", None, Some(json!({"displayName": "A"}))),
                op("replace", None, Some(json!({GROUP_SCHEMA_ID: {}, "externalId": "x"}))),
            ]
        );
    }

    #[test]
    fn urn_qualified_members_path_is_members() {
        let path = format!("{GROUP_SCHEMA_ID}:members");
        let patch = split(vec![op("add", Some(&path), Some(json!([{"value": "u1"}])))]).expect("split");
        assert_eq!(patch.members, vec![MemberChange::Add(added(&["u1"]))]);
    }

    #[test]
    fn member_sub_attributes_cannot_be_changed_in_place() {
        for (kind, path) in [
            ("replace", r#"members[value eq "u1"].display"#),
            ("add", "members.value"),
            ("remove", "members.display"),
            ("replace", r#"members[value eq "u1"]"#),
        ] {
            let err = split(vec![op(kind, Some(path), Some(json!("x")))]).expect_err(path);
            assert_eq!(err.scim_type, Some(ScimType::Mutability), "{path}");
        }
        let err = split(vec![op("add", None, Some(json!({"members.value": "x"})))]).expect_err("dotted key");
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn members_without_a_value_are_invalid_value() {
        for value in [json!([{"display": "Bob"}]), json!([{"value": ""}]), json!([17])] {
            let err = split(vec![op("add", Some("members"), Some(value.clone()))]).expect_err("no value");
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{value}");
        }
    }

    #[test]
    fn other_paths_are_left_to_the_document() {
        let rename = op("replace", Some("displayName"), Some(json!("B")));
        let patch = split(vec![rename.clone()]).expect("split");
        assert_eq!(patch.document, vec![rename]);
        let err = split(vec![op("add", Some("members[value eq"), Some(json!([])))]).expect_err("malformed");
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }
}
