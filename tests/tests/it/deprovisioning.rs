//! Deprovisioning revokes a user's sessions before the answer, whoever asks
//! (SCIM in Okta's and Entra's dialects, or gRPC), and the revocation is
//! never lost when session-service or its Redis is away.
//!
//! session-service keeps sessions in real Redis here. The tests where
//! revocations wait for a session-service that is away start a Redis or a
//! session-service of their own, and run on SQLite; user-service's own tests
//! run those cases on PostgreSQL as well.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use idmesh::{MeshConfig, Target};
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{
    CheckSessionRequest, CheckTokenRequest, DeleteUserRequest, GetRevocationBacklogRequest, PatchUserRequest,
    ReplaceUserRequest, Session, SessionStatus, TokenStatus,
};
use idmesh_runtime::auth::AuthChannel;
use idmesh_tests::idmesh_testkit::{redis_url, unused_addr};
use idmesh_tests::{Backend, NewUser, ScimClient, ScratchDatabase, TestMesh, both_backends, patch_op, user};
use scim::patch::PatchOpKind;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// The whole mesh, with sessions in the test Redis.
async fn mesh_on_redis(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.redis_url = Some(redis_url());
    })
    .await
}

/// A test on PostgreSQL and on SQLite, with sessions in Redis:
/// `on_redis!(name, |mesh| async move { … })`.
macro_rules! on_redis {
    ($name:ident, $body:expr) => {
        both_backends!($name, mesh_on_redis, $body);
    };
}

/// A user, created through SCIM, with two live sessions.
struct SignedIn {
    id: String,
    sessions: Vec<Session>,
    /// Just before the deprovisioning under test: a token issued then must
    /// end up revoked.
    token_issued_at: prost_types::Timestamp,
}

async fn signed_in_user(mesh: &TestMesh, scim: &ScimClient, user_name: &str) -> SignedIn {
    let id = scim.users().create(&NewUser::new(user_name)).await.id;
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let session = mesh.sign_in(&scim.directory_id, &id, Duration::from_secs(600)).await;
        sessions.push(session);
    }
    SignedIn {
        id,
        sessions,
        token_issued_at: SystemTime::now().into(),
    }
}

async fn session_status(
    sessions: &mut SessionServiceClient<AuthChannel>,
    session: &Session,
) -> Result<SessionStatus, tonic::Status> {
    let checked = sessions
        .check_session(CheckSessionRequest {
            session_id: session.id.clone(),
        })
        .await?;
    Ok(checked.into_inner().status())
}

async fn token_status(
    sessions: &mut SessionServiceClient<AuthChannel>,
    directory_id: &str,
    user: &SignedIn,
) -> Result<TokenStatus, tonic::Status> {
    let checked = sessions
        .check_token(CheckTokenRequest {
            directory_id: directory_id.to_owned(),
            user_id: user.id.clone(),
            issued_at: Some(user.token_issued_at),
        })
        .await?;
    Ok(checked.into_inner().status())
}

/// Every session of the user is revoked, and so is a token issued before
/// the deprovisioning: checked right after the answer, with no waiting.
async fn assert_revoked_now(mesh: &TestMesh, scim: &ScimClient, user: &SignedIn, reason: &str) {
    let mut sessions = mesh.sessions();
    for session in &user.sessions {
        let checked = sessions
            .check_session(CheckSessionRequest {
                session_id: session.id.clone(),
            })
            .await
            .expect("CheckSession")
            .into_inner();
        assert_eq!(checked.status(), SessionStatus::Revoked);
        let revocation = checked.session.and_then(|s| s.revocation).expect("why and when");
        assert_eq!(revocation.reason, reason);
    }
    assert_eq!(
        token_status(&mut sessions, &scim.directory_id, user)
            .await
            .expect("CheckToken"),
        TokenStatus::Revoked
    );
}

async fn assert_still_valid(mesh: &TestMesh, scim: &ScimClient, user: &SignedIn) {
    let mut sessions = mesh.sessions();
    for session in &user.sessions {
        assert_eq!(
            session_status(&mut sessions, session).await.expect("CheckSession"),
            SessionStatus::Valid
        );
    }
    assert_eq!(
        token_status(&mut sessions, &scim.directory_id, user)
            .await
            .expect("CheckToken"),
        TokenStatus::Valid
    );
}

on_redis!(
    an_okta_patch_that_deactivates_revokes_before_the_response,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let user = signed_in_user(&mesh, &scim, "okta@example.com").await;
        let path = format!("/Users/{}", user.id);
        scim.patch(
            &path,
            patch_op(json!([{"op": "replace", "value": {"active": false}}])),
            200,
        )
        .await;
        assert_revoked_now(&mesh, &scim, &user, "user deactivated").await;
    }
);

on_redis!(
    an_entra_patch_with_the_string_false_revokes_before_the_response,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let user = signed_in_user(&mesh, &scim, "entra@example.com").await;
        let path = format!("/Users/{}", user.id);
        scim.patch(
            &path,
            patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
            200,
        )
        .await;
        assert_revoked_now(&mesh, &scim, &user, "user deactivated").await;
    }
);

on_redis!(
    a_put_with_active_false_revokes_before_the_response,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let user = signed_in_user(&mesh, &scim, "put@example.com").await;
        let mut body = idmesh_tests::user("put@example.com");
        body["active"] = json!(false);
        scim.put(&format!("/Users/{}", user.id), body, 200).await;
        assert_revoked_now(&mesh, &scim, &user, "user deactivated").await;
    }
);

on_redis!(a_scim_delete_revokes_before_the_response, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let user = signed_in_user(&mesh, &scim, "delete@example.com").await;
    scim.delete(&format!("/Users/{}", user.id), 204).await;
    assert_revoked_now(&mesh, &scim, &user, "user deleted").await;
});

on_redis!(
    grpc_callers_deactivating_or_deleting_revoke_too,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut users = mesh.users();

        let patched = signed_in_user(&mesh, &scim, "grpc-patch@example.com").await;
        users
            .patch_user(PatchUserRequest {
                directory_id: scim.directory_id.clone(),
                id: patched.id.clone(),
                operations: vec![idmesh_api::patch::operation(
                    PatchOpKind::Replace,
                    "active",
                    Some(&json!(false)),
                )],
                expected_version: None,
            })
            .await
            .expect("PatchUser");
        assert_revoked_now(&mesh, &scim, &patched, "user deactivated").await;

        let replaced = signed_in_user(&mesh, &scim, "grpc-replace@example.com").await;
        let mut body = user("grpc-replace@example.com");
        body["active"] = json!(false);
        users
            .replace_user(ReplaceUserRequest {
                directory_id: scim.directory_id.clone(),
                id: replaced.id.clone(),
                resource_json: body.to_string(),
                expected_version: None,
            })
            .await
            .expect("ReplaceUser");
        assert_revoked_now(&mesh, &scim, &replaced, "user deactivated").await;

        let deleted = signed_in_user(&mesh, &scim, "grpc-delete@example.com").await;
        users
            .delete_user(DeleteUserRequest {
                directory_id: scim.directory_id.clone(),
                id: deleted.id.clone(),
                expected_version: None,
            })
            .await
            .expect("DeleteUser");
        assert_revoked_now(&mesh, &scim, &deleted, "user deleted").await;
    }
);

on_redis!(
    changes_that_do_not_deactivate_revoke_nothing,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let user = signed_in_user(&mesh, &scim, "stays@example.com").await;
        let path = format!("/Users/{}", user.id);
        scim.patch(
            &path,
            patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "Still Here"},
                {"op": "replace", "path": "active", "value": "True"}
            ])),
            200,
        )
        .await;
        scim.patch(&path, patch_op(json!([{"op": "remove", "path": "active"}])), 200)
            .await;
        assert_still_valid(&mesh, &scim, &user).await;
    }
);

/// A redis-server of the test's own on `port`, keeping its data in `dir`
/// with every write synced, so that it survives being killed.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    async fn start(port: u16, dir: &std::path::Path) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/ensure-services installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server listens on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        OwnRedis { child }
    }

    fn stop(mut self) {
        self.child.kill().expect("kill redis-server");
        self.child.wait().expect("redis-server exits");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it answers `wanted` (UNAVAILABLE counts as not yet),
/// failing the test after `within`.
async fn eventually<T, F, Fut>(within: Duration, wanted: T, mut check: F)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = check().await;
        match &last {
            Ok(answer) if *answer == wanted => return,
            Ok(_) => {}
            Err(status) if status.code() == Code::Unavailable => {}
            Err(status) => panic!("unexpected error: {status:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "still {last:?} after {within:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_deactivation_while_redis_is_down_revokes_once_redis_is_back_with_no_further_request() {
    let redis_dir = tempfile::tempdir().expect("a directory for Redis' data");
    let port = unused_addr().port();
    let redis = OwnRedis::start(port, redis_dir.path()).await;
    let database = ScratchDatabase::new(Backend::Sqlite);
    let mesh = TestMesh::start_with(&database, &Target::ALL, |config| {
        config.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let scim = mesh.new_directory().await;
    let user = signed_in_user(&mesh, &scim, "outage@example.com").await;

    redis.stop();
    let path = format!("/Users/{}", user.id);
    let answered = scim
        .patch(
            &path,
            patch_op(json!([{"op": "replace", "value": {"active": false}}])),
            200,
        )
        .await;
    assert_eq!(answered.body["active"], json!(false));
    assert_eq!(
        scim.get(&path, 200).await.body["active"],
        json!(false),
        "the change committed"
    );
    let backlog = mesh
        .users()
        .get_revocation_backlog(GetRevocationBacklogRequest {})
        .await
        .expect("GetRevocationBacklog")
        .into_inner();
    assert_eq!(backlog.pending, 1, "the revocation waits");

    let _redis = OwnRedis::start(port, redis_dir.path()).await;
    let mut sessions = mesh.sessions();
    for session in &user.sessions {
        eventually(Duration::from_secs(30), SessionStatus::Revoked, || {
            let mut sessions = sessions.clone();
            async move { session_status(&mut sessions, session).await }
        })
        .await;
    }
    assert_eq!(
        token_status(&mut sessions, &scim.directory_id, &user)
            .await
            .expect("CheckToken"),
        TokenStatus::Revoked
    );
    let users = mesh.users();
    eventually(Duration::from_secs(5), 0, || {
        let mut users = users.clone();
        async move {
            let backlog = users.get_revocation_backlog(GetRevocationBacklogRequest {}).await?;
            Ok(backlog.into_inner().pending)
        }
    })
    .await;
}

#[tokio::test]
async fn with_session_service_down_users_are_still_deprovisioned_and_revoked_once_it_is_up() {
    let session_addr = unused_addr();
    let database = ScratchDatabase::new(Backend::Sqlite);
    let mesh = TestMesh::start_with(
        &database,
        &[Target::Directories, Target::Users, Target::Groups, Target::Gateway],
        |config| config.session_addr = session_addr.to_string(),
    )
    .await;
    let scim = mesh.new_directory().await;
    let ids = [
        scim.users().create(&NewUser::new("down-patch@example.com")).await.id,
        scim.users().create(&NewUser::new("down-delete@example.com")).await.id,
    ];
    let users: Vec<SignedIn> = ids
        .into_iter()
        .map(|id| SignedIn {
            id,
            sessions: Vec::new(),
            token_issued_at: SystemTime::now().into(),
        })
        .collect();

    let started = Instant::now();
    scim.patch(
        &format!("/Users/{}", users[0].id),
        patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        200,
    )
    .await;
    scim.delete(&format!("/Users/{}", users[1].id), 204).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a session-service that is down does not hold requests up: {:?}",
        started.elapsed()
    );
    let backlog = mesh
        .users()
        .get_revocation_backlog(GetRevocationBacklogRequest {})
        .await
        .expect("GetRevocationBacklog")
        .into_inner();
    assert_eq!(backlog.pending, 2);
    assert!(backlog.oldest.is_some());

    let mut config = MeshConfig::loopback(String::new());
    config.session_listen_addr = session_addr;
    config.redis_url = Some(redis_url());
    // In a process of its own, session-service calls as a configured key.
    config.directory_addr = mesh.directory_addr.to_string();
    config.api_key = Some(mesh.admin_key.clone());
    let shutdown = CancellationToken::new();
    let _stop_sessions = shutdown.clone().drop_guard();
    let session_service = idmesh::launch(&[Target::Sessions], config, shutdown)
        .await
        .expect("session-service starts");
    tokio::spawn(session_service.wait());

    let sessions = mesh.sessions();
    for user in &users {
        eventually(Duration::from_secs(30), TokenStatus::Revoked, || {
            let mut sessions = sessions.clone();
            let directory_id = scim.directory_id.clone();
            async move { token_status(&mut sessions, &directory_id, user).await }
        })
        .await;
    }
}
