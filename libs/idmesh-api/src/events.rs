//! Events as people and other programs read them: the names of event types
//! (`user.created`, `member.added`, …) and an event as one JSON object, as
//! `idmesh events tail` prints it.

use idmesh_proto::v1::{Event, EventType};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

/// `ErrorInfo.reason` of a sequence number older than the log's retention:
/// the consumer resyncs from the resources.
pub const CURSOR_EXPIRED: &str = "cursorExpired";

/// Every event type with its name.
const NAMES: [(EventType, &str); 14] = [
    (EventType::UserCreated, "user.created"),
    (EventType::UserUpdated, "user.updated"),
    (EventType::UserDeactivated, "user.deactivated"),
    (EventType::UserReactivated, "user.reactivated"),
    (EventType::UserDeleted, "user.deleted"),
    (EventType::GroupCreated, "group.created"),
    (EventType::GroupUpdated, "group.updated"),
    (EventType::GroupDeleted, "group.deleted"),
    (EventType::MemberAdded, "member.added"),
    (EventType::MemberRemoved, "member.removed"),
    (EventType::TokenIssued, "token.issued"),
    (EventType::TokenRevoked, "token.revoked"),
    (EventType::RoleAssigned, "role.assigned"),
    (EventType::RoleRemoved, "role.removed"),
];

/// The type's name, e.g. `user.created`; `unspecified` for none.
pub fn type_name(event_type: EventType) -> &'static str {
    NAMES
        .iter()
        .find(|(t, _)| *t == event_type)
        .map_or("unspecified", |(_, name)| name)
}

/// The type named `name`, if there is one.
pub fn parse_type(name: &str) -> Option<EventType> {
    NAMES.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
}

/// Every type's name, for error messages.
pub fn type_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(_, name)| *name)
}

/// The event as one JSON object: its fields by their proto names, the time
/// in RFC 3339, the type by its name, and the resource as a JSON object
/// (`null` for a deletion, a member or a role event). Fields a type does
/// not use (`changed_attributes`, `member_id`, `role`) are left out.
pub fn to_json(event: &Event) -> Value {
    let event_type = EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified);
    let time = event
        .time
        .as_ref()
        .and_then(crate::timestamp::from_proto)
        .and_then(|at| at.format(&Rfc3339).ok());
    let resource = serde_json::from_str::<Map<String, Value>>(&event.resource_json).map_or(Value::Null, Value::Object);
    let mut object = json!({
        "id": event.id,
        "directory_id": event.directory_id,
        "sequence": event.sequence,
        "time": time,
        "type": type_name(event_type),
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "version": event.version,
        "resource": resource,
    });
    if let Value::Object(fields) = &mut object {
        if !event.changed_attributes.is_empty() {
            fields.insert("changed_attributes".to_owned(), json!(event.changed_attributes));
        }
        if !event.member_id.is_empty() {
            fields.insert("member_id".to_owned(), json!(event.member_id));
        }
        if !event.role.is_empty() {
            fields.insert("role".to_owned(), json!(event.role));
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_name_that_parses_back() {
        for (event_type, name) in NAMES {
            assert_eq!(type_name(event_type), name);
            assert_eq!(parse_type(name), Some(event_type));
        }
        let known = NAMES.len() + 1;
        assert!(
            EventType::try_from(i32::try_from(known).expect("small")).is_err(),
            "a new event type needs a name here"
        );
        assert_eq!(parse_type("user.exploded"), None);
    }

    #[test]
    fn an_event_renders_with_its_resource_as_an_object_and_without_unused_fields() {
        let at = time::macros::datetime!(2026-12-06 10:00:00 UTC);
        let event = Event {
            id: "e1".into(),
            directory_id: "d1".into(),
            sequence: 7,
            time: Some(crate::timestamp::to_proto(at)),
            r#type: EventType::UserUpdated.into(),
            resource_type: "User".into(),
            resource_id: "u1".into(),
            version: 3,
            resource_json: r#"{"id":"u1","title":"Boss"}"#.into(),
            changed_attributes: vec!["title".into()],
            member_id: String::new(),
            role: String::new(),
        };
        assert_eq!(
            to_json(&event),
            json!({
                "id": "e1", "directory_id": "d1", "sequence": 7, "time": "2026-12-06T10:00:00Z",
                "type": "user.updated", "resource_type": "User", "resource_id": "u1", "version": 3,
                "resource": {"id": "u1", "title": "Boss"}, "changed_attributes": ["title"]
            })
        );
        let removed = Event {
            r#type: EventType::MemberRemoved.into(),
            resource_json: String::new(),
            changed_attributes: Vec::new(),
            member_id: "u2".into(),
            ..event
        };
        let rendered = to_json(&removed);
        assert_eq!(rendered["resource"], Value::Null);
        assert_eq!(rendered["member_id"], "u2");
        assert!(rendered.get("changed_attributes").is_none());
        assert!(rendered.get("role").is_none());
        let assigned = Event {
            r#type: EventType::RoleAssigned.into(),
            member_id: String::new(),
            role: "admin".into(),
            ..removed
        };
        let rendered = to_json(&assigned);
        assert_eq!(rendered["type"], "role.assigned");
        assert_eq!(rendered["role"], "admin");
        assert!(rendered.get("member_id").is_none());
    }
}
