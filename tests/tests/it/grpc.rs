//! The gRPC API as platforms call it: the same rules hold without the
//! gateway, and every service has health and reflection.

use idmesh_proto::v1::{
    CreateUserRequest, GetUserRequest, IssueTokenRequest, ListTokensRequest, ListUsersRequest, PatchUserRequest,
    ResolveTokenRequest, RevokeTokenRequest,
};
use idmesh_tests::{Backend, NewUser, ScratchDatabase, TestMesh, both_backends};
use scim::patch::PatchOpKind;
use serde_json::json;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn scim_type(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_error_details().error_info().map(|info| info.reason.clone())
}

both_backends!(
    user_service_validates_for_grpc_callers_too,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut users = mesh.users();
        let missing = users
            .create_user(CreateUserRequest {
                directory_id: scim.directory_id.clone(),
                resource_json: json!({"displayName": "No Name"}).to_string(),
            })
            .await
            .expect_err("a user needs a userName");
        assert_eq!(missing.code(), Code::InvalidArgument);
        assert_eq!(scim_type(&missing).as_deref(), Some("invalidValue"));

        let created = users
            .create_user(CreateUserRequest {
                directory_id: scim.directory_id.clone(),
                resource_json: json!({"userName": "Grpc.User@example.com", "externalId": "e-1"}).to_string(),
            })
            .await
            .expect("CreateUser")
            .into_inner();
        assert_eq!(created.user_name, "Grpc.User@example.com");
        assert_eq!(created.external_id.as_deref(), Some("e-1"));
        assert!(created.active, "users are active unless told otherwise");
        assert_eq!(created.meta.as_ref().map(|m| m.version), Some(1));

        let duplicate = users
            .create_user(CreateUserRequest {
                directory_id: scim.directory_id.clone(),
                resource_json: json!({"userName": "grpc.user@EXAMPLE.com"}).to_string(),
            })
            .await
            .expect_err("userName is unique ignoring case");
        assert_eq!(duplicate.code(), Code::AlreadyExists);
        assert_eq!(scim_type(&duplicate).as_deref(), Some("uniqueness"));
    }
);

both_backends!(
    a_stale_expected_version_fails_and_changes_nothing,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut users = mesh.users();
        let created = users
            .create_user(CreateUserRequest {
                directory_id: scim.directory_id.clone(),
                resource_json: json!({"userName": "versioned@example.com"}).to_string(),
            })
            .await
            .expect("CreateUser")
            .into_inner();
        let patch = |expected_version| PatchUserRequest {
            directory_id: scim.directory_id.clone(),
            id: created.id.clone(),
            operations: vec![idmesh_api::patch::operation(
                PatchOpKind::Replace,
                "title",
                Some(&json!("CTO")),
            )],
            expected_version,
        };
        let stale = users.patch_user(patch(Some(7))).await.expect_err("version 7 is stale");
        assert_eq!(stale.code(), Code::FailedPrecondition);
        let patched = users.patch_user(patch(Some(1))).await.expect("PatchUser").into_inner();
        assert_eq!(patched.meta.map(|m| m.version), Some(2));
        let fetched = users
            .get_user(GetUserRequest {
                directory_id: scim.directory_id.clone(),
                id: created.id.clone(),
            })
            .await
            .expect("GetUser")
            .into_inner();
        let doc = idmesh_api::document::parse(&fetched.resource_json).expect("a document");
        assert_eq!(doc.get("title"), Some(&json!("CTO")));
    }
);

both_backends!(concurrent_patches_lose_no_change, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let id = scim.users().create(&NewUser::new("busy@example.com")).await.id;
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..10 {
        let scim = scim.clone();
        let id = id.clone();
        writers.spawn(async move {
            let op = json!([{"op": "add", "path": "emails", "value": [{"value": format!("alias{i}@example.com"), "type": "other"}]}]);
            scim.users().patch(&id, op).await;
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.expect("a writer finished");
    }
    let user = scim.users().get(&id).await;
    assert_eq!(
        user.emails.len(),
        11,
        "the original email plus ten aliases: {:#?}",
        user.emails
    );
    assert_eq!(user.meta.version, "W/\"11\"");
});

both_backends!(list_users_never_crosses_directories, |mesh: TestMesh| async move {
    let (a, b) = (mesh.new_directory().await, mesh.new_directory().await);
    a.users().create(&NewUser::new("a1@example.com")).await;
    a.users().create(&NewUser::new("a2@example.com")).await;
    b.users().create(&NewUser::new("b1@example.com")).await;
    let listed = mesh
        .users()
        .list_users(ListUsersRequest {
            directory_id: b.directory_id.clone(),
            filter: String::new(),
            page: Some(idmesh_proto::v1::PageRequest {
                start_index: 1,
                count: 10,
                cursor: None,
            }),
            sort: None,
        })
        .await
        .expect("ListUsers")
        .into_inner();
    assert_eq!(listed.total_results, 1);
    assert_eq!(listed.users[0].user_name, "b1@example.com");
});

both_backends!(a_directory_has_at_most_two_live_tokens, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let mut directories = mesh.directories();
    let issue = || IssueTokenRequest {
        directory_id: scim.directory_id.clone(),
        description: "rotation".to_owned(),
        expires_at: None,
    };
    let second = directories
        .issue_token(issue())
        .await
        .expect("a second token")
        .into_inner();
    let third = directories.issue_token(issue()).await.expect_err("a third live token");
    assert_eq!(third.code(), Code::FailedPrecondition);

    let second_id = second.token.expect("token metadata").id;
    directories
        .revoke_token(RevokeTokenRequest {
            directory_id: scim.directory_id.clone(),
            token_id: second_id.clone(),
        })
        .await
        .expect("RevokeToken");
    let revoked = directories
        .resolve_token(ResolveTokenRequest {
            secret: second.secret.clone(),
        })
        .await
        .expect_err("a revoked token resolves to nothing");
    assert_eq!(revoked.code(), Code::NotFound);
    directories.issue_token(issue()).await.expect("room for a token again");

    let tokens = directories
        .list_tokens(ListTokensRequest {
            directory_id: scim.directory_id.clone(),
        })
        .await
        .expect("ListTokens")
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 3);
    assert_eq!(tokens.iter().filter(|t| t.revoked_at.is_some()).count(), 1);
    let listed = format!("{tokens:?}");
    assert!(!listed.contains(&second.secret), "secrets are never listed");
});

#[tokio::test]
async fn every_service_reports_serving_on_grpc_health() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let mesh = TestMesh::start(&database).await;
    for (addr, service) in [
        (mesh.directory_addr, "idmesh.v1.DirectoryService"),
        (mesh.user_addr, "idmesh.v1.UserService"),
        (mesh.user_addr, ""),
    ] {
        let channel = idmesh_runtime::grpc::lazy_channel(&addr.to_string()).expect("address");
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("Health/Check")
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?} at {addr}");
    }
}

/// The services a reflection endpoint lists, through the generated client of
/// one reflection version (`v1` or `v1alpha`).
macro_rules! reflected_services {
    ($version:ident, $addr:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let channel = idmesh_runtime::grpc::lazy_channel(&$addr.to_string()).expect("address");
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("ServerReflectionInfo")
            .into_inner();
        let response = responses.message().await.expect("a response").expect("one message");
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("expected a service list, got {other:?}"),
        }
    }};
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services_and_health() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let mesh = TestMesh::start(&database).await;
    // grpcurl 1.8 speaks only v1alpha; newer clients speak v1.
    for services in [
        reflected_services!(v1alpha, mesh.user_addr),
        reflected_services!(v1, mesh.user_addr),
    ] {
        assert!(services.iter().any(|s| s == "idmesh.v1.UserService"), "{services:?}");
        assert!(services.iter().any(|s| s == "grpc.health.v1.Health"), "{services:?}");
    }
    let directory_services = reflected_services!(v1alpha, mesh.directory_addr);
    assert!(directory_services.iter().any(|s| s == "idmesh.v1.DirectoryService"));
    assert!(
        !directory_services.iter().any(|s| s == "idmesh.v1.UserService"),
        "each process lists only what it serves: {directory_services:?}"
    );
}
