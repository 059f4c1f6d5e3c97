//! What session-service does, whichever store holds the sessions: every
//! function here runs against the in-process store, one Redis node and a
//! Redis Cluster (see `main.rs`).

use std::collections::HashMap;
use std::time::Duration;

use idmesh_api::timestamp;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{
    CheckSessionRequest, CheckSessionResponse, CheckTokenRequest, CreateSessionRequest, ListUserSessionsRequest,
    RevocationEvent, RevokeSessionByHandleRequest, RevokeSessionRequest, RevokeUserSessionsRequest, Session,
    SessionStatus, TokenStatus, WatchRevocationsRequest, WatchRevocationsResponse,
};
use idmesh_runtime::auth::AuthChannel;
use time::OffsetDateTime;
use tokio_stream::StreamExt;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

use crate::harness::{Backend, ManualClock, TestService, new_user};

type Client = SessionServiceClient<AuthChannel>;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);

fn proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: duration.as_secs() as i64,
        nanos: duration.subsec_nanos() as i32,
    }
}

async fn create(client: &mut Client, (directory_id, user_id): &(String, String), ttl: Duration) -> Session {
    client
        .create_session(CreateSessionRequest {
            directory_id: directory_id.clone(),
            user_id: user_id.clone(),
            ttl: Some(proto_duration(ttl)),
            attributes: HashMap::new(),
        })
        .await
        .expect("CreateSession succeeds")
        .into_inner()
}

async fn check(client: &mut Client, session_id: &str) -> CheckSessionResponse {
    client
        .check_session(CheckSessionRequest {
            session_id: session_id.to_owned(),
        })
        .await
        .expect("CheckSession succeeds")
        .into_inner()
}

async fn status(client: &mut Client, session_id: &str) -> SessionStatus {
    check(client, session_id).await.status()
}

async fn revoke_user(client: &mut Client, (directory_id, user_id): &(String, String), reason: &str) -> i64 {
    client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            directory_id: directory_id.clone(),
            user_id: user_id.clone(),
            reason: reason.to_owned(),
        })
        .await
        .expect("RevokeUserSessions succeeds")
        .into_inner()
        .revoked_sessions
}

async fn token_status(
    client: &mut Client,
    (directory_id, user_id): &(String, String),
    issued_at: OffsetDateTime,
) -> TokenStatus {
    client
        .check_token(CheckTokenRequest {
            directory_id: directory_id.clone(),
            user_id: user_id.clone(),
            issued_at: Some(timestamp::to_proto(issued_at)),
        })
        .await
        .expect("CheckToken succeeds")
        .into_inner()
        .status()
}

async fn watch(client: &mut Client, cursor: &str) -> Result<Streaming<WatchRevocationsResponse>, Status> {
    client
        .watch_revocations(WatchRevocationsRequest {
            cursor: cursor.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn next_message(stream: &mut Streaming<WatchRevocationsResponse>) -> WatchRevocationsResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch message within 10 s")
        .expect("the watch goes on")
        .expect("a watch message, not an error")
}

/// The next `n` events of a watch, across as many messages as they come in.
async fn next_events(stream: &mut Streaming<WatchRevocationsResponse>, n: usize) -> Vec<RevocationEvent> {
    let mut events = Vec::new();
    while events.len() < n {
        let message = next_message(stream).await;
        assert!(
            !message.events.is_empty(),
            "only the first message of a watch may be empty"
        );
        assert_eq!(
            message.cursor,
            message.events.last().map(|e| e.cursor.clone()).unwrap_or_default()
        );
        events.extend(message.events);
    }
    assert_eq!(events.len(), n, "no more events than revocations");
    events
}

fn assert_invalid_value(result: Result<impl std::fmt::Debug, Status>, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(info.map(|i| i.reason), Some("invalidValue".to_owned()), "{what}");
}

pub async fn a_new_session_is_valid_and_carries_its_user_and_attributes(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let (directory_id, user_id) = new_user();
    let attributes = HashMap::from([
        ("ip".to_owned(), "192.0.2.7".to_owned()),
        ("device".to_owned(), "laptop".to_owned()),
    ]);
    let created = client
        .create_session(CreateSessionRequest {
            directory_id: directory_id.clone(),
            user_id: user_id.clone(),
            ttl: Some(proto_duration(HOUR)),
            attributes: attributes.clone(),
        })
        .await
        .expect("CreateSession succeeds")
        .into_inner();
    assert_eq!(created.created, Some(timestamp::to_proto(clock.now())));
    assert_eq!(created.expires_at, Some(timestamp::to_proto(clock.now() + HOUR)));
    assert_eq!(created.revocation, None);

    let checked = check(&mut client, &created.id).await;
    assert_eq!(checked.status(), SessionStatus::Valid);
    let session = checked.session.expect("the session");
    assert_eq!((&session.directory_id, &session.user_id), (&directory_id, &user_id));
    assert_eq!(session.attributes, attributes);
    assert_eq!(session, created);
}

pub async fn ids_never_issued_are_unknown_and_an_empty_id_is_invalid(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let session = create(&mut client, &new_user(), HOUR).await;
    // Same shape, other random part; and ids of other shapes.
    let forged = format!("{}{}", &session.id[..32], "0".repeat(32));
    for id in [forged.as_str(), "nope", &session.id.to_uppercase(), "{x}:session:y"] {
        let checked = check(&mut client, id).await;
        assert_eq!(checked.status(), SessionStatus::Unknown, "{id}");
        assert_eq!(checked.session, None);
    }
    assert_invalid_value(
        client.check_session(CheckSessionRequest::default()).await,
        "an empty session id",
    );
}

pub async fn a_session_expires_when_its_ttl_has_passed(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let session = create(&mut client, &new_user(), 10 * MINUTE).await;
    clock.advance(10 * MINUTE - Duration::from_micros(1));
    assert_eq!(status(&mut client, &session.id).await, SessionStatus::Valid);
    clock.advance(Duration::from_micros(1));
    let checked = check(&mut client, &session.id).await;
    assert_eq!(checked.status(), SessionStatus::Expired);
    assert_eq!(checked.session.map(|s| s.id), Some(session.id));
}

pub async fn a_revoked_session_says_why_and_when_and_keeps_its_first_revocation(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let session = create(&mut client, &user, HOUR).await;
    let other = create(&mut client, &user, HOUR).await;
    clock.advance(MINUTE);
    let revoked_at = clock.now();
    let revoked = client
        .revoke_session(RevokeSessionRequest {
            session_id: session.id.clone(),
            reason: "signed out".into(),
        })
        .await
        .expect("RevokeSession succeeds")
        .into_inner()
        .session
        .expect("the session");
    let revocation = revoked.revocation.clone().expect("a revocation");
    assert_eq!(revocation.reason, "signed out");
    assert_eq!(revocation.revoked_at, Some(timestamp::to_proto(revoked_at)));

    let checked = check(&mut client, &session.id).await;
    assert_eq!(checked.status(), SessionStatus::Revoked);
    assert_eq!(checked.session, Some(revoked));
    assert_eq!(
        status(&mut client, &other.id).await,
        SessionStatus::Valid,
        "only that session"
    );

    clock.advance(MINUTE);
    let again = client
        .revoke_session(RevokeSessionRequest {
            session_id: session.id.clone(),
            reason: "again".into(),
        })
        .await
        .expect("revoking again succeeds")
        .into_inner();
    assert_eq!(
        again.session.and_then(|s| s.revocation),
        Some(revocation),
        "the first revocation stands"
    );

    // Still revoked, not expired, after it would have expired.
    clock.advance(2 * HOUR);
    assert_eq!(status(&mut client, &session.id).await, SessionStatus::Revoked);
}

pub async fn unknown_and_expired_sessions_cannot_be_revoked(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let session = create(&mut client, &new_user(), MINUTE).await;
    let forged = format!("{}{}", &session.id[..32], "0".repeat(32));
    for id in [forged.as_str(), "nope"] {
        let err = client
            .revoke_session(RevokeSessionRequest {
                session_id: id.to_owned(),
                reason: String::new(),
            })
            .await
            .expect_err("no such session");
        assert_eq!(err.code(), Code::NotFound, "{id}");
    }
    clock.advance(MINUTE);
    let err = client
        .revoke_session(RevokeSessionRequest {
            session_id: session.id.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("an expired session");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(status(&mut client, &session.id).await, SessionStatus::Expired);
}

pub async fn revoking_a_user_revokes_exactly_their_live_sessions_and_counts_them(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let (alice, bob) = (new_user(), new_user());
    let short = create(&mut client, &alice, MINUTE).await;
    let signed_out = create(&mut client, &alice, HOUR).await;
    let live = [
        create(&mut client, &alice, HOUR).await,
        create(&mut client, &alice, 2 * HOUR).await,
    ];
    let bobs = create(&mut client, &bob, HOUR).await;
    client
        .revoke_session(RevokeSessionRequest {
            session_id: signed_out.id.clone(),
            reason: "signed out".into(),
        })
        .await
        .expect("RevokeSession succeeds");
    clock.advance(2 * MINUTE);

    assert_eq!(revoke_user(&mut client, &alice, "deprovisioned").await, 2);
    for session in &live {
        let checked = check(&mut client, &session.id).await;
        assert_eq!(checked.status(), SessionStatus::Revoked);
        let revocation = checked.session.and_then(|s| s.revocation).expect("a revocation");
        assert_eq!(revocation.reason, "deprovisioned");
        assert_eq!(revocation.revoked_at, Some(timestamp::to_proto(clock.now())));
    }
    assert_eq!(status(&mut client, &short.id).await, SessionStatus::Expired);
    let first = check(&mut client, &signed_out.id)
        .await
        .session
        .and_then(|s| s.revocation);
    assert_eq!(first.map(|r| r.reason).as_deref(), Some("signed out"));
    assert_eq!(
        status(&mut client, &bobs.id).await,
        SessionStatus::Valid,
        "other users keep theirs"
    );

    assert_eq!(
        revoke_user(&mut client, &alice, "again").await,
        0,
        "nothing left to revoke"
    );
    let after = create(&mut client, &alice, HOUR).await;
    assert_eq!(
        status(&mut client, &after.id).await,
        SessionStatus::Valid,
        "a later session is not revoked"
    );
}

pub async fn tokens_issued_at_or_before_the_users_watermark_are_revoked(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let (alice, bob) = (new_user(), new_user());
    let issued = clock.now();
    assert_eq!(
        token_status(&mut client, &alice, issued).await,
        TokenStatus::Valid,
        "never revoked"
    );

    clock.advance(MINUTE);
    let watermark = clock.now();
    revoke_user(&mut client, &alice, "deprovisioned").await;
    let response = client
        .check_token(CheckTokenRequest {
            directory_id: alice.0.clone(),
            user_id: alice.1.clone(),
            issued_at: Some(timestamp::to_proto(issued)),
        })
        .await
        .expect("CheckToken succeeds")
        .into_inner();
    assert_eq!(response.status(), TokenStatus::Revoked);
    let revocation = response.revocation.expect("the watermark");
    assert_eq!(revocation.reason, "deprovisioned");
    assert_eq!(revocation.revoked_at, Some(timestamp::to_proto(watermark)));
    assert_eq!(
        token_status(&mut client, &alice, watermark).await,
        TokenStatus::Revoked,
        "at the watermark"
    );
    let after = watermark + Duration::from_micros(1);
    assert_eq!(
        token_status(&mut client, &alice, after).await,
        TokenStatus::Valid,
        "after it"
    );
    assert_eq!(
        token_status(&mut client, &bob, issued).await,
        TokenStatus::Valid,
        "other users"
    );

    clock.advance(MINUTE);
    revoke_user(&mut client, &alice, "deleted").await;
    assert_eq!(
        token_status(&mut client, &alice, after).await,
        TokenStatus::Revoked,
        "a new revocation raises it"
    );
}

pub async fn list_user_sessions_lists_live_sessions_soonest_expiring_first(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let (alice, bob) = (new_user(), new_user());
    let later = create(&mut client, &alice, 3 * HOUR).await;
    let sooner = create(&mut client, &alice, 2 * HOUR).await;
    let revoked = create(&mut client, &alice, HOUR).await;
    create(&mut client, &alice, MINUTE).await;
    create(&mut client, &bob, HOUR).await;
    client
        .revoke_session(RevokeSessionRequest {
            session_id: revoked.id.clone(),
            reason: String::new(),
        })
        .await
        .expect("RevokeSession succeeds");
    clock.advance(MINUTE);

    let list = |client: &mut Client| {
        let request = ListUserSessionsRequest {
            directory_id: alice.0.clone(),
            user_id: alice.1.clone(),
        };
        let mut client = client.clone();
        async move {
            let sessions = client
                .list_user_sessions(request)
                .await
                .expect("ListUserSessions succeeds");
            sessions.into_inner().sessions
        }
    };
    // Listed by handle, never by the id that is the session's secret.
    let listed = |session: &Session| Session {
        id: String::new(),
        ..session.clone()
    };
    assert_eq!(list(&mut client).await, vec![listed(&sooner), listed(&later)]);
    revoke_user(&mut client, &alice, "deprovisioned").await;
    assert_eq!(list(&mut client).await, vec![]);
}

pub async fn a_listed_handle_revokes_its_session_but_does_not_pass_as_its_id(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let session = create(&mut client, &user, HOUR).await;
    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
        })
        .await
        .expect("ListUserSessions")
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1);
    let handle = listed[0].handle.clone();
    assert!(listed[0].id.is_empty());
    assert_eq!(handle, session.handle);
    assert_ne!(handle, session.id);

    let checked = check(&mut client, &handle).await;
    assert_eq!(checked.status(), SessionStatus::Unknown, "a handle is not a session id");

    let revoked = client
        .revoke_session_by_handle(RevokeSessionByHandleRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
            handle: handle.clone(),
            reason: "signed out elsewhere".to_owned(),
        })
        .await
        .expect("RevokeSessionByHandle")
        .into_inner();
    assert_eq!(revoked.session.expect("the session").id, session.id);
    assert_eq!(check(&mut client, &session.id).await.status(), SessionStatus::Revoked);
    let again = client
        .revoke_session_by_handle(RevokeSessionByHandleRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
            handle,
            reason: String::new(),
        })
        .await
        .expect_err("a revoked session is no longer listed");
    assert_eq!(again.code(), Code::NotFound);
}

pub async fn invalid_requests_are_invalid_values(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let (directory_id, user_id) = new_user();
    let valid = CreateSessionRequest {
        directory_id: directory_id.clone(),
        user_id: user_id.clone(),
        ttl: Some(proto_duration(HOUR)),
        attributes: HashMap::new(),
    };
    let with = |change: &dyn Fn(&mut CreateSessionRequest)| {
        let mut request = valid.clone();
        change(&mut request);
        request
    };
    let cases: Vec<(&str, CreateSessionRequest)> = vec![
        ("no directory", with(&|r| r.directory_id.clear())),
        ("no user", with(&|r| r.user_id.clear())),
        ("a huge user id", with(&|r| r.user_id = "u".repeat(257))),
        ("no ttl", with(&|r| r.ttl = None)),
        ("a zero ttl", with(&|r| r.ttl = Some(proto_duration(Duration::ZERO)))),
        (
            "a negative ttl",
            with(&|r| r.ttl = Some(prost_types::Duration { seconds: -5, nanos: 0 })),
        ),
        (
            "negative nanos",
            with(&|r| r.ttl = Some(prost_types::Duration { seconds: 5, nanos: -1 })),
        ),
        (
            "a ttl over 30 days",
            with(&|r| r.ttl = Some(proto_duration(30 * 24 * HOUR + Duration::from_secs(1)))),
        ),
        (
            "an empty attribute name",
            with(&|r| r.attributes = HashMap::from([(String::new(), "x".into())])),
        ),
        (
            "65 attributes",
            with(&|r| r.attributes = (0..65).map(|i| (format!("k{i}"), String::new())).collect()),
        ),
        (
            "17 KiB of attributes",
            with(&|r| r.attributes = HashMap::from([("k".into(), "v".repeat(17 * 1024))])),
        ),
    ];
    for (what, request) in cases {
        assert_invalid_value(client.create_session(request).await, what);
    }
    assert!(
        client
            .create_session(with(&|r| r.ttl = Some(proto_duration(30 * 24 * HOUR))))
            .await
            .is_ok(),
        "30 days"
    );

    assert_invalid_value(
        client
            .revoke_user_sessions(RevokeUserSessionsRequest {
                directory_id: directory_id.clone(),
                user_id: user_id.clone(),
                reason: "r".repeat(1025),
            })
            .await,
        "a reason over 1024 bytes",
    );
    assert_invalid_value(
        client
            .check_token(CheckTokenRequest {
                directory_id,
                user_id,
                issued_at: None,
            })
            .await,
        "a token without issued_at",
    );
    assert_invalid_value(
        client.list_user_sessions(ListUserSessionsRequest::default()).await,
        "a list without user",
    );
}

pub async fn a_watch_starts_with_a_cursor_then_streams_each_revocation(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let session = create(&mut client, &user, HOUR).await;
    let mut stream = watch(&mut client, "").await.expect("a watch");
    let first = next_message(&mut stream).await;
    assert!(first.events.is_empty(), "nothing from before the watch: {first:?}");
    assert!(!first.cursor.is_empty());

    client
        .revoke_session(RevokeSessionRequest {
            session_id: session.id.clone(),
            reason: "signed out".into(),
        })
        .await
        .expect("RevokeSession succeeds");
    clock.advance(MINUTE);
    revoke_user(&mut client, &user, "deprovisioned").await;

    let events = next_events(&mut stream, 2).await;
    assert_eq!(
        (events[0].directory_id.as_str(), events[0].user_id.as_str()),
        (user.0.as_str(), user.1.as_str())
    );
    assert_eq!(events[0].session_id, session.id);
    assert_eq!(events[0].reason, "signed out");
    assert_eq!(events[0].revoked_at, Some(timestamp::to_proto(clock.now() - MINUTE)));
    assert_eq!(
        (events[1].session_id.as_str(), events[1].reason.as_str()),
        ("", "deprovisioned")
    );
    assert_eq!(events[1].revoked_at, Some(timestamp::to_proto(clock.now())));
    assert!(events[0].cursor.as_str() != events[1].cursor.as_str() && !events[0].cursor.is_empty());
}

pub async fn a_watcher_resuming_from_its_cursor_gets_what_it_missed_then_what_comes(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let mut stream = watch(&mut client, "").await.expect("a watch");
    let cursor = next_message(&mut stream).await.cursor;
    revoke_user(&mut client, &user, "one").await;
    let seen = next_events(&mut stream, 1).await;
    drop(stream);

    for reason in ["two", "three", "four"] {
        revoke_user(&mut client, &user, reason).await;
    }
    let mut resumed = watch(&mut client, &seen[0].cursor).await.expect("a watch");
    let missed = next_message(&mut resumed).await;
    let reasons: Vec<&str> = missed.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["two", "three", "four"],
        "the first message holds all it missed"
    );
    assert_eq!(missed.cursor, missed.events[2].cursor);
    revoke_user(&mut client, &user, "five").await;
    assert_eq!(next_events(&mut resumed, 1).await[0].reason, "five");

    // From the very first cursor: everything, in order.
    let mut replay = watch(&mut client, &cursor).await.expect("a watch");
    let all: Vec<String> = next_message(&mut replay)
        .await
        .events
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(all, ["one", "two", "three", "four", "five"]);
}

pub async fn a_burst_of_revocations_reaches_a_watcher_complete_and_in_order(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let mut stream = watch(&mut client, "").await.expect("a watch");
    next_message(&mut stream).await;
    const REVOCATIONS: usize = 500;
    for i in 0..REVOCATIONS {
        revoke_user(&mut client, &user, &i.to_string()).await;
    }
    let events = next_events(&mut stream, REVOCATIONS).await;
    let reasons: Vec<String> = events.iter().map(|e| e.reason.clone()).collect();
    let expected: Vec<String> = (0..REVOCATIONS).map(|i| i.to_string()).collect();
    assert_eq!(reasons, expected);
}

pub async fn malformed_and_future_cursors_are_invalid(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    for cursor in ["yesterday", "1-2-3", "-1"] {
        assert_invalid_value(watch(&mut client, cursor).await, cursor);
    }
    // Watches report errors in the stream: the call itself succeeds.
    let mut stream = watch(&mut client, "99999999999999-0").await.expect("a watch");
    let status = stream
        .next()
        .await
        .expect("an item")
        .expect_err("a cursor from the future");
    assert_eq!(status.code(), Code::InvalidArgument);
}

pub async fn a_cursor_older_than_the_log_is_out_of_range(backend: Backend) {
    let clock = ManualClock::new();
    let mut config = backend.config();
    config.revocation_log_len = 10;
    let service = TestService::start(config, &clock).await;
    let mut client = service.client();
    let user = new_user();
    let mut stream = watch(&mut client, "").await.expect("a watch");
    let cursor = next_message(&mut stream).await.cursor;
    revoke_user(&mut client, &user, "first").await;
    let first = next_events(&mut stream, 1).await.remove(0).cursor;
    drop(stream);
    // Redis trims whole stream nodes (100 entries by default), so go well past them.
    for _ in 0..300 {
        revoke_user(&mut client, &user, "more").await;
    }
    for old in [cursor, first] {
        let mut stream = watch(&mut client, &old).await.expect("a watch");
        let status = stream.next().await.expect("an item").expect_err("a cursor too old");
        assert_eq!(status.code(), Code::OutOfRange, "{old}: {status:?}");
    }
}

pub async fn shutting_down_ends_open_watches_with_unavailable(backend: Backend) {
    let clock = ManualClock::new();
    let service = TestService::start(backend.config(), &clock).await;
    let mut client = service.client();
    let mut stream = watch(&mut client, "").await.expect("a watch");
    next_message(&mut stream).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), service.stop());
    let (ended, stopped) = tokio::join!(stream.next(), stopped);
    stopped.expect("the service stops well before the drain timeout");
    let status = ended.expect("a last item").expect_err("the watch ends with an error");
    assert_eq!(status.code(), Code::Unavailable);
}

pub async fn a_session_beyond_the_users_limit_evicts_those_expiring_first_and_says_so(backend: Backend) {
    let clock = ManualClock::new();
    let mut config = backend.config();
    config.max_sessions_per_user = 3;
    let service = TestService::start(config, &clock).await;
    let mut client = service.client();
    let (alice, bob) = (new_user(), new_user());
    let first_to_expire = create(&mut client, &alice, HOUR).await;
    let kept = [
        create(&mut client, &alice, 3 * HOUR).await,
        create(&mut client, &alice, 2 * HOUR).await,
    ];
    let bobs = create(&mut client, &bob, MINUTE).await;
    let mut stream = watch(&mut client, "").await.expect("WatchRevocations");
    next_message(&mut stream).await;

    let newest = create(&mut client, &alice, MINUTE).await;
    let evicted = check(&mut client, &first_to_expire.id).await;
    assert_eq!(evicted.status(), SessionStatus::Revoked);
    let revocation = evicted.session.and_then(|s| s.revocation).expect("a revocation");
    assert_eq!(revocation.reason, "session limit reached");
    assert_eq!(revocation.revoked_at, Some(timestamp::to_proto(clock.now())));
    for session in kept.iter().chain([&newest, &bobs]) {
        assert_eq!(status(&mut client, &session.id).await, SessionStatus::Valid);
    }
    let events = next_events(&mut stream, 1).await;
    assert_eq!(
        (events[0].session_id.as_str(), events[0].reason.as_str()),
        (first_to_expire.id.as_str(), "session limit reached"),
        "watchers hear of the eviction"
    );

    // Expired sessions do not count: only three stay live after these.
    clock.advance(2 * MINUTE);
    let later = [
        create(&mut client, &alice, 4 * HOUR).await,
        create(&mut client, &alice, 4 * HOUR).await,
    ];
    assert_eq!(status(&mut client, &newest.id).await, SessionStatus::Expired);
    assert_eq!(
        status(&mut client, &kept[1].id).await,
        SessionStatus::Revoked,
        "two hours left"
    );
    for session in [&kept[0], &later[0], &later[1]] {
        assert_eq!(status(&mut client, &session.id).await, SessionStatus::Valid);
    }
    let listed = client
        .list_user_sessions(ListUserSessionsRequest {
            directory_id: alice.0.clone(),
            user_id: alice.1.clone(),
        })
        .await
        .expect("ListUserSessions succeeds")
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 3);
}

pub async fn revoking_a_user_with_more_sessions_than_a_batch_revokes_every_one(backend: Backend) {
    /// More than two of session-service's batches of 100.
    const SESSIONS: usize = 250;
    let clock = ManualClock::new();
    let mut config = backend.config();
    config.max_sessions_per_user = 1_000;
    let service = TestService::start(config, &clock).await;
    let mut client = service.client();
    let alice = new_user();
    let mut sessions = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        sessions.push(create(&mut client, &alice, HOUR + Duration::from_secs(i as u64 % 7)).await);
    }
    clock.advance(MINUTE);

    assert_eq!(revoke_user(&mut client, &alice, "deprovisioned").await, SESSIONS as i64);
    for session in &sessions {
        let checked = check(&mut client, &session.id).await;
        assert_eq!(checked.status(), SessionStatus::Revoked);
        let revocation = checked.session.and_then(|s| s.revocation).expect("a revocation");
        assert_eq!(revocation.reason, "deprovisioned");
    }
    let after = create(&mut client, &alice, HOUR).await;
    assert_eq!(
        status(&mut client, &after.id).await,
        SessionStatus::Valid,
        "a later session is not revoked"
    );
    assert_eq!(
        revoke_user(&mut client, &alice, "again").await,
        1,
        "only the later one is left"
    );
}
