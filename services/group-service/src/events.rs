//! The events group-service records in the outbox with each write, in the
//! write's own transaction: group created, updated and deleted, and one
//! event per member added or removed.

use std::collections::HashMap;

use idmesh_api::timestamp;
use idmesh_proto::v1::{Event, EventType};
use serde_json::Value;
use time::OffsetDateTime;

use crate::entity::group;
use crate::members::Touched;

/// The table of group-service's outbox of events.
pub(crate) const OUTBOX_TABLE: &str = "group_event_outbox";

/// An event about `group` as it stands after the write, without a document.
fn about(event_type: EventType, group: &group::Model) -> Event {
    Event {
        directory_id: group.directory_id.clone(),
        time: Some(timestamp::to_proto(group.last_modified)),
        r#type: event_type.into(),
        resource_type: "Group".to_owned(),
        resource_id: group.id.clone(),
        version: group.version,
        ..Event::default()
    }
}

/// GROUP_CREATED or GROUP_UPDATED, with the group's document (which holds
/// no members: they are rows of their own, and travel as member events).
pub(crate) fn with_document(event_type: EventType, group: &group::Model, changed_attributes: Vec<String>) -> Event {
    let meta = scim::meta::Meta {
        resource_type: "Group",
        created: group.created,
        last_modified: group.last_modified,
        version: group.version,
        location: String::new(),
    };
    let resource_json = match &group.resource {
        Value::Object(doc) => idmesh_outbox::resource_json(doc, &group.id, &meta),
        _ => String::new(),
    };
    Event {
        resource_json,
        changed_attributes,
        ..about(event_type, group)
    }
}

/// GROUP_DELETED: no document, one version past the last.
pub(crate) fn deleted(group: &group::Model, now: OffsetDateTime) -> Event {
    Event {
        version: group.version + 1,
        time: Some(timestamp::to_proto(now)),
        ..about(EventType::GroupDeleted, group)
    }
}

/// One MEMBER_ADDED or MEMBER_REMOVED per member whose membership the
/// write changed, in the order the write first touched each. What one
/// write does in between is invisible to everyone else (it is one
/// transaction), so only the net change counts: a PUT that removes every
/// member and adds the same ones back changes nothing.
pub(crate) fn members(group: &group::Model, touched: Vec<Touched>) -> Vec<Event> {
    struct Net {
        order: usize,
        was_member: bool,
        is_member: bool,
    }
    let mut net: HashMap<String, Net> = HashMap::new();
    for (order, touch) in touched.into_iter().enumerate() {
        let (member_id, added) = match touch {
            Touched::Added(id) => (id, true),
            Touched::Removed(id) => (id, false),
        };
        net.entry(member_id)
            .or_insert(Net {
                order,
                // A row can only be removed if it was there, and only
                // added if it was not.
                was_member: !added,
                is_member: added,
            })
            .is_member = added;
    }
    let mut changed: Vec<(String, Net)> = net.into_iter().filter(|(_, n)| n.was_member != n.is_member).collect();
    changed.sort_by_key(|(_, n)| n.order);
    changed
        .into_iter()
        .map(|(member_id, n)| {
            let event_type = if n.is_member {
                EventType::MemberAdded
            } else {
                EventType::MemberRemoved
            };
            Event {
                member_id,
                ..about(event_type, group)
            }
        })
        .collect()
}

/// MEMBER_REMOVED from each group that `member_id` left because it was
/// deleted; `left` holds those groups' ids and new versions.
pub(crate) fn left(directory_id: &str, member_id: &str, left: Vec<(String, i64)>, now: OffsetDateTime) -> Vec<Event> {
    left.into_iter()
        .map(|(group_id, version)| Event {
            directory_id: directory_id.to_owned(),
            time: Some(timestamp::to_proto(now)),
            r#type: EventType::MemberRemoved.into(),
            resource_type: "Group".to_owned(),
            resource_id: group_id,
            version,
            member_id: member_id.to_owned(),
            ..Event::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> group::Model {
        let now = OffsetDateTime::UNIX_EPOCH;
        group::Model {
            id: "g".into(),
            directory_id: "d".into(),
            display_name: "G".into(),
            display_name_folded: "g".into(),
            external_id: None,
            resource: Value::Null,
            resource_folded: Value::Null,
            member_count: 0,
            version: 2,
            created: now,
            last_modified: now,
        }
    }

    fn summary(events: &[Event]) -> Vec<(EventType, &str)> {
        events
            .iter()
            .map(|e| (EventType::try_from(e.r#type).expect("a type"), e.member_id.as_str()))
            .collect()
    }

    #[test]
    fn only_the_net_change_of_each_member_becomes_an_event_in_first_touch_order() {
        use Touched::{Added, Removed};
        let touched = vec![
            // A PUT: every member out, then the new list in.
            Removed("kept".into()),
            Removed("gone".into()),
            Added("new".into()),
            Added("kept".into()),
            // Added and taken out again in the same write.
            Added("blink".into()),
            Removed("blink".into()),
        ];
        let events = members(&group(), touched);
        assert_eq!(
            summary(&events),
            [(EventType::MemberRemoved, "gone"), (EventType::MemberAdded, "new")]
        );
        assert!(events.iter().all(|e| e.version == 2 && e.resource_id == "g"));
    }
}
