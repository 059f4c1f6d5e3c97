//! The change stream end to end, on PostgreSQL and SQLite: users and groups
//! written through SCIM at the gateway, their events read from
//! events-service over gRPC (ListEvents, WatchEvents).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use idmesh::Target;
use idmesh_proto::v1::event_service_client::EventServiceClient;
use idmesh_proto::v1::{
    Event, EventType, IssueTokenRequest, ListEventsRequest, RevokeTokenRequest, WatchEventsRequest,
    watch_events_response,
};
use idmesh_runtime::auth::AuthChannel;
use idmesh_tests::{ScratchDatabase, TestMesh, both_backends, patch_op};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

type Events = EventServiceClient<AuthChannel>;

/// How long a test waits for events-service to sequence what was written.
const SETTLE: Duration = Duration::from_secs(15);

/// Every event of the directory, oldest first, paging forwards.
async fn all_events(events: &mut Events, directory_id: &str) -> Vec<Event> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = events
            .list_events(ListEventsRequest {
                directory_id: directory_id.to_owned(),
                page_size: 7,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListEvents")
            .into_inner();
        all.extend(page.events);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Waits until the directory's log holds `count` events and returns them.
async fn settled(events: &mut Events, directory_id: &str, count: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let all = all_events(events, directory_id).await;
        if all.len() >= count {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} events sequenced: {:?}",
            all.len(),
            summary(&all)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn event_type(event: &Event) -> EventType {
    EventType::try_from(event.r#type).expect("a known event type")
}

fn summary(events: &[Event]) -> Vec<(EventType, &str)> {
    events.iter().map(|e| (event_type(e), e.resource_id.as_str())).collect()
}

/// Sequence numbers run 1, 2, 3, … with no gap.
fn assert_gap_free(events: &[Event]) {
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    let expected: Vec<i64> = (1..=i64::try_from(events.len()).expect("few events")).collect();
    assert_eq!(sequences, expected, "the log has a gap or a duplicate");
}

fn resource(event: &Event) -> Value {
    serde_json::from_str(&event.resource_json).expect("the resource is JSON")
}

both_backends!(
    a_scim_lifecycle_becomes_one_ordered_log_with_documents_and_changed_attributes,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let mut events = mesh.events();

        // The directory's first event: its first token, issued with it.
        settled(&mut events, &dir, 1).await;
        let alice = scim.create_user("alice@example.com").await;
        let alice_id = alice["id"].as_str().expect("an id").to_owned();
        settled(&mut events, &dir, 2).await;
        let group = scim.create_group("Engineering", &[&alice_id]).await;
        let group_id = group["id"].as_str().expect("an id").to_owned();
        settled(&mut events, &dir, 4).await;
        let user_path = format!("/Users/{alice_id}");
        let group_path = format!("/Groups/{group_id}");
        let replace = |path: &str, value: Value| patch_op(json!([{"op": "replace", "path": path, "value": value}]));
        scim.patch(&user_path, replace("title", json!("Engineer")), 200).await;
        settled(&mut events, &dir, 5).await;
        scim.patch(&user_path, replace("active", json!(false)), 200).await;
        settled(&mut events, &dir, 6).await;
        scim.patch(&user_path, replace("active", json!(true)), 200).await;
        settled(&mut events, &dir, 7).await;
        let remove = patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}]));
        scim.patch(&group_path, remove, 200).await;
        settled(&mut events, &dir, 8).await;
        scim.patch(&group_path, replace("displayName", json!("Platform")), 200)
            .await;
        settled(&mut events, &dir, 9).await;
        scim.delete(&group_path, 204).await;
        settled(&mut events, &dir, 10).await;
        scim.delete(&user_path, 204).await;
        let whole = settled(&mut events, &dir, 11).await;

        assert_gap_free(&whole);
        assert_eq!(event_type(&whole[0]), EventType::TokenIssued);
        let log = &whole[1..];
        use EventType::*;
        let expected = [
            (UserCreated, alice_id.as_str()),
            (GroupCreated, group_id.as_str()),
            (MemberAdded, group_id.as_str()),
            (UserUpdated, alice_id.as_str()),
            (UserDeactivated, alice_id.as_str()),
            (UserReactivated, alice_id.as_str()),
            (MemberRemoved, group_id.as_str()),
            (GroupUpdated, group_id.as_str()),
            (GroupDeleted, group_id.as_str()),
            (UserDeleted, alice_id.as_str()),
        ];
        assert_eq!(summary(log), expected);

        // Each event carries the resource as the gateway serves it after the
        // change, its version and what changed.
        let created = resource(&log[0]);
        assert_eq!(created["userName"], "alice@example.com");
        assert_eq!(created["id"], alice_id.as_str());
        assert_eq!(created["meta"]["resourceType"], "User");
        assert_eq!(created["meta"]["version"], "W/\"1\"");
        assert!(
            created["meta"].get("location").is_none(),
            "only the gateway knows its URL"
        );
        assert_eq!(log[3].changed_attributes, ["title"]);
        assert_eq!(resource(&log[3])["title"], "Engineer");
        assert_eq!(log[4].changed_attributes, ["active"]);
        assert_eq!(resource(&log[4])["active"], false);
        let user_versions: Vec<i64> = log
            .iter()
            .filter(|e| e.resource_id == alice_id)
            .map(|e| e.version)
            .collect();
        assert_eq!(
            user_versions,
            [1, 2, 3, 4, 5],
            "a deletion is one version past the last"
        );
        assert!(log[9].resource_json.is_empty(), "a deletion carries no document");

        let group_created = resource(&log[1]);
        assert_eq!(group_created["displayName"], "Engineering");
        assert!(
            group_created.get("members").is_none(),
            "members travel as member events"
        );
        assert_eq!(log[2].member_id, alice_id);
        assert_eq!(log[6].member_id, alice_id);
        assert_eq!(log[7].changed_attributes, ["displayName"]);
        assert!(
            log.iter()
                .all(|e| e.directory_id == dir && !e.id.is_empty() && e.time.is_some()),
            "every event has its directory, an id and a time"
        );
        let ids: HashSet<&str> = log.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), log.len(), "event ids are unique");
    }
);

both_backends!(
    concurrent_writes_through_both_services_keep_each_resource_in_order_and_members_after_their_ends,
    |mesh: TestMesh| async move {
        const WRITERS: usize = 50;
        const USERS_PER_WRITER: usize = 2;
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let shared = scim.create_group("Everyone", &[]).await;
        let shared_id = shared["id"].as_str().expect("an id").to_owned();

        // Fifty writers at once, each creating users and putting each in
        // the shared group and in a new group of its own, then changing it:
        // user-service and group-service commit concurrently throughout.
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            let scim = scim.clone();
            let shared_id = shared_id.clone();
            writers.spawn(async move {
                for n in 0..USERS_PER_WRITER {
                    let user = scim.create_user(&format!("w{writer}-u{n}@example.com")).await;
                    let user_id = user["id"].as_str().expect("an id").to_owned();
                    let add = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": user_id}]}]));
                    scim.patch(&format!("/Groups/{shared_id}"), add, 200).await;
                    scim.create_group(&format!("team w{writer}-{n}"), &[&user_id]).await;
                    let title = patch_op(json!([{"op": "replace", "path": "title", "value": format!("t{n}")}]));
                    scim.patch(&format!("/Users/{user_id}"), title, 200).await;
                }
            });
        }
        while let Some(joined) = writers.join_next().await {
            joined.expect("a writer");
        }
        // The directory's token, 1 shared group, then per user: created,
        // added to the shared group, a group created with it as member (2
        // events), updated.
        let expected = 2 + WRITERS * USERS_PER_WRITER * 5;
        let mut events = mesh.events();
        let log = settled(&mut events, &dir, expected).await;
        assert_eq!(log.len(), expected, "no event is logged twice");
        assert_gap_free(&log);

        let mut created_at: HashMap<&str, i64> = HashMap::new();
        let mut versions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for event in &log {
            if matches!(event_type(event), EventType::UserCreated | EventType::GroupCreated) {
                created_at.insert(&event.resource_id, event.sequence);
            }
            versions.entry(&event.resource_id).or_default().push(event.version);
            if event_type(event) == EventType::MemberAdded {
                let group = created_at.get(event.resource_id.as_str());
                let member = created_at.get(event.member_id.as_str());
                assert!(
                    group.is_some() && member.is_some(),
                    "member added at {} before the creation of its group or member",
                    event.sequence
                );
            }
        }
        // One write's events share its version (a group created with a
        // member: GROUP_CREATED and MEMBER_ADDED); later writes come after.
        for (resource_id, versions) in &versions {
            assert!(
                versions.windows(2).all(|pair| pair[0] <= pair[1]),
                "the events of {resource_id} are out of commit order: versions {versions:?}"
            );
        }
        let shared_versions = &versions[shared_id.as_str()];
        assert_eq!(shared_versions.len(), 1 + WRITERS * USERS_PER_WRITER);
        assert!(
            shared_versions.windows(2).all(|pair| pair[0] < pair[1]),
            "each PATCH of the shared group is an event of its own, in commit order: {shared_versions:?}"
        );
    }
);

/// Reads `count` events (or heartbeats, if `heartbeats`) from a watch.
async fn next_messages(
    stream: &mut tonic::Streaming<idmesh_proto::v1::WatchEventsResponse>,
    count: usize,
) -> Vec<watch_events_response::Message> {
    let mut messages = Vec::new();
    while messages.len() < count {
        let message = tokio::time::timeout(SETTLE, stream.message())
            .await
            .expect("the watch answers in time")
            .expect("the watch goes on")
            .expect("the stream is open");
        messages.push(message.message.expect("a message"));
    }
    messages
}

fn as_event(message: watch_events_response::Message) -> Event {
    match message {
        watch_events_response::Message::Event(event) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn with_quick_heartbeats(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.event_heartbeat = Duration::from_millis(300);
    })
    .await
}

both_backends!(
    a_watch_resumed_from_its_last_sequence_misses_nothing_and_repeats_nothing,
    with_quick_heartbeats,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let mut events = mesh.events();
        for n in 0..3 {
            scim.create_user(&format!("before-{n}@example.com")).await;
        }
        let watcher = events.clone();
        let watch = |after_sequence: i64, types: Vec<EventType>| {
            let mut events = watcher.clone();
            let directory_id = dir.clone();
            async move {
                events
                    .watch_events(WatchEventsRequest {
                        directory_id,
                        after_sequence,
                        types: types.into_iter().map(Into::into).collect(),
                    })
                    .await
                    .expect("WatchEvents")
                    .into_inner()
            }
        };

        let mut stream = watch(0, Vec::new()).await;
        let first: Vec<Event> = next_messages(&mut stream, 2).await.into_iter().map(as_event).collect();
        assert_eq!(first.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
        drop(stream);

        // Written while nobody watches.
        for n in 0..3 {
            scim.create_user(&format!("after-{n}@example.com")).await;
        }
        // 1 is the directory's token, 2 to 4 the users before.
        settled(&mut events, &dir, 7).await;
        let mut stream = watch(2, Vec::new()).await;
        let rest: Vec<Event> = next_messages(&mut stream, 5).await.into_iter().map(as_event).collect();
        assert_eq!(rest.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);

        // Live: an event written now comes at once; then, while idle,
        // heartbeats that say how far the watch has got.
        let live = scim.create_user("live@example.com").await;
        let message = as_event(next_messages(&mut stream, 1).await.remove(0));
        assert_eq!(
            (message.sequence, message.resource_id.as_str()),
            (8, live["id"].as_str().expect("an id"))
        );
        match next_messages(&mut stream, 1).await.remove(0) {
            watch_events_response::Message::Heartbeat(heartbeat) => assert_eq!(heartbeat.sequence, 8),
            other => panic!("expected a heartbeat while idle, got {other:?}"),
        }

        // A filtered watch passes over what it leaves out, and its
        // heartbeats say so, so a consumer can resume after them.
        let user_id = live["id"].as_str().expect("an id");
        let title = patch_op(json!([{"op": "replace", "path": "title", "value": "Boss"}]));
        scim.patch(&format!("/Users/{user_id}"), title, 200).await;
        settled(&mut events, &dir, 9).await;
        let mut updates = watch(0, vec![EventType::UserUpdated]).await;
        let update = as_event(next_messages(&mut updates, 1).await.remove(0));
        assert_eq!((update.sequence, event_type(&update)), (9, EventType::UserUpdated));
        scim.create_user("unwatched@example.com").await;
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            match next_messages(&mut updates, 1).await.remove(0) {
                watch_events_response::Message::Heartbeat(h) if h.sequence == 10 => break,
                watch_events_response::Message::Heartbeat(_) => {}
                other => panic!("a filtered watch sent what it filters out: {other:?}"),
            }
            assert!(tokio::time::Instant::now() < deadline, "the heartbeat never passed 10");
        }
    }
);

both_backends!(
    list_events_pages_forwards_and_backwards_from_a_sequence_or_a_time_and_by_type,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let mut events = mesh.events();
        for n in 0..5 {
            scim.create_user(&format!("u{n}@example.com")).await;
        }
        let group = scim.create_group("G", &[]).await;
        // The directory's token, five users, a group.
        let log = settled(&mut events, &dir, 7).await;
        let list = |request: ListEventsRequest| {
            let mut events = events.clone();
            async move { events.list_events(request).await }
        };
        let sequences = |events: &[Event]| events.iter().map(|e| e.sequence).collect::<Vec<_>>();

        let page = list(ListEventsRequest {
            directory_id: dir.clone(),
            after_sequence: 2,
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("ListEvents")
        .into_inner();
        assert_eq!(sequences(&page.events), [3, 4]);
        assert_eq!((page.oldest_sequence, page.latest_sequence), (1, 7));
        let next = list(ListEventsRequest {
            directory_id: dir.clone(),
            page_token: page.next_page_token,
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("the next page")
        .into_inner();
        assert_eq!(sequences(&next.events), [5, 6, 7]);
        assert!(next.next_page_token.is_empty(), "the walk reached the present");

        let newest_first = list(ListEventsRequest {
            directory_id: dir.clone(),
            descending: true,
            page_size: 4,
            ..Default::default()
        })
        .await
        .expect("backwards")
        .into_inner();
        assert_eq!(sequences(&newest_first.events), [7, 6, 5, 4]);
        let older = list(ListEventsRequest {
            directory_id: dir.clone(),
            page_token: newest_first.next_page_token,
            page_size: 4,
            ..Default::default()
        })
        .await
        .expect("further back")
        .into_inner();
        assert_eq!(sequences(&older.events), [3, 2, 1]);

        let since = log[3].time;
        let from_time = list(ListEventsRequest {
            directory_id: dir.clone(),
            since,
            ..Default::default()
        })
        .await
        .expect("from a time")
        .into_inner();
        assert_eq!(
            sequences(&from_time.events).first(),
            Some(&4),
            "starts at the first event at or after the time"
        );

        let groups_only = list(ListEventsRequest {
            directory_id: dir.clone(),
            types: vec![EventType::GroupCreated.into()],
            ..Default::default()
        })
        .await
        .expect("by type")
        .into_inner();
        assert_eq!(
            summary(&groups_only.events),
            [(EventType::GroupCreated, group["id"].as_str().expect("an id"))]
        );

        for (request, what) in [
            (
                ListEventsRequest {
                    page_token: "not-a-token".to_owned(),
                    ..Default::default()
                },
                "a bad page token",
            ),
            (
                ListEventsRequest {
                    page_size: 1_001,
                    ..Default::default()
                },
                "too large a page",
            ),
            (
                ListEventsRequest {
                    types: vec![99],
                    ..Default::default()
                },
                "an unknown type",
            ),
            (
                ListEventsRequest {
                    types: vec![EventType::UserCreated.into(); 33],
                    ..Default::default()
                },
                "too many types",
            ),
        ] {
            let request = ListEventsRequest {
                directory_id: dir.clone(),
                ..request
            };
            let status = list(request).await.expect_err(what);
            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        }
    }
);

async fn with_short_retention(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.event_retention = Duration::from_secs(1);
    })
    .await
}

both_backends!(
    a_sequence_number_older_than_retention_is_refused_with_cursor_expired,
    with_short_retention,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let mut events = mesh.events();
        scim.create_user("old@example.com").await;
        // The directory's token and the user.
        settled(&mut events, &dir, 2).await;
        // Wait for retention to remove it.
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let page = events
                .list_events(ListEventsRequest {
                    directory_id: dir.clone(),
                    after_sequence: 2,
                    ..Default::default()
                })
                .await
                .expect("after the removed ones is still kept")
                .into_inner();
            if page.oldest_sequence == 0 && page.latest_sequence == 2 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "retention never removed the event"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = events
            .list_events(ListEventsRequest {
                directory_id: dir.clone(),
                ..Default::default()
            })
            .await
            .expect_err("events 1.. are gone");
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo");
        assert_eq!(info.reason, events_service::CURSOR_EXPIRED);
        assert_eq!(info.metadata.get("resume_after").map(String::as_str), Some("2"));

        let mut stream = events
            .watch_events(WatchEventsRequest {
                directory_id: dir.clone(),
                ..Default::default()
            })
            .await
            .expect("WatchEvents")
            .into_inner();
        let status = tokio::time::timeout(SETTLE, stream.message())
            .await
            .expect("the watch answers in time")
            .expect_err("the watch is refused");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status
                .get_error_details()
                .error_info()
                .map(|i| i.reason.clone())
                .as_deref(),
            Some(events_service::CURSOR_EXPIRED)
        );
    }
);

both_backends!(
    events_written_while_events_service_is_down_are_sequenced_when_it_starts,
    TestMesh::without_events_service,
    |(mesh, database_url): (TestMesh, String)| async move {
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let user = scim.create_user("early@example.com").await;
        let user_id = user["id"].as_str().expect("an id").to_owned();
        let group = scim.create_group("Early", &[&user_id]).await;

        // events-service starts later, in a process of its own, and finds
        // all four events waiting in the three outboxes at once: its first
        // pass must log the user before the member event that needs it.
        let started = mesh.start_events_service(&database_url).await;
        let mut events = EventServiceClient::new(mesh.channel_as(started.addr, &mesh.admin_key));
        let log = settled(&mut events, &dir, 4).await;
        assert_eq!(
            event_type(&log[0]),
            EventType::TokenIssued,
            "the directory's first token"
        );
        let group_id = group["id"].as_str().expect("an id");
        assert_eq!(
            summary(&log[1..]),
            [
                (EventType::UserCreated, user_id.as_str()),
                (EventType::GroupCreated, group_id),
                (EventType::MemberAdded, group_id),
            ]
        );
        started.stop().await;
    }
);

both_backends!(
    issuing_and_revoking_a_token_are_events_that_never_carry_its_secret,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let dir = scim.directory_id.clone();
        let mut directories = mesh.directories();
        let issued = directories
            .issue_token(IssueTokenRequest {
                directory_id: dir.clone(),
                description: "rotation".to_owned(),
                expires_at: None,
            })
            .await
            .expect("IssueToken")
            .into_inner();
        let token_id = issued.token.expect("a token").id;
        directories
            .revoke_token(RevokeTokenRequest {
                directory_id: dir.clone(),
                token_id: token_id.clone(),
            })
            .await
            .expect("RevokeToken");
        let mut events = mesh.events();
        let log = settled(&mut events, &dir, 3).await;
        assert_gap_free(&log);
        let tokens: Vec<(EventType, &str, i64)> = log[1..]
            .iter()
            .map(|e| (event_type(e), e.resource_id.as_str(), e.version))
            .collect();
        assert_eq!(
            tokens,
            [
                (EventType::TokenIssued, token_id.as_str(), 1),
                (EventType::TokenRevoked, token_id.as_str(), 2),
            ]
        );
        assert!(log.iter().all(|e| e.resource_type == "Token"));
        let revoked = resource(&log[2]);
        assert_eq!(revoked["description"], "rotation");
        assert!(revoked["revoked_at"].is_string());
        assert!(
            log.iter()
                .all(|e| !e.resource_json.contains(&issued.secret) && !e.resource_json.contains("secret")),
            "a token event never carries its secret"
        );
    }
);
