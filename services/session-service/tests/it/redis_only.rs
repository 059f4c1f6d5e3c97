//! What only a shared store shows: replicas seeing each other's sessions
//! and revocations, failing closed while Redis is away, and Redis forgetting
//! what no longer matters.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use idmesh_api::timestamp;
use idmesh_proto::v1::{
    CheckSessionRequest, CheckTokenRequest, CreateSessionRequest, RevokeSessionRequest, RevokeUserSessionsRequest,
    SessionStatus, WatchRevocationsRequest,
};
use idmesh_testkit::unused_addr;
use session_service::Config;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::{Backend, ManualClock, TestService, new_user};

fn create_request((directory_id, user_id): &(String, String), ttl: Duration) -> CreateSessionRequest {
    CreateSessionRequest {
        directory_id: directory_id.clone(),
        user_id: user_id.clone(),
        ttl: Some(prost_types::Duration {
            seconds: ttl.as_secs() as i64,
            nanos: 0,
        }),
        attributes: HashMap::new(),
    }
}

async fn two_replicas_share_sessions_and_each_ones_watchers_see_the_others_revocations(backend: Backend) {
    let clock = ManualClock::new();
    let config = backend.config();
    let one = TestService::start(config.clone(), &clock).await;
    let two = TestService::start(config, &clock).await;
    let (mut via_one, mut via_two) = (one.client(), two.client());
    let user = new_user();

    let session = via_one
        .create_session(create_request(&user, Duration::from_secs(3600)))
        .await
        .expect("CreateSession succeeds")
        .into_inner();
    let checked = via_two
        .check_session(CheckSessionRequest {
            session_id: session.id.clone(),
        })
        .await
        .expect("CheckSession succeeds")
        .into_inner();
    assert_eq!(checked.status(), SessionStatus::Valid, "created on one, valid on two");

    let mut watching_two = via_two
        .watch_revocations(WatchRevocationsRequest::default())
        .await
        .expect("a watch")
        .into_inner();
    watching_two
        .next()
        .await
        .expect("a first message")
        .expect("not an error");

    let started = Instant::now();
    via_one
        .revoke_session(RevokeSessionRequest {
            session_id: session.id.clone(),
            reason: "signed out".into(),
        })
        .await
        .expect("RevokeSession succeeds");
    let message = tokio::time::timeout(Duration::from_secs(5), watching_two.next())
        .await
        .expect("the watcher on two hears of it")
        .expect("the watch goes on")
        .expect("not an error");
    tracing::info!(latency = ?started.elapsed(), "revoked on one, seen on two");
    assert_eq!(message.events.len(), 1);
    assert_eq!(message.events[0].session_id, session.id);

    let checked = via_two
        .check_session(CheckSessionRequest {
            session_id: session.id.clone(),
        })
        .await
        .expect("CheckSession succeeds")
        .into_inner();
    assert_eq!(
        checked.status(),
        SessionStatus::Revoked,
        "revoked on one, revoked on two"
    );
}

#[tokio::test]
async fn two_replicas_on_one_redis_share_sessions_and_revocations() {
    two_replicas_share_sessions_and_each_ones_watchers_see_the_others_revocations(Backend::Redis).await;
}

#[tokio::test]
async fn two_replicas_on_one_redis_cluster_share_sessions_and_revocations() {
    two_replicas_share_sessions_and_each_ones_watchers_see_the_others_revocations(Backend::RedisCluster).await;
}

/// Every call that needs Redis answers UNAVAILABLE, quickly; checks above all
/// never answer a status.
async fn assert_unavailable(service: &TestService, session_id: &str) {
    let mut client = service.client();
    let user = new_user();
    let started = Instant::now();
    let check = client
        .check_session(CheckSessionRequest {
            session_id: session_id.to_owned(),
        })
        .await;
    assert_eq!(
        check.map_err(|s| s.code()).err(),
        Some(Code::Unavailable),
        "CheckSession"
    );
    let elapsed = started.elapsed();
    tracing::info!(?elapsed, "CheckSession answered UNAVAILABLE");
    assert!(elapsed < Duration::from_secs(5), "fails fast: {elapsed:?}");
    let token = client
        .check_token(CheckTokenRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
            issued_at: Some(timestamp::to_proto(time::OffsetDateTime::now_utc())),
        })
        .await;
    assert_eq!(token.map_err(|s| s.code()).err(), Some(Code::Unavailable), "CheckToken");
    let create = client
        .create_session(create_request(&user, Duration::from_secs(60)))
        .await;
    assert_eq!(
        create.map_err(|s| s.code()).err(),
        Some(Code::Unavailable),
        "CreateSession"
    );
    let revoke = client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            directory_id: user.0,
            user_id: user.1,
            reason: String::new(),
        })
        .await;
    assert_eq!(
        revoke.map_err(|s| s.code()).err(),
        Some(Code::Unavailable),
        "RevokeUserSessions"
    );
    let mut watch = client
        .watch_revocations(WatchRevocationsRequest::default())
        .await
        .expect("a watch")
        .into_inner();
    let ended = watch.next().await.expect("an item").expect_err("an error");
    assert_eq!(ended.code(), Code::Unavailable, "WatchRevocations");
}

#[tokio::test]
async fn checks_fail_closed_when_redis_is_unreachable() {
    let clock = ManualClock::new();
    let config = Config::new(
        Some(format!("redis://127.0.0.1:{}", unused_addr().port())),
        directory_service::testing::shared().identity(),
    );
    let service = TestService::start(config, &clock).await;
    assert_unavailable(&service, &"0".repeat(64)).await;
}

#[tokio::test]
async fn checks_fail_closed_when_no_cluster_node_is_reachable() {
    let clock = ManualClock::new();
    let (a, b) = (unused_addr().port(), unused_addr().port());
    let config = Config::new(
        Some(format!("redis+cluster://127.0.0.1:{a},127.0.0.1:{b}")),
        directory_service::testing::shared().identity(),
    );
    let service = TestService::start(config, &clock).await;
    assert_unavailable(&service, &"0".repeat(64)).await;
}

#[tokio::test]
async fn a_malformed_redis_url_stops_the_service_from_starting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let config = Config::new(
        Some("http://127.0.0.1:6379".to_owned()),
        directory_service::testing::shared().identity(),
    );
    let err = session_service::serve(listener, config, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("not a Redis URL");
    assert!(err.to_string().contains("invalid Redis URL"), "{err}");
}

/// A redis-server of the test's own, on a port of its own; killed when dropped.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/ensure-services installs it)");
        OwnRedis { child }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_replica_started_before_redis_serves_once_redis_is_up_and_fails_closed_when_it_goes() {
    let clock = ManualClock::new();
    let port = unused_addr().port();
    let service = TestService::start(
        Config::new(
            Some(format!("redis://127.0.0.1:{port}")),
            directory_service::testing::shared().identity(),
        ),
        &clock,
    )
    .await;
    let mut client = service.client();
    let user = new_user();
    assert_unavailable(&service, &"0".repeat(64)).await;

    let redis = OwnRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    let session = loop {
        match client
            .create_session(create_request(&user, Duration::from_secs(3600)))
            .await
        {
            Ok(session) => break session.into_inner(),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("session-service does not recover: {status:?}"),
        }
    };
    // The log follower recovered too: a watcher hears of revocations.
    let mut watch = client
        .watch_revocations(WatchRevocationsRequest::default())
        .await
        .expect("a watch")
        .into_inner();
    watch.next().await.expect("a first message").expect("not an error");
    client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
            reason: "deprovisioned".into(),
        })
        .await
        .expect("RevokeUserSessions succeeds");
    let heard = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the watcher hears of it")
        .expect("the watch goes on")
        .expect("not an error");
    assert_eq!(heard.events[0].reason, "deprovisioned");
    let checked = client
        .check_session(CheckSessionRequest {
            session_id: session.id.clone(),
        })
        .await
        .expect("CheckSession succeeds")
        .into_inner();
    assert_eq!(checked.status(), SessionStatus::Revoked);

    let other = client
        .create_session(create_request(&new_user(), Duration::from_secs(3600)))
        .await
        .expect("CreateSession succeeds")
        .into_inner();
    drop(redis);
    // Valid a moment ago; with Redis gone, not valid but unavailable.
    assert_unavailable(&service, &other.id).await;
}

/// What `grpc.health.v1` says of session-service and of the server as a
/// whole at `service` (asked one after the other: a change can fall between).
async fn health(service: &TestService) -> Vec<ServingStatus> {
    let channel = idmesh_runtime::grpc::lazy_channel(&service.addr.to_string()).expect("a valid address");
    let mut client = HealthClient::new(channel);
    let mut statuses = Vec::new();
    for name in ["idmesh.v1.SessionService", ""] {
        let answer = client
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .expect("the health service answers");
        statuses.push(answer.into_inner().status());
    }
    statuses
}

/// Polls health until the service and the server both report `wanted`, for
/// at most a few readiness intervals.
async fn wait_for_health(service: &TestService, wanted: ServingStatus) {
    let deadline = Instant::now() + idmesh_runtime::grpc::READINESS_INTERVAL * 10;
    loop {
        let now = health(service).await;
        if now == [wanted, wanted] {
            return;
        }
        assert!(Instant::now() < deadline, "health stays {now:?}, not {wanted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_is_not_serving_while_redis_is_unreachable_and_serving_while_it_answers() {
    let clock = ManualClock::new();
    let port = unused_addr().port();
    let service = TestService::start(
        Config::new(
            Some(format!("redis://127.0.0.1:{port}")),
            directory_service::testing::shared().identity(),
        ),
        &clock,
    )
    .await;
    wait_for_health(&service, ServingStatus::NotServing).await;

    let redis = OwnRedis::start(port);
    wait_for_health(&service, ServingStatus::Serving).await;
    drop(redis);
    wait_for_health(&service, ServingStatus::NotServing).await;
}

#[tokio::test]
async fn a_reachable_redis_node_or_cluster_is_serving() {
    let clock = ManualClock::new();
    for backend in [Backend::Redis, Backend::RedisCluster] {
        let service = TestService::start(backend.config(), &clock).await;
        wait_for_health(&service, ServingStatus::Serving).await;
    }
}

#[tokio::test]
async fn the_in_process_store_is_always_serving() {
    let clock = ManualClock::new();
    let service = TestService::start(Backend::InProcess.config(), &clock).await;
    assert_eq!(health(&service).await, [ServingStatus::Serving; 2]);
}

#[tokio::test]
async fn redis_forgets_sessions_and_watermarks_only_after_they_stop_mattering() {
    let clock = ManualClock::new();
    let service = TestService::start(Backend::Redis.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let hour = Duration::from_secs(3600);
    let short = client
        .create_session(create_request(&user, hour))
        .await
        .expect("CreateSession succeeds")
        .into_inner();
    let long = client
        .create_session(create_request(&user, 2 * hour))
        .await
        .expect("CreateSession succeeds")
        .into_inner();

    let url = Backend::Redis.redis_url().expect("a Redis URL");
    let mut redis = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("a Redis connection");
    let prefix = &service.config.key_prefix;
    let tag = &short.id[..32];
    let mut pttl = |key: String| -> Duration {
        let millis: i64 = redis::cmd("PTTL").arg(&key).query(&mut redis).expect("PTTL");
        assert!(millis > 0, "{key} exists and expires: {millis}");
        Duration::from_millis(millis as u64)
    };
    let day = Duration::from_secs(24 * 3600);
    let within = |actual: Duration, expected: Duration| {
        assert!(
            actual <= expected && actual + Duration::from_secs(60) > expected,
            "{actual:?} is not about {expected:?}"
        );
    };
    within(pttl(format!("{prefix}:{{{tag}}}:session:{}", short.id)), hour + day);
    within(pttl(format!("{prefix}:{{{tag}}}:session:{}", long.id)), 2 * hour + day);
    within(pttl(format!("{prefix}:{{{tag}}}:sessions")), 2 * hour);

    client
        .revoke_user_sessions(RevokeUserSessionsRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
            reason: "deprovisioned".into(),
        })
        .await
        .expect("RevokeUserSessions succeeds");
    within(pttl(format!("{prefix}:{{{tag}}}:watermark")), 30 * day);
    // Revoking neither drops a session early nor makes one immortal.
    within(pttl(format!("{prefix}:{{{tag}}}:session:{}", long.id)), 2 * hour + day);
}

/// Revoking a user raises the watermark in one step and marks the user's
/// sessions in batches after it; a session the batches have not reached
/// yet (or never reach, when Redis fails in between) is revoked all the
/// same.
#[tokio::test]
async fn a_session_created_before_its_users_watermark_is_revoked_before_a_batch_marks_it() {
    let clock = ManualClock::new();
    let service = TestService::start(Backend::Redis.config(), &clock).await;
    let mut client = service.client();
    let user = new_user();
    let session = client
        .create_session(create_request(&user, Duration::from_secs(3600)))
        .await
        .expect("CreateSession succeeds")
        .into_inner();
    clock.advance(Duration::from_secs(60));

    // What revoke_user.lua does before any batch runs.
    let url = Backend::Redis.redis_url().expect("a Redis URL");
    let mut redis = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("a Redis connection");
    let watermark = format!("{}:{{{}}}:watermark", service.config.key_prefix, &session.id[..32]);
    let at = clock.now().unix_timestamp_nanos() / 1_000;
    let _: () = redis::cmd("HSET")
        .arg(&watermark)
        .arg("at")
        .arg(at.to_string())
        .arg("reason")
        .arg("deprovisioned")
        .query(&mut redis)
        .expect("HSET");

    let checked = client
        .check_session(CheckSessionRequest {
            session_id: session.id.clone(),
        })
        .await
        .expect("CheckSession succeeds")
        .into_inner();
    assert_eq!(checked.status(), SessionStatus::Revoked);
    let revocation = checked.session.and_then(|s| s.revocation).expect("a revocation");
    assert_eq!(
        (revocation.reason.as_str(), revocation.revoked_at),
        ("deprovisioned", Some(timestamp::to_proto(clock.now())))
    );
    let listed = client
        .list_user_sessions(idmesh_proto::v1::ListUserSessionsRequest {
            directory_id: user.0.clone(),
            user_id: user.1.clone(),
        })
        .await
        .expect("ListUserSessions succeeds")
        .into_inner()
        .sessions;
    assert!(listed.is_empty(), "not live: {listed:?}");
    clock.advance(Duration::from_secs(60));
    let revoked = client
        .revoke_session(RevokeSessionRequest {
            session_id: session.id.clone(),
            reason: "signed out".into(),
        })
        .await
        .expect("RevokeSession succeeds")
        .into_inner();
    let first = revoked.session.and_then(|s| s.revocation).expect("a revocation");
    assert_eq!(first.reason, "deprovisioned", "the user's revocation came first");
}
