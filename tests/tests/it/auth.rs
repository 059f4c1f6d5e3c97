//! Every gRPC caller is authenticated and scoped: every method of every
//! service refuses a call without a key and a key without its scope, a key
//! limited to one directory cannot read or change another through any
//! method, and a revoked or expired key stops working within the cache time.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use idmesh::Target;
use idmesh_proto::v1::{
    CheckSessionRequest, CheckTokenRequest, CreateApiKeyRequest, CreateGroupRequest, CreateSessionRequest,
    CreateUserRequest, DeleteGroupRequest, DeleteUserRequest, GetDirectoryRequest, GetGroupRequest, GetUserRequest,
    IssueTokenRequest, ListDirectoriesRequest, ListGroupsOfMemberRequest, ListGroupsRequest, ListMembersRequest,
    ListTokensRequest, ListUserSessionsRequest, ListUsersRequest, LookupUsersRequest, PatchGroupRequest,
    PatchMembersRequest, PatchUserRequest, RemoveMemberEverywhereRequest, ReplaceMembersRequest, ReplaceUserRequest,
    ResolveTokenRequest, RevokeApiKeyRequest, RevokeSessionByHandleRequest, RevokeSessionRequest, RevokeTokenRequest,
    RevokeUserSessionsRequest, SessionStatus, SetRateLimitRequest, UpdateGroupRequest, WatchRevocationsRequest,
};
use idmesh_proto::v1::{
    CreateWebhookRequest, DeleteWebhookRequest, ListDeliveryAttemptsRequest, ListWebhooksRequest, ReplayWebhookRequest,
    RotateWebhookSecretRequest,
};
use idmesh_proto::v1::{
    GetAttributeMappingRequest, GetEffectiveRolesRequest, GetProfileRequest, GetRoleMappingRequest, ListEventsRequest,
    ListRoleHoldersRequest, PreviewMappingsRequest, RoleMappingMode, SetAttributeMappingRequest, SetRoleMappingRequest,
    WatchEventsRequest,
};
use idmesh_runtime::auth::{AuthChannel, DIRECTORY_NOT_ALLOWED, DirectoryRule, MISSING_SCOPE, POLICIES, Scope};
use idmesh_tests::{NewGroup, NewUser, ScratchDatabase, TestMesh, both_backends};
use serde_json::json;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// Calls `method` with `message` on `channel`, ignoring what it answers.
async fn call<M>(channel: AuthChannel, method: &'static str, message: M) -> Result<(), Status>
where
    M: prost::Message + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|err| Status::unavailable(err.to_string()))?;
    let codec = tonic_prost::ProstCodec::<M, ()>::default();
    grpc.unary(Request::new(message), PathAndQuery::from_static(method), codec)
        .await
        .map(|_| ())
}

/// Where the mesh serves `method`.
fn server_of(mesh: &TestMesh, method: &str) -> SocketAddr {
    let service = method.trim_start_matches('/').split('/').next().expect("a service");
    match service {
        "idmesh.v1.DirectoryService" | "idmesh.v1.ApiKeyService" => mesh.directory_addr,
        "idmesh.v1.UserService" => mesh.user_addr,
        "idmesh.v1.GroupService" => mesh.group_addr,
        "idmesh.v1.SessionService" => mesh.session_addr,
        "idmesh.v1.RoleMappingService" => mesh.role_addr.expect("role-mapping-service runs"),
        "idmesh.v1.EventService" | "idmesh.v1.WebhookService" => mesh.event_addr.expect("events-service runs"),
        // user-service and group-service serve it alike.
        "idmesh.v1.OutboxService" => mesh.user_addr,
        other => panic!("which server serves {other}?"),
    }
}

/// The reason of a status's `ErrorInfo`, and its metadata value for `key`.
fn reason(status: &Status, key: &str) -> (String, Option<String>) {
    let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo");
    assert_eq!(info.domain, "idmesh.dev");
    (info.reason, info.metadata.get(key).cloned())
}

/// A new key with `scopes`, limited to `directories` unless empty; its secret.
async fn key(mesh: &TestMesh, scopes: &[Scope], directories: &[&str]) -> String {
    mesh.api_keys()
        .create_api_key(CreateApiKeyRequest {
            name: "test".to_owned(),
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            directory_ids: directories.iter().map(|d| (*d).to_owned()).collect(),
            expires_at: None,
        })
        .await
        .expect("CreateApiKey")
        .into_inner()
        .secret
}

both_backends!(
    every_method_without_a_key_is_unauthenticated_and_without_its_scope_permission_denied,
    |mesh: TestMesh| async move {
        // Keys with one scope each, so that every method has one without
        // its scope.
        let webhooks_only = key(&mesh, &[Scope::WebhooksAdmin], &[]).await;
        let events_only = key(&mesh, &[Scope::EventsRead], &[]).await;
        for policy in POLICIES {
            let unrelated = if policy.scope == Scope::WebhooksAdmin {
                &events_only
            } else {
                &webhooks_only
            };
            let addr = server_of(&mesh, policy.method);
            let without = idmesh_testkit::channel(addr);
            let mut grpc = tonic::client::Grpc::new(without);
            grpc.ready().await.expect("the server answers");
            let codec = tonic_prost::ProstCodec::<(), ()>::default();
            let status = grpc
                .unary(Request::new(()), PathAndQuery::from_static(policy.method), codec)
                .await
                .expect_err("no key");
            assert_eq!(status.code(), Code::Unauthenticated, "{}: {status:?}", policy.method);

            let bad = call(mesh.channel_as(addr, "idmk_not-a-key"), policy.method, ()).await;
            assert_eq!(
                bad.expect_err("a bad key").code(),
                Code::Unauthenticated,
                "{}",
                policy.method
            );

            let status = call(mesh.channel_as(addr, unrelated), policy.method, ())
                .await
                .expect_err("no scope");
            assert_eq!(status.code(), Code::PermissionDenied, "{}: {status:?}", policy.method);
            assert_eq!(
                reason(&status, "scope"),
                (MISSING_SCOPE.to_owned(), Some(policy.scope.as_str().to_owned())),
                "{}",
                policy.method
            );
        }
    }
);

both_backends!(health_and_reflection_need_no_key, |mesh: TestMesh| async move {
    // Through a reference: a block that captured only the (copied)
    // addresses would drop the mesh, and stop it, before the first check.
    let mesh = &mesh;
    let role_addr = mesh.role_addr.expect("role-mapping-service runs");
    let event_addr = mesh.event_addr.expect("events-service runs");
    for addr in [
        mesh.directory_addr,
        mesh.user_addr,
        mesh.group_addr,
        mesh.session_addr,
        role_addr,
        event_addr,
    ] {
        let mut health = tonic_health::pb::health_client::HealthClient::new(idmesh_testkit::channel(addr));
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("health is open");
    }
});

/// What a directory holds, read with the admin key: to show a refused call
/// changed nothing.
async fn snapshot(mesh: &TestMesh, b: &Fixture) -> String {
    let user = mesh
        .users()
        .get_user(GetUserRequest {
            directory_id: b.directory_id.clone(),
            id: b.user_id.clone(),
        })
        .await
        .expect("GetUser")
        .into_inner();
    let group = mesh
        .groups()
        .get_group(GetGroupRequest {
            directory_id: b.directory_id.clone(),
            id: b.group_id.clone(),
        })
        .await
        .expect("GetGroup")
        .into_inner();
    let members = mesh
        .groups()
        .list_members(ListMembersRequest {
            directory_id: b.directory_id.clone(),
            group_id: b.group_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ListMembers")
        .into_inner();
    let tokens = mesh
        .directories()
        .list_tokens(ListTokensRequest {
            directory_id: b.directory_id.clone(),
        })
        .await
        .expect("ListTokens")
        .into_inner();
    let sessions = mesh
        .sessions()
        .list_user_sessions(ListUserSessionsRequest {
            directory_id: b.directory_id.clone(),
            user_id: b.user_id.clone(),
        })
        .await
        .expect("ListUserSessions")
        .into_inner();
    let session = mesh
        .sessions()
        .check_session(CheckSessionRequest {
            session_id: b.session_id.clone(),
        })
        .await
        .expect("CheckSession")
        .into_inner();
    assert_eq!(session.status(), SessionStatus::Valid);
    let directory_id = b.directory_id.clone();
    let mapping = mesh
        .roles()
        .get_role_mapping(GetRoleMappingRequest {
            directory_id: directory_id.clone(),
        })
        .await
        .expect("GetRoleMapping")
        .into_inner();
    let attributes = mesh
        .roles()
        .get_attribute_mapping(GetAttributeMappingRequest { directory_id })
        .await
        .expect("GetAttributeMapping")
        .into_inner();
    let webhooks = mesh
        .webhooks()
        .list_webhooks(ListWebhooksRequest {
            directory_id: b.directory_id.clone(),
        })
        .await
        .expect("ListWebhooks")
        .into_inner();
    format!(
        "{user:?}\n{group:?}\n{members:?}\n{tokens:?}\n{sessions:?}\n{session:?}\n{mapping:?}\n{attributes:?}\n{webhooks:?}"
    )
}

/// Directory B's contents that a key limited to A tries to reach.
struct Fixture {
    directory_id: String,
    user_id: String,
    group_id: String,
    token_id: String,
    session_id: String,
    session_handle: String,
    webhook_id: String,
}

async fn fixture(mesh: &TestMesh) -> Fixture {
    let scim = mesh.new_directory().await;
    let user_id = scim.users().create(&NewUser::new("b-user@example.com")).await.id;
    let group_id = scim.groups().create(&NewGroup::new("B Group", &[&user_id])).await.id;
    let token_id = mesh
        .directories()
        .list_tokens(ListTokensRequest {
            directory_id: scim.directory_id.clone(),
        })
        .await
        .expect("ListTokens")
        .into_inner()
        .tokens[0]
        .id
        .clone();
    let session = mesh
        .sign_in(&scim.directory_id, &user_id, Duration::from_secs(3600))
        .await;
    // For token revocations only, which the test does not make: nothing is
    // delivered to it, so its progress stays as it is once the events above
    // (token issued, user created, group created, member added) are logged
    // before it exists.
    mesh.until_logged(&scim.directory_id, 4).await;
    let webhook_id = mesh
        .webhooks()
        .create_webhook(CreateWebhookRequest {
            directory_id: scim.directory_id.clone(),
            url: "http://127.0.0.1:9/unused".to_owned(),
            types: vec![idmesh_proto::v1::EventType::TokenRevoked.into()],
            description: String::new(),
        })
        .await
        .expect("CreateWebhook")
        .into_inner()
        .webhook
        .expect("the webhook")
        .id;
    Fixture {
        webhook_id,
        directory_id: scim.directory_id.clone(),
        user_id,
        group_id,
        token_id,
        session_id: session.id,
        session_handle: session.handle,
    }
}

/// Calls `method` as `channel` with a request about directory B: one arm per
/// method whose policy names one directory, or whose resource is found by
/// its secret.
async fn call_against(channel: AuthChannel, method: &'static str, b: &Fixture) -> Result<(), Status> {
    let dir = b.directory_id.clone();
    let user = || json!({"userName": "taken-over@example.com"}).to_string();
    match method {
        "/idmesh.v1.DirectoryService/GetDirectory" => call(channel, method, GetDirectoryRequest { id: dir }).await,
        "/idmesh.v1.DirectoryService/IssueToken" => {
            call(
                channel,
                method,
                IssueTokenRequest {
                    directory_id: dir,
                    ..Default::default()
                },
            )
            .await
        }
        "/idmesh.v1.DirectoryService/RevokeToken" => {
            let request = RevokeTokenRequest {
                directory_id: dir,
                token_id: b.token_id.clone(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.DirectoryService/ListTokens" => {
            call(channel, method, ListTokensRequest { directory_id: dir }).await
        }
        "/idmesh.v1.DirectoryService/SetRateLimit" => {
            let request = SetRateLimitRequest {
                directory_id: dir,
                rate_limit: None,
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.UserService/CreateUser" => {
            let request = CreateUserRequest {
                directory_id: dir,
                resource_json: user(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.UserService/GetUser" => {
            let request = GetUserRequest {
                directory_id: dir,
                id: b.user_id.clone(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.UserService/ReplaceUser" => {
            let request = ReplaceUserRequest {
                directory_id: dir,
                id: b.user_id.clone(),
                resource_json: user(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.UserService/PatchUser" => {
            let request = PatchUserRequest {
                directory_id: dir,
                id: b.user_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.UserService/DeleteUser" => {
            let request = DeleteUserRequest {
                directory_id: dir,
                id: b.user_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.UserService/ListUsers" => {
            call(
                channel,
                method,
                ListUsersRequest {
                    directory_id: dir,
                    ..Default::default()
                },
            )
            .await
        }
        "/idmesh.v1.UserService/LookupUsers" => {
            let request = LookupUsersRequest {
                directory_id: dir,
                ids: vec![b.user_id.clone()],
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/CreateGroup" => {
            let request = CreateGroupRequest {
                directory_id: dir,
                resource_json: json!({"displayName": "Intruders"}).to_string(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/GetGroup" => {
            let request = GetGroupRequest {
                directory_id: dir,
                id: b.group_id.clone(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/ListGroups" => {
            call(
                channel,
                method,
                ListGroupsRequest {
                    directory_id: dir,
                    ..Default::default()
                },
            )
            .await
        }
        "/idmesh.v1.GroupService/UpdateGroup" => {
            let request = UpdateGroupRequest {
                directory_id: dir,
                id: b.group_id.clone(),
                resource_json: json!({"displayName": "Renamed"}).to_string(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/PatchGroup" => {
            let request = PatchGroupRequest {
                directory_id: dir,
                id: b.group_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/PatchMembers" => {
            let request = PatchMembersRequest {
                directory_id: dir,
                group_id: b.group_id.clone(),
                remove: vec![b.user_id.clone()],
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/ReplaceMembers" => {
            let request = ReplaceMembersRequest {
                directory_id: dir,
                group_id: b.group_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/ListMembers" => {
            let request = ListMembersRequest {
                directory_id: dir,
                group_id: b.group_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/ListGroupsOfMember" => {
            let request = ListGroupsOfMemberRequest {
                directory_id: dir,
                member_ids: vec![b.user_id.clone()],
                include_ancestors: false,
                without_group_names: false,
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/DeleteGroup" => {
            let request = DeleteGroupRequest {
                directory_id: dir,
                id: b.group_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.GroupService/RemoveMemberEverywhere" => {
            let request = RemoveMemberEverywhereRequest {
                directory_id: dir,
                member_id: b.user_id.clone(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/CreateSession" => {
            let request = CreateSessionRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
                ttl: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/CheckSession" => {
            let request = CheckSessionRequest {
                session_id: b.session_id.clone(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/CheckToken" => {
            let request = CheckTokenRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
                issued_at: Some(std::time::SystemTime::now().into()),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/RevokeSession" => {
            let request = RevokeSessionRequest {
                session_id: b.session_id.clone(),
                reason: "taken over".to_owned(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/RevokeSessionByHandle" => {
            let request = RevokeSessionByHandleRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
                handle: b.session_handle.clone(),
                reason: "taken over".to_owned(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/RevokeUserSessions" => {
            let request = RevokeUserSessionsRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
                reason: "taken over".to_owned(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.SessionService/ListUserSessions" => {
            let request = ListUserSessionsRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.RoleMappingService/SetRoleMapping" => {
            let request = SetRoleMappingRequest {
                directory_id: dir,
                mode: RoleMappingMode::Multiple.into(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.RoleMappingService/GetRoleMapping" => {
            call(channel, method, GetRoleMappingRequest { directory_id: dir }).await
        }
        "/idmesh.v1.RoleMappingService/PreviewMappings" => {
            let request = PreviewMappingsRequest {
                directory_id: dir,
                mode: RoleMappingMode::Multiple.into(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.RoleMappingService/SetAttributeMapping" => {
            let request = SetAttributeMappingRequest {
                directory_id: dir,
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.RoleMappingService/GetAttributeMapping" => {
            call(channel, method, GetAttributeMappingRequest { directory_id: dir }).await
        }
        "/idmesh.v1.RoleMappingService/GetEffectiveRoles" => {
            let request = GetEffectiveRolesRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.RoleMappingService/ListRoleHolders" => {
            let request = ListRoleHoldersRequest {
                directory_id: dir,
                role: "admin".to_owned(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.RoleMappingService/GetProfile" => {
            let request = GetProfileRequest {
                directory_id: dir,
                user_id: b.user_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.EventService/ListEvents" => {
            let request = ListEventsRequest {
                directory_id: dir,
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.EventService/WatchEvents" => {
            let request = WatchEventsRequest {
                directory_id: dir,
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.WebhookService/CreateWebhook" => {
            let request = CreateWebhookRequest {
                directory_id: dir,
                url: "https://example.com/".to_owned(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.WebhookService/DeleteWebhook" => {
            call(
                channel,
                method,
                DeleteWebhookRequest {
                    id: b.webhook_id.clone(),
                },
            )
            .await
        }
        "/idmesh.v1.WebhookService/RotateWebhookSecret" => {
            let request = RotateWebhookSecretRequest {
                id: b.webhook_id.clone(),
                previous_valid_seconds: 0,
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.WebhookService/ReplayWebhook" => {
            let request = ReplayWebhookRequest {
                id: b.webhook_id.clone(),
                directory_id: dir,
                from_sequence: 1,
            };
            call(channel, method, request).await
        }
        "/idmesh.v1.WebhookService/ListDeliveryAttempts" => {
            let request = ListDeliveryAttemptsRequest {
                webhook_id: b.webhook_id.clone(),
                ..Default::default()
            };
            call(channel, method, request).await
        }
        other => panic!("add a case for {other}: it names a directory"),
    }
}

both_backends!(
    a_key_limited_to_one_directory_cannot_read_or_change_another_through_any_method,
    |mesh: TestMesh| async move {
        let a = mesh.new_directory().await;
        let b = fixture(&mesh).await;
        let limited = key(&mesh, &Scope::ALL, &[&a.directory_id]).await;
        let before = snapshot(&mesh, &b).await;

        let mut covered = BTreeSet::new();
        for policy in POLICIES {
            let channel = mesh.channel_as(server_of(&mesh, policy.method), &limited);
            let status = match policy.directories {
                DirectoryRule::One | DirectoryRule::OfResource => {
                    covered.insert(policy.method);
                    call_against(channel, policy.method, &b).await
                }
                // Not about one directory: refused to every limited key.
                DirectoryRule::Global => call(channel, policy.method, ()).await,
                DirectoryRule::Filtered => continue,
            }
            .expect_err("refused");
            assert_eq!(status.code(), Code::PermissionDenied, "{}: {status:?}", policy.method);
            assert_eq!(reason(&status, "").0, DIRECTORY_NOT_ALLOWED, "{}", policy.method);
        }
        let directory_methods = POLICIES
            .iter()
            .filter(|p| matches!(p.directories, DirectoryRule::One | DirectoryRule::OfResource))
            .count();
        assert_eq!(covered.len(), directory_methods);
        assert_eq!(snapshot(&mesh, &b).await, before, "directory B is unchanged");

        // Its own directory it may use, and ListDirectories shows only it.
        let mut users =
            idmesh_proto::v1::user_service_client::UserServiceClient::new(mesh.channel_as(mesh.user_addr, &limited));
        users
            .list_users(ListUsersRequest {
                directory_id: a.directory_id.clone(),
                ..Default::default()
            })
            .await
            .expect("its own directory");
        let listed = idmesh_proto::v1::directory_service_client::DirectoryServiceClient::new(
            mesh.channel_as(mesh.directory_addr, &limited),
        )
        .list_directories(ListDirectoriesRequest {})
        .await
        .expect("ListDirectories")
        .into_inner()
        .directories;
        assert_eq!(
            listed.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            vec![a.directory_id.clone()]
        );
        // ListWebhooks shows neither B's endpoint nor one of every
        // directory.
        create_webhook(&mesh, "", "https://example.com/every").await;
        let own = create_webhook(&mesh, &a.directory_id, "https://example.com/a").await;
        let mut webhooks = idmesh_proto::v1::webhook_service_client::WebhookServiceClient::new(
            mesh.channel_as(mesh.event_addr.expect("events-service runs"), &limited),
        );
        let visible: Vec<String> = webhooks
            .list_webhooks(ListWebhooksRequest::default())
            .await
            .expect("ListWebhooks")
            .into_inner()
            .webhooks
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(visible, vec![own]);
        // Nor may it register an endpoint of every directory.
        let status = webhooks
            .create_webhook(CreateWebhookRequest {
                url: "https://example.com/every".to_owned(),
                ..Default::default()
            })
            .await
            .expect_err("not limited to its directories");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason(&status, "").0, DIRECTORY_NOT_ALLOWED);
        assert!(status.message().contains("every directory"), "{status:?}");
    }
);

/// A webhook registered with the admin key; its id.
async fn create_webhook(mesh: &TestMesh, directory_id: &str, url: &str) -> String {
    mesh.webhooks()
        .create_webhook(CreateWebhookRequest {
            directory_id: directory_id.to_owned(),
            url: url.to_owned(),
            ..Default::default()
        })
        .await
        .expect("CreateWebhook")
        .into_inner()
        .webhook
        .expect("the webhook")
        .id
}

both_backends!(
    a_directory_limited_watcher_sees_only_its_directories_revocations,
    |mesh: TestMesh| async move {
        let a = mesh.new_directory().await;
        let b = mesh.new_directory().await;
        let watcher_key = key(&mesh, &[Scope::RevocationsWatch], &[&a.directory_id]).await;
        let mut watcher = idmesh_proto::v1::session_service_client::SessionServiceClient::new(
            mesh.channel_as(mesh.session_addr, &watcher_key),
        );
        let mut stream = watcher
            .watch_revocations(WatchRevocationsRequest::default())
            .await
            .expect("WatchRevocations")
            .into_inner();
        let first = stream.message().await.expect("a first message").expect("open");
        assert!(first.events.is_empty());

        for directory_id in [&b.directory_id, &a.directory_id] {
            mesh.sessions()
                .revoke_user_sessions(RevokeUserSessionsRequest {
                    directory_id: directory_id.clone(),
                    user_id: "someone".to_owned(),
                    reason: "left".to_owned(),
                })
                .await
                .expect("RevokeUserSessions");
        }
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a revocation within 10 s")
            .expect("a message")
            .expect("open");
        let directories: Vec<_> = next.events.iter().map(|e| e.directory_id.clone()).collect();
        assert_eq!(directories, vec![a.directory_id.clone()], "B's revocation is not shown");
    }
);

/// Polls `ListUsers` as `key` until it is refused as UNAUTHENTICATED; how
/// long that took.
async fn until_refused(mesh: &TestMesh, key: &str, directory_id: &str) -> Duration {
    let started = Instant::now();
    let mut users = idmesh_proto::v1::user_service_client::UserServiceClient::new(mesh.channel_as(mesh.user_addr, key));
    loop {
        let answer = users
            .list_users(ListUsersRequest {
                directory_id: directory_id.to_owned(),
                ..Default::default()
            })
            .await;
        match answer {
            Ok(_) => {}
            Err(status) if status.code() == Code::Unauthenticated => return started.elapsed(),
            Err(status) => panic!("unexpected {status:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "the key still works after 12 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A mesh whose services trust a resolved key for 1 second instead of 10,
/// so that a test of revocation does not wait 10 seconds.
async fn start_with_short_key_cache(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.key_cache_ttl = Duration::from_secs(1);
    })
    .await
}

both_backends!(
    a_revoked_or_expired_key_stops_working_within_the_cache_time,
    start_with_short_key_cache,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let revoked = mesh
            .api_keys()
            .create_api_key(CreateApiKeyRequest {
                name: "to revoke".to_owned(),
                scopes: vec!["users:read".to_owned()],
                ..Default::default()
            })
            .await
            .expect("CreateApiKey")
            .into_inner();
        let expires_at = std::time::SystemTime::now() + Duration::from_secs(2);
        let expiring = mesh
            .api_keys()
            .create_api_key(CreateApiKeyRequest {
                name: "expiring".to_owned(),
                scopes: vec!["users:read".to_owned()],
                expires_at: Some(expires_at.into()),
                ..Default::default()
            })
            .await
            .expect("CreateApiKey")
            .into_inner()
            .secret;
        let mut users = idmesh_proto::v1::user_service_client::UserServiceClient::new(
            mesh.channel_as(mesh.user_addr, &revoked.secret),
        );
        users
            .list_users(ListUsersRequest {
                directory_id: scim.directory_id.clone(),
                ..Default::default()
            })
            .await
            .expect("a live key works (and is now cached)");

        mesh.api_keys()
            .revoke_api_key(RevokeApiKeyRequest {
                id: revoked.api_key.expect("the key").id,
            })
            .await
            .expect("RevokeApiKey");
        let took = until_refused(&mesh, &revoked.secret, &scim.directory_id).await;
        assert!(took <= Duration::from_secs(2), "revoked, refused after {took:?}");
        until_refused(&mesh, &expiring, &scim.directory_id).await;
        assert!(std::time::SystemTime::now() >= expires_at);
    }
);

both_backends!(
    the_gateways_scopes_resolve_tokens_but_cannot_issue_them,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let gateway = key(&mesh, idmesh::GATEWAY_SCOPES, &[]).await;
        let mut directories = idmesh_proto::v1::directory_service_client::DirectoryServiceClient::new(
            mesh.channel_as(mesh.directory_addr, &gateway),
        );
        let refused = directories
            .issue_token(IssueTokenRequest {
                directory_id: scim.directory_id.clone(),
                ..Default::default()
            })
            .await
            .expect_err("the gateway cannot issue SCIM tokens");
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert_eq!(
            reason(&refused, "scope"),
            (MISSING_SCOPE.to_owned(), Some("directories:admin".to_owned()))
        );
        let resolved = directories
            .resolve_token(ResolveTokenRequest {
                secret: scim.token.clone().expect("a token"),
            })
            .await
            .expect("the gateway resolves tokens")
            .into_inner();
        assert_eq!(resolved.directory_id, scim.directory_id);
    }
);

both_backends!(
    unknown_scopes_and_directories_are_invalid_arguments_naming_them,
    |mesh: TestMesh| async move {
        let mut keys = mesh.api_keys();
        let bad_scope = keys
            .create_api_key(CreateApiKeyRequest {
                name: "x".to_owned(),
                scopes: vec!["users:read".to_owned(), "users:delete".to_owned()],
                ..Default::default()
            })
            .await
            .expect_err("an unknown scope");
        assert_eq!(bad_scope.code(), Code::InvalidArgument);
        assert!(bad_scope.message().contains("users:delete"), "{bad_scope:?}");
        let bad_directory = keys
            .create_api_key(CreateApiKeyRequest {
                name: "x".to_owned(),
                scopes: vec!["users:read".to_owned()],
                directory_ids: vec!["no-such-directory".to_owned()],
                ..Default::default()
            })
            .await
            .expect_err("an unknown directory");
        assert_eq!(bad_directory.code(), Code::InvalidArgument);
        assert!(
            bad_directory.message().contains("no-such-directory"),
            "{bad_directory:?}"
        );
        let listed = keys
            .list_api_keys(idmesh_proto::v1::ListApiKeysRequest {})
            .await
            .expect("ListApiKeys")
            .into_inner();
        assert!(listed.api_keys.iter().all(|k| k.name != "x"));
    }
);

#[test]
fn the_readme_lists_exactly_the_policy_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("the README");
    let listed: Vec<(String, String, String)> = readme
        .lines()
        .filter(|line| line.starts_with("| `") && line.contains("Service/"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let [method, scope, directories] = cells[..] else {
                panic!("a row of three cells: {line}");
            };
            (
                format!("/idmesh.v1.{}", method.trim_matches('`')),
                scope.trim_matches('`').to_owned(),
                directories.to_owned(),
            )
        })
        .collect();
    let policies: Vec<(String, String, String)> = POLICIES
        .iter()
        .map(|p| {
            (
                p.method.to_owned(),
                p.scope.as_str().to_owned(),
                p.directories.describe().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed, policies,
        "README.md's scope table and libs/idmesh-runtime/src/auth/policy.rs differ"
    );
}
