//! The client against a real session-service over gRPC on loopback, on the
//! in-process store and on real Redis: revocations reach the local view,
//! a watch cut by a restart resumes without missing anything, a lost cursor
//! makes the client start over, and checks fail closed while the view is
//! not synced.

mod harness;

use std::time::Duration;

use idmesh_session_client::{Error, SessionCheck, SessionClient, TokenCheck, UserRef};
use time::OffsetDateTime;
use tonic::Code;

use crate::harness::{
    Backend, RedisKeys, Service, admin, create_session, eventually, new_user, quick_options, revoke_session,
    revoke_user, wait_synced,
};

/// How soon a revocation must show in the local view of a synced client.
const NOTIFIED_WITHIN: Duration = Duration::from_secs(1);

fn is_revoked(check: Option<SessionCheck>) -> bool {
    matches!(check, Some(SessionCheck::Revoked(_)))
}

async fn revocations_reach_the_local_view_within_a_second(backend: Backend) {
    let config = backend.config();
    let _keys = RedisKeys(config.clone());
    let service = Service::start(config).await;
    let mut grpc = service.grpc();
    let client = service.synced_client().await;
    let (alice, bob) = (new_user(), new_user());
    let alices = create_session(&mut grpc, &alice).await;
    let bobs = create_session(&mut grpc, &bob).await;
    let before_bobs_revocation = OffsetDateTime::now_utc();

    assert_eq!(client.check_session_locally(&alices), None, "never asked yet");
    for id in [&alices, &bobs] {
        let check = client.check_session(id).await.expect("CheckSession answers");
        assert!(check.is_valid(), "{check:?}");
        assert!(
            client.check_session_locally(id).is_some_and(|c| c.is_valid()),
            "answered in memory"
        );
    }
    let bobs_token = client.check_token(&bob, before_bobs_revocation).await;
    assert_eq!(bobs_token.expect("CheckToken answers"), TokenCheck::Valid);

    revoke_session(&mut grpc, &alices).await;
    let took = eventually(NOTIFIED_WITHIN, "alice's revoked session in the view", || {
        is_revoked(client.check_session_locally(&alices))
    })
    .await;
    tracing::info!(?took, "a session revocation reached the local view");

    revoke_user(&mut grpc, &bob).await;
    eventually(NOTIFIED_WITHIN, "bob's user revocation in the view", || {
        is_revoked(client.check_session_locally(&bobs))
    })
    .await;
    let token = client.check_token_locally(&bob, before_bobs_revocation);
    assert!(matches!(token, Some(TokenCheck::Revoked(_))), "{token:?}");
    let later = OffsetDateTime::now_utc() + Duration::from_secs(1);
    assert_eq!(client.check_token_locally(&bob, later), Some(TokenCheck::Valid));

    // A session created after the user's revocation is valid again.
    let bobs_new = create_session(&mut grpc, &bob).await;
    assert!(client.check_session(&bobs_new).await.expect("answers").is_valid());
    assert!(client.check_session_locally(&bobs_new).is_some_and(|c| c.is_valid()));
}

#[tokio::test]
async fn revocations_reach_the_local_view_within_a_second_in_process() {
    revocations_reach_the_local_view_within_a_second(Backend::InProcess).await;
}

#[tokio::test]
async fn revocations_reach_the_local_view_within_a_second_on_redis() {
    revocations_reach_the_local_view_within_a_second(Backend::Redis).await;
}

/// Two replicas on one Redis: the client watches through `one`, which is
/// stopped; revocations go through `two` meanwhile; `one` comes back on the
/// same address and the client resumes from its cursor.
#[tokio::test]
async fn a_client_cut_off_by_a_restart_resumes_and_misses_nothing_revoked_meanwhile() {
    let config = Backend::Redis.config();
    let _keys = RedisKeys(config.clone());
    let one = Service::start(config.clone()).await;
    let two = Service::start(config.clone()).await;
    let mut via_two = two.grpc();
    let client = one.synced_client().await;
    let (alice, bob, carol) = (new_user(), new_user(), new_user());
    let alices = create_session(&mut via_two, &alice).await;
    let bobs = create_session(&mut via_two, &bob).await;
    let carols = create_session(&mut via_two, &carol).await;
    let issued = OffsetDateTime::now_utc();
    for id in [&alices, &bobs, &carols] {
        assert!(client.check_session(id).await.expect("answers").is_valid());
    }
    assert_eq!(
        client.check_token(&bob, issued).await.expect("answers"),
        TokenCheck::Valid
    );

    let addr = one.addr;
    one.stop().await;
    eventually(Duration::from_secs(5), "the client to notice the watch ended", || {
        !client.is_synced()
    })
    .await;
    assert_eq!(
        client.check_session_locally(&carols),
        None,
        "no local VALID while not synced"
    );
    assert_eq!(client.check_token_locally(&bob, issued), None);
    let check = client.check_session(&carols).await;
    assert!(matches!(check, Err(Error::Unavailable(_))), "fails closed: {check:?}");

    // More than one watch message's worth (the service batches 256) before
    // the revocations that matter: the resumed watch catches up over
    // several messages.
    let someone = new_user();
    for _ in 0..600 {
        revoke_user(&mut via_two, &someone).await;
    }
    revoke_session(&mut via_two, &alices).await;
    revoke_user(&mut via_two, &bob).await;
    let _one = Service::start_at(addr, config).await;
    wait_synced(&client).await;

    // Straight after syncing, from memory: what was revoked while the
    // client was away is revoked, and what was not is still known valid.
    assert!(is_revoked(client.check_session_locally(&alices)));
    assert!(is_revoked(client.check_session_locally(&bobs)));
    assert!(matches!(
        client.check_token_locally(&bob, issued),
        Some(TokenCheck::Revoked(_))
    ));
    assert!(
        client.check_session_locally(&carols).is_some_and(|c| c.is_valid()),
        "resumed, not started over: carol's answer is still kept"
    );
}

/// A restarted in-process session-service has forgotten everything, and
/// says so: the client's cursor is out of range. The client must drop what
/// it kept rather than answer from it.
#[tokio::test]
async fn a_client_whose_cursor_is_lost_starts_over_and_forgets_what_it_kept() {
    let config = Backend::InProcess.config();
    let service = Service::start(config.clone()).await;
    let mut grpc = service.grpc();
    let client = service.synced_client().await;
    let alice = new_user();
    let alices = create_session(&mut grpc, &alice).await;
    assert!(client.check_session(&alices).await.expect("answers").is_valid());

    let addr = service.addr;
    service.stop().await;
    let _restarted = Service::start_at(addr, config).await;
    eventually(Duration::from_secs(5), "the client to resync", || client.is_synced()).await;

    assert_eq!(client.check_session_locally(&alices), None, "the kept answer is gone");
    assert_eq!(
        client.check_session(&alices).await.expect("answers"),
        SessionCheck::Unknown,
        "the restarted service never heard of the session"
    );
}

/// On Redis, a cursor is lost when the log was trimmed past it while the
/// client was away.
#[tokio::test]
async fn a_client_away_longer_than_the_log_starts_over_on_redis() {
    let mut config = Backend::Redis.config();
    config.revocation_log_len = 10;
    let _keys = RedisKeys(config.clone());
    let one = Service::start(config.clone()).await;
    let two = Service::start(config.clone()).await;
    let mut via_two = two.grpc();
    let client = one.synced_client().await;
    let (alice, bob) = (new_user(), new_user());
    let alices = create_session(&mut via_two, &alice).await;
    let bobs = create_session(&mut via_two, &bob).await;
    for id in [&alices, &bobs] {
        assert!(client.check_session(id).await.expect("answers").is_valid());
    }

    let addr = one.addr;
    one.stop().await;
    revoke_session(&mut via_two, &alices).await;
    // Redis trims whole stream nodes (100 entries by default): go well past.
    let someone = new_user();
    for _ in 0..300 {
        revoke_user(&mut via_two, &someone).await;
    }
    let _one = Service::start_at(addr, config).await;
    wait_synced(&client).await;

    assert_eq!(
        client.check_session_locally(&alices),
        None,
        "started over: nothing kept"
    );
    assert_eq!(client.check_session_locally(&bobs), None);
    assert!(matches!(
        client.check_session(&alices).await.expect("answers"),
        SessionCheck::Revoked(_)
    ));
    assert!(client.check_session(&bobs).await.expect("answers").is_valid());
}

#[tokio::test]
async fn checks_fail_closed_while_session_service_was_never_reached() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    drop(listener);
    let client = SessionClient::connect(&addr.to_string(), admin(), quick_options()).expect("a valid address");
    let id = "0".repeat(64);
    assert!(!client.is_synced());
    assert_eq!(client.check_session_locally(&id), None);
    let check = client.check_session(&id).await;
    assert!(matches!(check, Err(Error::Unavailable(_))), "{check:?}");
    let token = client.check_token(&new_user(), OffsetDateTime::now_utc()).await;
    assert!(matches!(token, Err(Error::Unavailable(_))), "{token:?}");
}

#[tokio::test]
async fn invalid_checks_are_rejected_with_the_services_reason() {
    let service = Service::start(Backend::InProcess.config()).await;
    let client = service.synced_client().await;
    for result in [
        client.check_session("").await.map(|_| ()),
        client
            .check_token(&UserRef::new("", "user"), OffsetDateTime::now_utc())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(Error::Rejected(status)) => assert_eq!(status.code(), Code::InvalidArgument),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    assert_eq!(
        client.check_session("not a session id").await.expect("answers"),
        SessionCheck::Unknown
    );
    assert!(
        SessionClient::connect("http://[not an address", admin(), quick_options()).is_err(),
        "a malformed address"
    );
}
