//! Deactivating and deleting users store session revocations, and a stored
//! revocation reaches session-service however long it is away; so does a
//! deleted user's removal from its groups, to group-service.
//!
//! Each test runs on SQLite and on a PostgreSQL database of its own: the
//! outbox spans directories, so in the shared test database another test's
//! deliverer would deliver these rows to its own session-service. The
//! session-service is real, over gRPC, keeping sessions in its process.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idmesh_api::timestamp;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::user_service_server::{UserService, UserServiceServer};
use idmesh_proto::v1::{
    CheckSessionRequest, CheckTokenRequest, CreateGroupRequest, CreateSessionRequest, CreateUserRequest,
    DeleteUserRequest, GetRevocationBacklogRequest, GetUserRequest, ListMembersRequest, PatchUserRequest,
    ReplaceUserRequest, SessionStatus, TokenStatus,
};
use idmesh_runtime::auth::{self, AuthChannel};
use idmesh_runtime::clock::Clock;
use idmesh_testkit::{Backend, ScratchDatabase, unused_addr};
use scim::patch::PatchOpKind;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Request;

use crate::entity::session_revocation::{self, Column, Entity};
use crate::revocation::{Revocations, USER_DEACTIVATED, USER_DELETED};
use crate::service::UserApi;

/// A request from a caller with every scope, as the auth layer would pass
/// it on.
fn as_admin<T>(message: T) -> Request<T> {
    auth::with_caller(Request::new(message), auth::Principal::with_every_scope("test", "test"))
}

/// A migrated database of user-service on `database`.
pub(crate) async fn migrated(database: &ScratchDatabase) -> DatabaseConnection {
    let db = idmesh_store::connect(database.url()).await.expect("connect");
    idmesh_store::migrate::<crate::migration::Migrator>(&db)
        .await
        .expect("migrate");
    db
}

/// One test on both backends: `on_both!(name, |db| async move { … })`.
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        idmesh_testkit::on_both_backends!($name, migrated, $body);
    };
}

/// A clock that stands still until the test moves it.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    fn new() -> ManualClock {
        let now = OffsetDateTime::now_utc();
        ManualClock(Arc::new(Mutex::new(
            now.replace_microsecond(now.microsecond()).expect("a valid microsecond"),
        )))
    }

    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock lock")
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }

    fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || *now.lock().expect("clock lock"))
    }
}

/// user-service on `db`, revoking sessions through session-service at
/// `session_addr`, telling time by `clock`. No group-service answers: the
/// tests here that delete a user see its revocation stay stored.
fn user_service(db: &DatabaseConnection, session_addr: SocketAddr, clock: &ManualClock) -> (UserApi, Revocations) {
    user_service_with_groups(db, session_addr, "127.0.0.1:9".parse().expect("an address"), clock)
}

/// [`user_service`], removing deleted users from their groups through
/// group-service at `group_addr`.
fn user_service_with_groups(
    db: &DatabaseConnection,
    session_addr: SocketAddr,
    group_addr: SocketAddr,
    clock: &ManualClock,
) -> (UserApi, Revocations) {
    let directory = directory_service::testing::shared();
    let revocations = Revocations::new(
        db.clone(),
        directory.channel(session_addr),
        directory.channel(group_addr),
        clock.clock(),
    );
    let api = UserApi::new(db.clone(), clock.clock(), revocations.clone());
    (api, revocations)
}

/// Serves `api` over gRPC on a free port, until the guard is dropped.
async fn serve_users(api: UserApi) -> (SocketAddr, tokio_util::sync::DropGuard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    let shutdown = CancellationToken::new();
    let routes = tonic::service::Routes::new(UserServiceServer::new(api));
    let auth = directory_service::testing::shared()
        .identity()
        .authenticator()
        .expect("an authenticator");
    tokio::spawn(idmesh_runtime::grpc::serve(
        listener,
        routes,
        &[UserApi::SERVICE_NAME],
        auth,
        shutdown.clone(),
    ));
    (addr, shutdown.drop_guard())
}

/// A group-service on `addr` keeping groups in `database_url` and checking
/// members with the user-service at `user_addr`; it stops when the token is
/// cancelled.
async fn start_group_service(
    addr: SocketAddr,
    database_url: &str,
    user_addr: SocketAddr,
) -> (
    GroupServiceClient<AuthChannel>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind(addr).await.expect("the group-service port is free");
    let shutdown = CancellationToken::new();
    let config = group_service::Config {
        database_url: database_url.to_owned(),
        user_addr: user_addr.to_string(),
        identity: directory_service::testing::shared().identity(),
        limits: scim::Limits::DEFAULT,
    };
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            group_service::serve(listener, config, shutdown)
                .await
                .expect("group-service")
        }
    });
    (
        GroupServiceClient::new(directory_service::testing::shared().channel(addr)),
        shutdown,
        running,
    )
}

/// A session-service on `addr`, keeping sessions in its process; it stops
/// when the token is dropped.
async fn start_session_service(addr: SocketAddr) -> (SessionServiceClient<AuthChannel>, tokio_util::sync::DropGuard) {
    let listener = TcpListener::bind(addr).await.expect("the session-service port is free");
    let shutdown = CancellationToken::new();
    let directory = directory_service::testing::shared();
    let config = session_service::Config::new(None, directory.identity());
    tokio::spawn(session_service::serve(listener, config, shutdown.clone()));
    (
        SessionServiceClient::new(directory.channel(addr)),
        shutdown.drop_guard(),
    )
}

async fn create_user(api: &UserApi, directory_id: &str) -> String {
    let resource = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{}@example.com", uuid::Uuid::now_v7().simple()),
    });
    api.create_user(as_admin(CreateUserRequest {
        directory_id: directory_id.to_owned(),
        resource_json: resource.to_string(),
    }))
    .await
    .expect("CreateUser")
    .into_inner()
    .id
}

async fn patch(api: &UserApi, directory_id: &str, id: &str, op: &str, path: &str, value: Option<Value>) {
    api.patch_user(as_admin(PatchUserRequest {
        directory_id: directory_id.to_owned(),
        id: id.to_owned(),
        operations: vec![idmesh_api::patch::operation(
            PatchOpKind::parse(op).expect("a known op"),
            path,
            value.as_ref(),
        )],
        expected_version: None,
    }))
    .await
    .expect("PatchUser");
}

async fn deactivate(api: &UserApi, directory_id: &str, id: &str) {
    patch(api, directory_id, id, "replace", "active", Some(json!(false))).await;
}

/// The reasons of the revocations stored for a user, oldest first.
async fn stored_reasons(db: &DatabaseConnection, user_id: &str) -> Vec<String> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::Id)
        .all(db)
        .await
        .expect("read the outbox")
        .into_iter()
        .map(|row| row.reason)
        .collect()
}

async fn stored(db: &DatabaseConnection) -> Vec<session_revocation::Model> {
    Entity::find()
        .order_by_asc(Column::Id)
        .all(db)
        .await
        .expect("read the outbox")
}

async fn token_status(
    sessions: &mut SessionServiceClient<AuthChannel>,
    directory_id: &str,
    user_id: &str,
    issued_at: OffsetDateTime,
) -> TokenStatus {
    sessions
        .check_token(CheckTokenRequest {
            directory_id: directory_id.to_owned(),
            user_id: user_id.to_owned(),
            issued_at: Some(timestamp::to_proto(issued_at)),
        })
        .await
        .expect("CheckToken")
        .into_inner()
        .status()
}

on_both!(only_deactivating_and_deleting_store_a_revocation, |db| async move {
    let clock = ManualClock::new();
    let (api, _) = user_service(&db, unused_addr(), &clock);
    let id = create_user(&api, "d1").await;
    assert!(stored_reasons(&db, &id).await.is_empty(), "creating revokes nothing");

    patch(&api, "d1", &id, "replace", "displayName", Some(json!("Ada"))).await;
    assert!(
        stored_reasons(&db, &id).await.is_empty(),
        "other changes revoke nothing"
    );

    deactivate(&api, "d1", &id).await;
    assert_eq!(stored_reasons(&db, &id).await, [USER_DEACTIVATED]);

    deactivate(&api, "d1", &id).await;
    patch(&api, "d1", &id, "replace", "active", Some(json!(true))).await;
    patch(&api, "d1", &id, "remove", "active", None).await;
    assert_eq!(
        stored_reasons(&db, &id).await,
        [USER_DEACTIVATED],
        "deactivating an inactive user, reactivating and unassigning active revoke nothing more"
    );

    // From unassigned to false, by replacing the whole user.
    let resource = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "replaced@example.com",
        "active": false,
    });
    api.replace_user(as_admin(ReplaceUserRequest {
        directory_id: "d1".to_owned(),
        id: id.clone(),
        resource_json: resource.to_string(),
        expected_version: None,
    }))
    .await
    .expect("ReplaceUser");
    assert_eq!(stored_reasons(&db, &id).await, [USER_DEACTIVATED; 2]);

    // A path-less replace, as Okta sends it.
    patch(&api, "d1", &id, "replace", "active", Some(json!(true))).await;
    patch(&api, "d1", &id, "replace", "", Some(json!({"active": false}))).await;
    api.delete_user(as_admin(DeleteUserRequest {
        directory_id: "d1".to_owned(),
        id: id.clone(),
        expected_version: None,
    }))
    .await
    .expect("DeleteUser");
    assert_eq!(
        stored_reasons(&db, &id).await,
        [USER_DEACTIVATED, USER_DEACTIVATED, USER_DEACTIVATED, USER_DELETED]
    );
});

on_both!(a_failed_write_stores_no_revocation, |db| async move {
    let clock = ManualClock::new();
    let (api, _) = user_service(&db, unused_addr(), &clock);
    let id = create_user(&api, "d1").await;
    let stale = api
        .delete_user(as_admin(DeleteUserRequest {
            directory_id: "d1".to_owned(),
            id: id.clone(),
            expected_version: Some(7),
        }))
        .await
        .expect_err("a stale version");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    let invalid = api
        .patch_user(as_admin(PatchUserRequest {
            directory_id: "d1".to_owned(),
            id: id.clone(),
            operations: vec![
                idmesh_api::patch::operation(PatchOpKind::Replace, "active", Some(&json!(false))),
                idmesh_api::patch::operation(PatchOpKind::Replace, "userName", Some(&json!(42))),
            ],
            expected_version: None,
        }))
        .await
        .expect_err("an invalid userName");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    assert!(stored(&db).await.is_empty());
    let user = api
        .get_user(as_admin(GetUserRequest {
            directory_id: "d1".to_owned(),
            id,
        }))
        .await
        .expect("the user is still there")
        .into_inner();
    assert!(user.active, "the failed PATCH changed nothing");
});

on_both!(
    a_deactivation_commits_while_session_service_is_down_and_is_delivered_when_it_is_back,
    |db| async move {
        let clock = ManualClock::new();
        let session_addr = unused_addr();
        let (api, revocations) = user_service(&db, session_addr, &clock);
        let id = create_user(&api, "d1").await;
        let before = clock.now();
        clock.advance(Duration::from_secs(1));

        deactivate(&api, "d1", &id).await;
        let user = api
            .get_user(as_admin(GetUserRequest {
                directory_id: "d1".to_owned(),
                id: id.clone(),
            }))
            .await
            .expect("GetUser")
            .into_inner();
        assert!(!user.active, "the change committed");
        let [row] = stored(&db).await.try_into().expect("one stored revocation");
        assert_eq!(row.attempts, 1, "the request tried once");
        assert!(row.claim.is_none(), "and gave the row up");
        assert!(row.last_error.is_some());
        let backlog = api
            .get_revocation_backlog(as_admin(GetRevocationBacklogRequest {}))
            .await
            .expect("GetRevocationBacklog")
            .into_inner();
        assert_eq!(backlog.pending, 1);
        assert_eq!(backlog.oldest, Some(timestamp::to_proto(clock.now())));

        let (mut sessions, _running) = start_session_service(session_addr).await;
        assert_eq!(token_status(&mut sessions, "d1", &id, before).await, TokenStatus::Valid);
        assert_eq!(
            revocations.deliver_due().await.expect("deliver"),
            0,
            "not before the backoff has passed"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(revocations.deliver_due().await.expect("deliver"), 1);
        assert_eq!(
            token_status(&mut sessions, "d1", &id, before).await,
            TokenStatus::Revoked
        );
        assert!(stored(&db).await.is_empty(), "a delivered revocation is deleted");
        let backlog = revocations.backlog().await.expect("backlog");
        assert_eq!((backlog.pending, backlog.oldest), (0, None));
    }
);

on_both!(
    a_revocation_left_by_a_request_that_died_is_delivered_once_its_lease_runs_out,
    |db| async move {
        let clock = ManualClock::new();
        let session_addr = unused_addr();
        let (mut sessions, _running) = start_session_service(session_addr).await;
        let (_, revocations) = user_service(&db, session_addr, &clock);
        let session = sessions
            .create_session(CreateSessionRequest {
                directory_id: "d1".to_owned(),
                user_id: "u1".to_owned(),
                ttl: Some(prost_types::Duration { seconds: 600, nanos: 0 }),
                attributes: Default::default(),
            })
            .await
            .expect("CreateSession")
            .into_inner();
        // What a request leaves behind when it dies between committing and
        // delivering.
        let txn = idmesh_store::begin_write(&db, None).await.expect("begin");
        revocations
            .record(&txn, "d1", "u1", USER_DEACTIVATED)
            .await
            .expect("record");
        txn.commit().await.expect("commit");

        assert_eq!(revocations.deliver_due().await.expect("deliver"), 0, "leased");
        clock.advance(Duration::from_secs(30));
        assert_eq!(revocations.deliver_due().await.expect("deliver"), 1);
        let checked = sessions
            .check_session(CheckSessionRequest { session_id: session.id })
            .await
            .expect("CheckSession")
            .into_inner();
        assert_eq!(checked.status(), SessionStatus::Revoked);
        let revocation = checked.session.and_then(|s| s.revocation).expect("a revocation");
        assert_eq!(revocation.reason, USER_DEACTIVATED);
    }
);

/// Stores `count` revocations that are due, as if their requests had died.
async fn abandoned_revocations(db: &DatabaseConnection, revocations: &Revocations, clock: &ManualClock, count: usize) {
    let txn = idmesh_store::begin_write(db, None).await.expect("begin");
    for n in 0..count {
        revocations
            .record(&txn, "d1", &format!("u{n}"), USER_DELETED)
            .await
            .expect("record");
    }
    txn.commit().await.expect("commit");
    clock.advance(Duration::from_secs(30));
}

on_both!(replicas_never_claim_the_same_revocation, |db| async move {
    let clock = ManualClock::new();
    let session_addr = unused_addr();
    let (_, first) = user_service(&db, session_addr, &clock);
    abandoned_revocations(&db, &first, &clock, 200).await;

    let mut replicas = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (_, replica) = user_service(&db, session_addr, &clock);
        replicas.spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let batch = replica.claim_due().await.expect("claim");
                if batch.is_empty() {
                    return claimed;
                }
                assert!(batch.len() <= 32, "a batch of {}", batch.len());
                claimed.extend(batch.into_iter().map(|row| row.id));
            }
        });
    }
    let mut ids: Vec<String> = replicas.join_all().await.into_iter().flatten().collect();
    let claims = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), claims, "no revocation claimed twice");
    assert_eq!(ids.len(), 200, "every due revocation claimed");
});

on_both!(
    when_session_service_is_unreachable_the_rest_of_the_batch_waits_as_long_as_the_first,
    |db| async move {
        let clock = ManualClock::new();
        let (_, revocations) = user_service(&db, unused_addr(), &clock);
        abandoned_revocations(&db, &revocations, &clock, 3).await;

        assert_eq!(revocations.deliver_due().await.expect("deliver"), 0);
        let rows = stored(&db).await;
        let attempts: Vec<i32> = rows.iter().map(|row| row.attempts).collect();
        assert_eq!(attempts, [1, 0, 0], "only the first was tried");
        let retry_at = rows[0].deliver_after;
        assert!(
            rows.iter()
                .all(|row| row.deliver_after == retry_at && row.claim.is_none())
        );
        let now_ms = i64::try_from(clock.now().unix_timestamp_nanos() / 1_000_000).expect("in range");
        assert_eq!(retry_at, now_ms + 1_000, "a second after the first failure");
    }
);

on_both!(the_backlog_is_a_prometheus_metric, |db| async move {
    let clock = ManualClock::new();
    let metrics_addr = unused_addr();
    idmesh_runtime::telemetry::serve_metrics(metrics_addr).expect("serve metrics");
    let (api, revocations) = user_service(&db, unused_addr(), &clock);
    let id = create_user(&api, "d1").await;
    deactivate(&api, "d1", &id).await;
    clock.advance(Duration::from_secs(7));

    revocations.measure_backlog().await;
    let scraped = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("the metrics text");
    let value = |name: &str| {
        scraped
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in\n{scraped}"))
            .to_owned()
    };
    assert_eq!(value(crate::revocation::BACKLOG_METRIC), "1");
    assert_eq!(value(crate::revocation::OLDEST_METRIC), "7");
    assert_eq!(
        value("idmesh_session_revocation_failures_total"),
        "1",
        "the request's own attempt failed"
    );
});

on_both!(
    a_deleted_users_memberships_are_removed_once_group_service_is_back,
    |db| async move {
        let clock = ManualClock::new();
        let session_addr = unused_addr();
        let (_sessions, _running) = start_session_service(session_addr).await;
        let group_addr = unused_addr();
        let (api, revocations) = user_service_with_groups(&db, session_addr, group_addr, &clock);
        let (user_addr, _serving) = serve_users(api.clone()).await;
        let groups_database = ScratchDatabase::new(Backend::Sqlite);
        let groups_url = groups_database.url();

        let id = create_user(&api, "d1").await;
        let (mut groups, stop_groups, group_service) = start_group_service(group_addr, groups_url, user_addr).await;
        let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                           "displayName": "Engineering", "members": [{"value": id}]});
        let group = groups
            .create_group(CreateGroupRequest {
                directory_id: "d1".to_owned(),
                resource_json: group.to_string(),
            })
            .await
            .expect("CreateGroup")
            .into_inner();
        assert_eq!(group.member_count, 1);
        stop_groups.cancel();
        group_service.await.expect("group-service stopped");

        api.delete_user(as_admin(DeleteUserRequest {
            directory_id: "d1".to_owned(),
            id: id.clone(),
            expected_version: None,
        }))
        .await
        .expect("the delete commits while group-service is down");
        let [row] = stored(&db).await.try_into().expect("one stored revocation");
        assert!(row.remove_memberships, "a deleted user leaves its groups");
        assert_eq!(
            row.attempts, 1,
            "sessions were revoked, groups could not be told: tried once"
        );

        let (mut groups, _stop_groups, _group_service) = start_group_service(group_addr, groups_url, user_addr).await;
        clock.advance(Duration::from_secs(1));
        assert_eq!(revocations.deliver_due().await.expect("deliver"), 1);
        assert!(stored(&db).await.is_empty(), "done once both confirmed");
        let members = groups
            .list_members(ListMembersRequest {
                directory_id: "d1".to_owned(),
                group_id: group.id,
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .expect("ListMembers")
            .into_inner();
        assert!(members.members.is_empty(), "the deleted user left the group");
    }
);

on_both!(
    a_group_service_outage_holds_up_no_other_users_revocation,
    |db| async move {
        let clock = ManualClock::new();
        let session_addr = unused_addr();
        let (mut sessions, _running) = start_session_service(session_addr).await;
        // No group-service answers.
        let (_, revocations) = user_service(&db, session_addr, &clock);
        let before = clock.now();
        clock.advance(Duration::from_secs(1));
        let txn = idmesh_store::begin_write(&db, None).await.expect("begin");
        for (user, reason) in [("deleted", USER_DELETED), ("deactivated", USER_DEACTIVATED)] {
            revocations.record(&txn, "d1", user, reason).await.expect("record");
        }
        txn.commit().await.expect("commit");
        clock.advance(Duration::from_secs(30));

        assert_eq!(
            revocations.deliver_due().await.expect("deliver"),
            1,
            "the deactivation behind the deletion is delivered"
        );
        for user in ["deleted", "deactivated"] {
            assert_eq!(
                token_status(&mut sessions, "d1", user, before).await,
                TokenStatus::Revoked,
                "{user}'s sessions are revoked"
            );
        }
        let [row] = stored(&db).await.try_into().expect("one row waits");
        assert_eq!(
            (row.user_id.as_str(), row.attempts),
            ("deleted", 1),
            "only for group-service"
        );
        assert!(row.last_error.is_some(), "with why it waits");
    }
);
