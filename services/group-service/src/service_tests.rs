//! group-service over gRPC, with a real user-service beside it, on SQLite
//! and on a PostgreSQL database of each test's own.
//!
//! Both services share the test's database, as they may in small installs,
//! each with its own tables. user-service's session and group addresses
//! point at ports where nothing answers except when a test says otherwise:
//! nothing here deactivates or deletes a user.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_proto::v1::{
    CreateGroupRequest, CreateUserRequest, DeleteGroupRequest, GetGroupRequest, Group, ListGroupsOfMemberRequest,
    ListGroupsRequest, ListMembersRequest, Member, MemberType, Membership, PageRequest, PatchGroupRequest,
    PatchMembersRequest, RemoveMemberEverywhereRequest, ReplaceMembersRequest, SortRequest, UpdateGroupRequest,
};
use idmesh_runtime::auth::AuthChannel;
use idmesh_testkit::{ScratchDatabase, unused_addr};
use scim::ScimType;
use scim::patch::PatchOpKind;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::{Code, Status};

/// A user-service and a group-service on one database, and a directory of
/// the test's own; the services stop when the last clone is dropped.
#[derive(Clone)]
struct Mesh {
    groups: GroupServiceClient<AuthChannel>,
    users: UserServiceClient<AuthChannel>,
    user_addr: SocketAddr,
    directory_id: String,
    database_url: String,
    _running: Arc<DropGuard>,
}

/// Starts group-service on `database_url`, looking users up at `user_addr`.
async fn start_group_service(database_url: &str, user_addr: SocketAddr, shutdown: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    let config = crate::Config {
        database_url: database_url.to_owned(),
        user_addr: user_addr.to_string(),
        identity: directory_service::testing::shared().identity(),
        limits: scim::Limits::DEFAULT,
    };
    tokio::spawn(crate::serve(listener, config, shutdown.clone()));
    addr
}

/// Starts both services on `database`.
async fn start_mesh(database: &ScratchDatabase) -> Mesh {
    let shutdown = CancellationToken::new();
    let database_url = database.url().to_owned();
    let user_listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let user_addr = user_listener.local_addr().expect("a bound address");
    let group_addr = start_group_service(&database_url, user_addr, &shutdown).await;
    let directory = directory_service::testing::shared();
    let config = user_service::Config {
        database_url: database_url.clone(),
        session_addr: unused_addr().to_string(),
        group_addr: group_addr.to_string(),
        identity: directory.identity(),
        limits: scim::Limits::DEFAULT,
    };
    tokio::spawn(user_service::serve(user_listener, config, shutdown.clone()));
    Mesh {
        groups: GroupServiceClient::new(directory.channel(group_addr)),
        users: UserServiceClient::new(directory.channel(user_addr)),
        user_addr,
        directory_id: uuid::Uuid::now_v7().to_string(),
        database_url,
        _running: Arc::new(shutdown.drop_guard()),
    }
}

/// One test on both backends: `on_both!(name, |mesh| async move { … })`.
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        idmesh_testkit::on_both_backends!($name, start_mesh, $body);
    };
}

/// The SCIM error type a status carries.
fn scim_type(status: &Status) -> Option<ScimType> {
    idmesh_api::status::to_scim(status).scim_type
}

impl Mesh {
    /// A user with `user_name` and, if given, a displayName; its id.
    async fn user(&self, user_name: &str, display_name: Option<&str>) -> String {
        let mut resource = json!({"userName": user_name});
        if let Some(display_name) = display_name {
            resource["displayName"] = json!(display_name);
        }
        self.users
            .clone()
            .create_user(CreateUserRequest {
                directory_id: self.directory_id.clone(),
                resource_json: resource.to_string(),
            })
            .await
            .expect("CreateUser")
            .into_inner()
            .id
    }

    async fn users(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(self.user(&format!("user{i}@example.com"), None).await);
        }
        ids
    }

    async fn try_create(&self, resource: Value) -> Result<Group, Status> {
        self.groups
            .clone()
            .create_group(CreateGroupRequest {
                directory_id: self.directory_id.clone(),
                resource_json: resource.to_string(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn group(&self, display_name: &str, members: &[&String]) -> Group {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        self.try_create(json!({"displayName": display_name, "members": members}))
            .await
            .expect("CreateGroup")
    }

    async fn get(&self, id: &str) -> Group {
        self.groups
            .clone()
            .get_group(GetGroupRequest {
                directory_id: self.directory_id.clone(),
                id: id.to_owned(),
            })
            .await
            .expect("GetGroup")
            .into_inner()
    }

    async fn try_patch(&self, id: &str, operations: Value, expected_version: Option<i64>) -> Result<Group, Status> {
        let operations = operations
            .as_array()
            .expect("an array of operations")
            .iter()
            .map(|op| {
                let kind = op["op"].as_str().and_then(PatchOpKind::parse).expect("a known op");
                let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
                idmesh_api::patch::operation(kind, path, op.get("value"))
            })
            .collect();
        self.groups
            .clone()
            .patch_group(PatchGroupRequest {
                directory_id: self.directory_id.clone(),
                id: id.to_owned(),
                operations,
                expected_version,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn patch(&self, id: &str, operations: Value) -> Group {
        self.try_patch(id, operations, None).await.expect("PatchGroup")
    }

    async fn try_patch_members(&self, id: &str, add: &[&String], remove: &[&String]) -> Result<Group, Status> {
        self.groups
            .clone()
            .patch_members(PatchMembersRequest {
                directory_id: self.directory_id.clone(),
                group_id: id.to_owned(),
                add: add.iter().map(|id| (*id).clone()).collect(),
                remove: remove.iter().map(|id| (*id).clone()).collect(),
                expected_version: None,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every member, page by page, asserting that no member comes twice.
    async fn members_paged(&self, id: &str, page_size: i32) -> Vec<Member> {
        let mut members = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .groups
                .clone()
                .list_members(ListMembersRequest {
                    directory_id: self.directory_id.clone(),
                    group_id: id.to_owned(),
                    page_size,
                    page_token,
                })
                .await
                .expect("ListMembers")
                .into_inner();
            assert!(page.members.len() <= usize::try_from(page_size.max(1)).expect("a size") || page_size == 0);
            members.extend(page.members);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let ids: BTreeSet<&str> = members.iter().map(|m| m.value.as_str()).collect();
        assert_eq!(ids.len(), members.len(), "a member came twice");
        members
    }

    /// The member ids, in id order.
    async fn member_ids(&self, id: &str) -> Vec<String> {
        self.members_paged(id, 0).await.into_iter().map(|m| m.value).collect()
    }

    async fn list(&self, filter: &str) -> Vec<String> {
        self.groups
            .clone()
            .list_groups(ListGroupsRequest {
                directory_id: self.directory_id.clone(),
                filter: filter.to_owned(),
                page: Some(PageRequest {
                    start_index: 1,
                    count: 100,
                    cursor: None,
                }),
                sort: Some(SortRequest {
                    sort_by: "displayName".to_owned(),
                    descending: false,
                }),
            })
            .await
            .expect("ListGroups")
            .into_inner()
            .groups
            .into_iter()
            .map(|g| g.display_name)
            .collect()
    }
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| (*id).clone()).collect();
    ids.sort();
    ids
}

on_both!(
    creating_a_group_with_members_records_their_type_and_the_display_sent,
    |mesh| async move {
        let ada = mesh.user("ada@example.com", Some("Ada Lovelace")).await;
        let bob = mesh.user("bob@example.com", None).await;
        let team = mesh.group("Team", &[]).await;
        let group = mesh
            .try_create(json!({"displayName": "Engineering", "members": [
                {"value": ada, "display": "Ada (as the IdP calls her)"},
                {"value": bob, "type": "User"},
                {"value": team.id, "display": ""},
                {"value": ada, "display": "Ada again"},
            ]}))
            .await
            .expect("CreateGroup");
        assert_eq!(group.member_count, 3);
        assert_eq!(group.display_name, "Engineering");
        let resource = idmesh_api::document::parse(&group.resource_json).expect("a document");
        assert!(
            !resource.contains_key("members"),
            "members are rows, not part of the document"
        );
        let members = mesh.members_paged(&group.id, 0).await;
        let summary: BTreeSet<(String, i32, String)> =
            members.into_iter().map(|m| (m.value, m.r#type, m.display)).collect();
        let expected: BTreeSet<(String, i32, String)> = [
            (ada, MemberType::User as i32, "Ada (as the IdP calls her)".to_owned()),
            (bob, MemberType::User as i32, String::new()),
            (team.id, MemberType::Group as i32, String::new()),
        ]
        .into();
        assert_eq!(summary, expected, "the type is the server's, the display the client's");
    }
);

on_both!(okta_patch_shapes_work, |mesh| async move {
    let ids = mesh.users(4).await;
    let group = mesh.group("Okta", &[&ids[0], &ids[1]]).await;
    // Okta swaps one member for another in one request.
    let patched = mesh
        .patch(
            &group.id,
            json!([
                {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
                {"op": "add", "path": "members", "value": [{"value": ids[2], "display": "whatever Okta says"}]},
            ]),
        )
        .await;
    assert_eq!(patched.member_count, 2);
    assert_eq!(patched.meta.as_ref().expect("meta").version, 2);
    assert_eq!(mesh.member_ids(&group.id).await, sorted(&[&ids[1], &ids[2]]));
    // A full replace of the members.
    let replaced = mesh
        .patch(
            &group.id,
            json!([{"op": "replace", "path": "members", "value": [{"value": ids[3]}, {"value": ids[0]}]}]),
        )
        .await;
    assert_eq!(replaced.member_count, 2);
    assert_eq!(mesh.member_ids(&group.id).await, sorted(&[&ids[0], &ids[3]]));
    // A path-less rename that carries the group's id along.
    let renamed = mesh
        .patch(
            &group.id,
            json!([{"op": "replace", "value": {"id": group.id, "displayName": "Okta Renamed"}}]),
        )
        .await;
    assert_eq!(renamed.display_name, "Okta Renamed");
    assert_eq!(renamed.member_count, 2);
    assert_eq!(mesh.list("displayName eq \"okta renamed\"").await, vec!["Okta Renamed"]);
});

on_both!(entra_patch_shapes_work, |mesh| async move {
    let ids = mesh.users(3).await;
    let group = mesh.group("Entra", &[&ids[0], &ids[1]]).await;
    let added = mesh
        .patch(
            &group.id,
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": ids[2]}]}]),
        )
        .await;
    assert_eq!(added.member_count, 3);
    let removed = mesh
        .patch(
            &group.id,
            json!([{"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}]),
        )
        .await;
    assert_eq!(
        removed.member_count, 2,
        "Remove with a value removes exactly the listed members"
    );
    assert_eq!(mesh.member_ids(&group.id).await, sorted(&[&ids[1], &ids[2]]));
    let replaced = mesh
        .patch(
            &group.id,
            json!([{"op": "Replace", "path": "displayName", "value": "Entra 2"}]),
        )
        .await;
    assert_eq!((replaced.display_name.as_str(), replaced.member_count), ("Entra 2", 2));
});

on_both!(members_are_removed_by_filter_or_all_at_once, |mesh| async move {
    let ids = mesh.users(3).await;
    let child = mesh.group("Child", &[]).await;
    let group = mesh.group("Mixed", &[&ids[0], &ids[1], &ids[2], &child.id]).await;
    let without_groups = mesh
        .patch(
            &group.id,
            json!([{"op": "remove", "path": "members[type eq \"group\"]"}]),
        )
        .await;
    assert_eq!(without_groups.member_count, 3);
    let filter = format!("members[value eq \"{}\" or value eq \"{}\"]", ids[0], ids[2]);
    let two_fewer = mesh.patch(&group.id, json!([{"op": "remove", "path": filter}])).await;
    assert_eq!(two_fewer.member_count, 1);
    assert_eq!(mesh.member_ids(&group.id).await, vec![ids[1].clone()]);
    let none_matched = mesh
        .patch(
            &group.id,
            json!([{"op": "remove", "path": "members[display eq \"nobody\"]"}]),
        )
        .await;
    assert_eq!(none_matched.member_count, 1);
    let emptied = mesh
        .patch(&group.id, json!([{"op": "remove", "path": "members"}]))
        .await;
    assert_eq!(emptied.member_count, 0);
    assert!(mesh.member_ids(&group.id).await.is_empty());
    // Path-less objects with members, and a single member object.
    let pathless = mesh
        .patch(
            &group.id,
            json!([
                {"op": "add", "value": {"members": [{"value": ids[0]}], "displayName": "Mixed 2"}},
                {"op": "add", "path": "members", "value": {"value": ids[1]}},
            ]),
        )
        .await;
    assert_eq!((pathless.display_name.as_str(), pathless.member_count), ("Mixed 2", 2));
    let replaced = mesh
        .patch(
            &group.id,
            json!([{"op": "replace", "value": {"members": [{"value": ids[2]}]}}]),
        )
        .await;
    assert_eq!(replaced.member_count, 1);
    assert_eq!(mesh.member_ids(&group.id).await, vec![ids[2].clone()]);
});

on_both!(scim_writes_skip_unknown_members_and_add_the_rest, |mesh| async move {
    let ids = mesh.users(2).await;
    let group = mesh.group("Careful", &[&ids[0]]).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let patched = mesh
        .try_patch(
            &group.id,
            json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "add", "path": "members", "value": [{"value": unknown}, {"value": ids[1]}]},
            ]),
            None,
        )
        .await
        .expect("the known members are added");
    assert_eq!((patched.display_name.as_str(), patched.member_count), ("Changed", 2));
    assert_eq!(mesh.member_ids(&group.id).await, sorted(&[&ids[0], &ids[1]]));
    // A user of another directory is unknown here too.
    let elsewhere = Mesh {
        directory_id: uuid::Uuid::now_v7().to_string(),
        ..mesh.clone()
    }
    .user("stranger@example.com", None)
    .await;
    let created = mesh
        .try_create(
            json!({"displayName": "New", "members": [{"value": unknown}, {"value": elsewhere}, {"value": ids[0]}]}),
        )
        .await
        .expect("created with its known member");
    assert_eq!(created.member_count, 1);
    assert_eq!(mesh.member_ids(&created.id).await, vec![ids[0].clone()]);
});

on_both!(
    patch_members_rejects_unknown_members_and_applies_nothing,
    |mesh| async move {
        let ids = mesh.users(2).await;
        let group = mesh.group("Strict", &[&ids[0]]).await;
        let unknown = uuid::Uuid::now_v7().to_string();
        let err = mesh
            .try_patch_members(&group.id, &[&ids[1], &unknown], &[&ids[0]])
            .await
            .expect_err("an unknown member");
        assert_eq!(
            (err.code(), scim_type(&err)),
            (Code::InvalidArgument, Some(ScimType::InvalidValue))
        );
        assert!(err.message().contains(&unknown), "{}", err.message());
        let after = mesh.get(&group.id).await;
        assert_eq!(after.meta.expect("meta").version, 1);
        assert_eq!(mesh.member_ids(&group.id).await, vec![ids[0].clone()]);
    }
);

on_both!(a_group_cannot_be_its_own_member, |mesh| async move {
    let group = mesh.group("Narcissus", &[]).await;
    let err = mesh
        .try_patch_members(&group.id, &[&group.id], &[])
        .await
        .expect_err("self");
    assert_eq!(
        (err.code(), scim_type(&err)),
        (Code::InvalidArgument, Some(ScimType::InvalidValue))
    );
    assert_eq!(mesh.get(&group.id).await.member_count, 0);
});

on_both!(
    adding_a_present_member_and_removing_an_absent_one_are_fine,
    |mesh| async move {
        let ids = mesh.users(2).await;
        let group = mesh.group("Idempotent", &[&ids[0]]).await;
        let again = mesh
            .try_patch_members(&group.id, &[&ids[0]], &[&ids[1]])
            .await
            .expect("PatchMembers");
        assert_eq!(again.member_count, 1);
        let absent = mesh
            .patch(
                &group.id,
                json!([{"op": "remove", "path": "members", "value": [{"value": ids[1]}]}]),
            )
            .await;
        assert_eq!(absent.member_count, 1);
        assert_eq!(absent.meta.expect("meta").version, 3, "every write bumps the version");
        assert_eq!(mesh.member_ids(&group.id).await, vec![ids[0].clone()]);
    }
);

on_both!(member_sub_attributes_cannot_be_patched, |mesh| async move {
    let ids = mesh.users(1).await;
    let group = mesh.group("Fixed", &[&ids[0]]).await;
    let path = format!("members[value eq \"{}\"].display", ids[0]);
    for (op, path) in [("replace", path.as_str()), ("replace", "members.value")] {
        let err = mesh
            .try_patch(&group.id, json!([{"op": op, "path": path, "value": "x"}]), None)
            .await
            .expect_err(path);
        assert_eq!(scim_type(&err), Some(ScimType::Mutability), "{path}: {}", err.message());
    }
});

on_both!(list_members_pages_visit_every_member_once, |mesh| async move {
    let ids = mesh.users(23).await;
    let refs: Vec<&String> = ids.iter().collect();
    let group = mesh.group("Paged", &refs).await;
    assert_eq!(group.member_count, 23);
    let refs: Vec<&String> = ids.iter().collect();
    for page_size in [1, 5, 23, 100] {
        let members: Vec<String> = mesh
            .members_paged(&group.id, page_size)
            .await
            .into_iter()
            .map(|m| m.value)
            .collect();
        assert_eq!(members, sorted(&refs), "page size {page_size}");
    }
});

on_both!(list_groups_filters_by_name_external_id_and_member, |mesh| async move {
    let ids = mesh.users(2).await;
    mesh.try_create(json!({"displayName": "Admins", "externalId": "okta-1", "members": [{"value": ids[0]}]}))
        .await
        .expect("CreateGroup");
    mesh.try_create(json!({"displayName": "admins", "externalId": "okta-2"}))
        .await
        .expect("a second group of the same name");
    let child = mesh.group("Child", &[&ids[1]]).await;
    mesh.group("Parent", &[&child.id]).await;
    assert_eq!(mesh.list("displayName eq \"ADMINS\"").await.len(), 2);
    assert_eq!(mesh.list("externalId eq \"okta-2\"").await, vec!["admins"]);
    assert!(
        mesh.list("externalId eq \"OKTA-2\"").await.is_empty(),
        "externalId is caseExact"
    );
    assert_eq!(
        mesh.list(&format!("members[value eq \"{}\"]", ids[0])).await,
        vec!["Admins"]
    );
    assert_eq!(
        mesh.list(&format!("members.value eq \"{}\"", ids[1])).await,
        vec!["Child"]
    );
    assert_eq!(mesh.list("members[type eq \"Group\"]").await, vec!["Parent"]);
    assert_eq!(mesh.list("members pr").await, vec!["Admins", "Child", "Parent"]);
    assert_eq!(mesh.list("not (members pr)").await, vec!["admins"]);
    assert_eq!(mesh.list("displayName sw \"adm\" and members pr").await, vec!["Admins"]);
    assert_eq!(mesh.list("").await.len(), 4);
    let err = mesh
        .groups
        .clone()
        .list_groups(ListGroupsRequest {
            directory_id: mesh.directory_id.clone(),
            filter: "members eq \"x\"".to_owned(),
            page: None,
            sort: None,
        })
        .await
        .expect_err("a complex attribute compared whole");
    assert_eq!(scim_type(&err), Some(ScimType::InvalidFilter));
});

on_both!(external_id_is_unique_per_directory, |mesh| async move {
    mesh.try_create(json!({"displayName": "A", "externalId": "ext"}))
        .await
        .expect("CreateGroup");
    let err = mesh
        .try_create(json!({"displayName": "B", "externalId": "ext"}))
        .await
        .expect_err("a taken externalId");
    assert_eq!(
        (err.code(), scim_type(&err)),
        (Code::AlreadyExists, Some(ScimType::Uniqueness))
    );
    let other = mesh.group("C", &[]).await;
    let err = mesh
        .try_patch(
            &other.id,
            json!([{"op": "replace", "path": "externalId", "value": "ext"}]),
            None,
        )
        .await
        .expect_err("a taken externalId");
    assert_eq!(err.code(), Code::AlreadyExists);
    let elsewhere = Mesh {
        directory_id: uuid::Uuid::now_v7().to_string(),
        ..mesh.clone()
    };
    elsewhere
        .try_create(json!({"displayName": "A", "externalId": "ext"}))
        .await
        .expect("another directory may use the same externalId");
});

on_both!(concurrent_member_patches_lose_none, |mesh| async move {
    let ids = mesh.users(50).await;
    let group = mesh.group("Busy", &[]).await;
    let mut patches = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let mesh = mesh.clone();
        let group_id = group.id.clone();
        patches.spawn(async move { mesh.try_patch_members(&group_id, &[&id], &[]).await });
    }
    while let Some(result) = patches.join_next().await {
        result.expect("the task").expect("PatchMembers");
    }
    let after = mesh.get(&group.id).await;
    assert_eq!(after.member_count, 50);
    assert_eq!(after.meta.expect("meta").version, 51);
    let refs: Vec<&String> = ids.iter().collect();
    assert_eq!(mesh.member_ids(&group.id).await, sorted(&refs));
});

on_both!(
    concurrent_add_and_remove_of_one_member_end_in_a_serial_order,
    |mesh| async move {
        let ids = mesh.users(1).await;
        let group = mesh.group("Racy", &[]).await;
        for _ in 0..10 {
            let (adding, removing) = (mesh.clone(), mesh.clone());
            let (group_id, other_group_id) = (group.id.clone(), group.id.clone());
            let (id, other_id) = (ids[0].clone(), ids[0].clone());
            let add = tokio::spawn(async move { adding.try_patch_members(&group_id, &[&id], &[]).await });
            let remove =
                tokio::spawn(async move { removing.try_patch_members(&other_group_id, &[], &[&other_id]).await });
            let added = add.await.expect("the task").expect("add");
            let removed = remove.await.expect("the task").expect("remove");
            let version = |g: &Group| g.meta.as_ref().expect("meta").version;
            let after = mesh.get(&group.id).await;
            let members = mesh.member_ids(&group.id).await;
            // Whichever ran last decides, and the count agrees with the rows.
            let expected = if version(&added) > version(&removed) {
                vec![ids[0].clone()]
            } else {
                Vec::new()
            };
            assert_eq!(members, expected);
            assert_eq!(after.member_count, i64::try_from(members.len()).expect("a count"));
            assert_eq!(version(&after), version(&added).max(version(&removed)));
        }
    }
);

on_both!(a_stale_expected_version_is_failed_precondition, |mesh| async move {
    let ids = mesh.users(1).await;
    let group = mesh.group("Versioned", &[]).await;
    let err = mesh
        .try_patch(
            &group.id,
            json!([{"op": "add", "path": "members", "value": [{"value": ids[0]}]}]),
            Some(7),
        )
        .await
        .expect_err("a stale version");
    assert_eq!(err.code(), Code::FailedPrecondition);
    mesh.try_patch(
        &group.id,
        json!([{"op": "add", "path": "members", "value": [{"value": ids[0]}]}]),
        Some(1),
    )
    .await
    .expect("the current version");
    let err = mesh
        .groups
        .clone()
        .replace_members(ReplaceMembersRequest {
            directory_id: mesh.directory_id.clone(),
            group_id: group.id.clone(),
            members: Vec::new(),
            expected_version: Some(1),
        })
        .await
        .expect_err("a stale version");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = mesh
        .groups
        .clone()
        .delete_group(DeleteGroupRequest {
            directory_id: mesh.directory_id.clone(),
            id: group.id.clone(),
            expected_version: Some(1),
        })
        .await
        .expect_err("a stale version");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(mesh.get(&group.id).await.member_count, 1);
});

on_both!(update_group_replaces_document_and_members, |mesh| async move {
    let ids = mesh.users(3).await;
    let group = mesh.group("Before", &[&ids[0], &ids[1]]).await;
    let updated = mesh
        .groups
        .clone()
        .update_group(UpdateGroupRequest {
            directory_id: mesh.directory_id.clone(),
            id: group.id.clone(),
            resource_json: json!({"displayName": "After", "externalId": "e", "members": [{"value": ids[2]}]})
                .to_string(),
            expected_version: Some(1),
        })
        .await
        .expect("UpdateGroup")
        .into_inner();
    assert_eq!(
        (updated.display_name.as_str(), updated.external_id.as_deref()),
        ("After", Some("e"))
    );
    assert_eq!(updated.member_count, 1);
    assert_eq!(mesh.member_ids(&group.id).await, vec![ids[2].clone()]);
});

on_both!(deleting_a_group_removes_it_from_its_parents, |mesh| async move {
    let ids = mesh.users(2).await;
    let child = mesh.group("Child", &[&ids[0], &ids[1]]).await;
    let parent = mesh.group("Parent", &[&child.id, &ids[0]]).await;
    let grandparent = mesh.group("Grandparent", &[&child.id]).await;
    mesh.groups
        .clone()
        .delete_group(DeleteGroupRequest {
            directory_id: mesh.directory_id.clone(),
            id: child.id.clone(),
            expected_version: Some(1),
        })
        .await
        .expect("DeleteGroup");
    let parent_after = mesh.get(&parent.id).await;
    assert_eq!(parent_after.member_count, 1);
    assert_eq!(parent_after.meta.expect("meta").version, 2);
    assert_eq!(mesh.member_ids(&parent.id).await, vec![ids[0].clone()]);
    assert_eq!(mesh.get(&grandparent.id).await.member_count, 0);
    let err = mesh
        .groups
        .clone()
        .get_group(GetGroupRequest {
            directory_id: mesh.directory_id.clone(),
            id: child.id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
    let memberships = mesh
        .groups
        .clone()
        .list_groups_of_member(ListGroupsOfMemberRequest {
            directory_id: mesh.directory_id.clone(),
            member_ids: vec![child.id.clone(), ids[1].clone()],
            include_ancestors: false,
            without_group_names: false,
        })
        .await
        .expect("ListGroupsOfMember")
        .into_inner()
        .memberships;
    assert!(memberships.is_empty(), "{memberships:?}");
});

on_both!(
    one_members_groups_are_what_a_call_for_several_answers_for_it,
    |mesh| async move {
        let ids = mesh.users(2).await;
        let first = mesh.group("First", &[&ids[0], &ids[1]]).await;
        let second = mesh.group("Second", &[&ids[0]]).await;
        mesh.group("Other", &[&ids[1]]).await;
        // Second is in Parent and Parent in Second: a cycle above ids[0].
        let parent = mesh.group("Parent", &[&second.id]).await;
        mesh.try_patch_members(&second.id, &[&parent.id], &[])
            .await
            .expect("Parent into Second");
        let ask_for = |member_ids: Vec<String>, include_ancestors, without_group_names| {
            let (groups, directory_id) = (mesh.groups.clone(), mesh.directory_id.clone());
            async move {
                groups
                    .clone()
                    .list_groups_of_member(ListGroupsOfMemberRequest {
                        directory_id,
                        member_ids,
                        include_ancestors,
                        without_group_names,
                    })
                    .await
                    .expect("ListGroupsOfMember")
                    .into_inner()
                    .memberships
            }
        };
        let ask = |member_ids: Vec<String>, include_ancestors| ask_for(member_ids, include_ancestors, false);
        let triples = |memberships: &[Membership]| -> Vec<(String, String, String)> {
            memberships
                .iter()
                .map(|m| (m.member_id.clone(), m.group_id.clone(), m.group_display_name.clone()))
                .collect()
        };
        let sorted = |mut triples: Vec<(String, String, String)>| {
            triples.sort();
            triples
        };
        let direct = vec![
            (ids[0].clone(), first.id.clone(), "First".to_owned()),
            (ids[0].clone(), second.id.clone(), "Second".to_owned()),
        ];
        let alone = ask(vec![ids[0].clone()], false).await;
        assert_eq!(
            triples(&alone),
            sorted(direct.clone()),
            "ordered by group id, with names"
        );
        let mut above = direct;
        above.push((second.id.clone(), parent.id.clone(), "Parent".to_owned()));
        above.push((parent.id.clone(), second.id.clone(), "Second".to_owned()));
        let alone_with_ancestors = ask(vec![ids[0].clone()], true).await;
        assert_eq!(
            triples(&alone_with_ancestors),
            sorted(above),
            "ordered by member, then group, each membership once, the cycle included"
        );
        for (include_ancestors, alone) in [(false, alone), (true, alone_with_ancestors)] {
            let with_nobody = ask(vec![ids[0].clone(), "no-such-member".to_owned()], include_ancestors).await;
            assert_eq!(alone, with_nobody, "with ancestors: {include_ancestors}");
            let unnamed: Vec<Membership> = alone
                .iter()
                .map(|m| Membership {
                    group_display_name: String::new(),
                    ..m.clone()
                })
                .collect();
            for member_ids in [vec![ids[0].clone()], vec![ids[0].clone(), "no-such-member".to_owned()]] {
                let without_names = ask_for(member_ids, include_ancestors, true).await;
                assert_eq!(
                    without_names, unnamed,
                    "with ancestors: {include_ancestors}, without names"
                );
            }
            assert!(
                ask(vec!["no-such-member".to_owned()], include_ancestors)
                    .await
                    .is_empty()
            );
        }
        let among: Vec<_> = ask(vec![ids[1].clone(), ids[0].clone()], false)
            .await
            .into_iter()
            .filter(|m| m.member_id == ids[0])
            .collect();
        assert_eq!(triples(&among), triples(&ask(vec![ids[0].clone()], false).await));
    }
);

on_both!(remove_member_everywhere_leaves_every_group_once, |mesh| async move {
    let ids = mesh.users(2).await;
    let first = mesh.group("First", &[&ids[0], &ids[1]]).await;
    let second = mesh.group("Second", &[&ids[0]]).await;
    let memberships = mesh
        .groups
        .clone()
        .list_groups_of_member(ListGroupsOfMemberRequest {
            directory_id: mesh.directory_id.clone(),
            member_ids: vec![ids[1].clone(), ids[0].clone()],
            include_ancestors: false,
            without_group_names: false,
        })
        .await
        .expect("ListGroupsOfMember")
        .into_inner()
        .memberships;
    let mut expected = vec![
        (ids[0].clone(), first.id.clone(), "First".to_owned()),
        (ids[0].clone(), second.id.clone(), "Second".to_owned()),
        (ids[1].clone(), first.id.clone(), "First".to_owned()),
    ];
    expected.sort();
    let got: Vec<(String, String, String)> = memberships
        .into_iter()
        .map(|m| (m.member_id, m.group_id, m.group_display_name))
        .collect();
    assert_eq!(got, expected, "ordered by member id, then group id");
    for expected_groups in [2, 0] {
        let removed = mesh
            .groups
            .clone()
            .remove_member_everywhere(RemoveMemberEverywhereRequest {
                directory_id: mesh.directory_id.clone(),
                member_id: ids[0].clone(),
            })
            .await
            .expect("RemoveMemberEverywhere")
            .into_inner();
        assert_eq!(removed.groups, expected_groups, "idempotent");
    }
    assert_eq!(mesh.get(&first.id).await.member_count, 1);
    let second_after = mesh.get(&second.id).await;
    assert_eq!(second_after.member_count, 0);
    assert_eq!(second_after.meta.expect("meta").version, 2);
});

on_both!(an_unreachable_user_service_is_unavailable, |mesh| async move {
    let ids = mesh.users(1).await;
    let group = mesh.group("Lonely", &[]).await;
    let shutdown = CancellationToken::new();
    let addr = start_group_service(&mesh.database_url, unused_addr(), &shutdown).await;
    let cut_off = Mesh {
        groups: GroupServiceClient::new(directory_service::testing::shared().channel(addr)),
        ..mesh.clone()
    };
    let err = cut_off
        .try_patch_members(&group.id, &[&ids[0]], &[])
        .await
        .expect_err("no user-service");
    assert_eq!(err.code(), Code::Unavailable);
    shutdown.cancel();
    assert_eq!(mesh.get(&group.id).await.member_count, 0);
});

on_both!(a_group_deleted_while_being_added_is_not_added, |mesh| async move {
    use sea_orm::{EntityTrait, QuerySelect};

    use crate::entity::group;

    let parent = mesh.group("Parent", &[]).await;
    let doomed = mesh.group("Doomed", &[]).await;
    // Another writer holds the doomed group's row, as DeleteGroup does.
    let db = idmesh_store::connect(&mesh.database_url).await.expect("connect");
    let txn = idmesh_store::begin_write(&db, None).await.expect("begin");
    group::Entity::find_by_id(doomed.id.clone())
        .lock_exclusive()
        .one(&txn)
        .await
        .expect("lock the doomed group");
    let adding = tokio::spawn({
        let (mesh, parent, doomed) = (mesh.clone(), parent.id.clone(), doomed.id.clone());
        async move { mesh.try_patch_members(&parent, &[&doomed], &[]).await }
    });
    // Long enough for the add to have found the group and to wait for it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    group::Entity::delete_by_id(doomed.id.clone())
        .exec(&txn)
        .await
        .expect("delete the doomed group");
    txn.commit().await.expect("commit the deletion");

    let refused = adding.await.expect("the add ran").expect_err("the group is gone");
    assert_eq!(scim_type(&refused), Some(ScimType::InvalidValue), "{refused:?}");
    let parent = mesh.get(&parent.id).await;
    assert_eq!(
        (parent.member_count, parent.meta.map(|m| m.version)),
        (0, Some(1)),
        "nothing applied"
    );
});

on_both!(
    a_group_deleted_while_a_scim_patch_adds_it_is_skipped,
    |mesh| async move {
        use sea_orm::{EntityTrait, QuerySelect};

        use crate::entity::group;

        let ids = mesh.users(1).await;
        let parent = mesh.group("Parent", &[]).await;
        let doomed = mesh.group("Doomed", &[]).await;
        let db = idmesh_store::connect(&mesh.database_url).await.expect("connect");
        let txn = idmesh_store::begin_write(&db, None).await.expect("begin");
        group::Entity::find_by_id(doomed.id.clone())
            .lock_exclusive()
            .one(&txn)
            .await
            .expect("lock the doomed group");
        let adding = tokio::spawn({
            let (mesh, parent, doomed, user) = (mesh.clone(), parent.id.clone(), doomed.id.clone(), ids[0].clone());
            async move {
                let add = json!([{"op": "Add", "path": "members", "value": [{"value": doomed}, {"value": user}]}]);
                mesh.try_patch(&parent, add, None).await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        group::Entity::delete_by_id(doomed.id.clone())
            .exec(&txn)
            .await
            .expect("delete the doomed group");
        txn.commit().await.expect("commit the deletion");

        let patched = adding.await.expect("the add ran").expect("the user is added");
        assert_eq!(patched.member_count, 1);
        assert_eq!(
            mesh.member_ids(&parent.id).await,
            vec![ids[0].clone()],
            "no ghost member"
        );
    }
);

/// A gRPC proxy in front of user-service that holds each LookupUsers answer
/// until the test releases it: the moment between group-service looking
/// new members up and writing them, made as long as a test needs.
#[derive(Clone)]
struct LookupGate {
    upstream: tonic::transport::Channel,
    /// Told once user-service has answered a LookupUsers call.
    answered: Arc<tokio::sync::Notify>,
    /// What the held answers wait for.
    release: CancellationToken,
}

impl tonic::server::NamedService for LookupGate {
    const NAME: &'static str = "idmesh.v1.UserService";
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for LookupGate {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        let gate = self.clone();
        let lookup = request.uri().path().ends_with("/LookupUsers");
        Box::pin(async move {
            let mut upstream = gate.upstream.clone();
            let forwarded = async {
                std::future::poll_fn(|cx| tonic::codegen::Service::poll_ready(&mut upstream, cx)).await?;
                tonic::codegen::Service::call(&mut upstream, request).await
            };
            let response = match forwarded.await {
                Ok(response) => response.map(tonic::body::Body::new),
                Err(err) => Status::unavailable(err.to_string()).into_http(),
            };
            if lookup {
                gate.answered.notify_one();
                gate.release.cancelled().await;
            }
            Ok(response)
        })
    }
}

impl LookupGate {
    /// Starts the gate in front of the user-service at `upstream`; its
    /// address, and the gate.
    async fn start(upstream: SocketAddr, shutdown: &CancellationToken) -> (SocketAddr, LookupGate) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let gate = LookupGate {
            upstream: idmesh_testkit::channel(upstream),
            answered: Arc::new(tokio::sync::Notify::new()),
            release: CancellationToken::new(),
        };
        let server = tonic::transport::Server::builder()
            .add_service(gate.clone())
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                shutdown.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        (addr, gate)
    }
}

// The race of a user deleted while a group write adds it (the write looks
// the user up, the user is deleted and removed from every group, then the
// write commits), run in that order every time.
on_both!(
    a_user_deleted_after_a_patch_looked_it_up_is_not_added,
    |mesh| async move {
        let ids = mesh.users(2).await;
        let (doomed, bystander) = (&ids[0], &ids[1]);
        let group = mesh.group("Engineering", &[]).await;
        let shutdown = CancellationToken::new();
        let _stop = shutdown.clone().drop_guard();
        let (gate_addr, gate) = LookupGate::start(mesh.user_addr, &shutdown).await;
        let gated = Mesh {
            groups: GroupServiceClient::new(
                directory_service::testing::shared()
                    .channel(start_group_service(&mesh.database_url, gate_addr, &shutdown).await),
            ),
            ..mesh.clone()
        };
        let adding = tokio::spawn({
            let (group, doomed, bystander) = (group.id.clone(), doomed.clone(), bystander.clone());
            async move {
                let add = json!([{"op": "add", "path": "members", "value": [{"value": doomed}, {"value": bystander}]}]);
                gated.try_patch(&group, add, None).await
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(30), gate.answered.notified())
            .await
            .expect("user-service answered the PATCH's lookup");

        // The user is deleted; user-service's outbox then tells group-service
        // (its session-service is away here, so the test delivers the removal
        // itself, with the same call).
        mesh.users
            .clone()
            .delete_user(idmesh_proto::v1::DeleteUserRequest {
                directory_id: mesh.directory_id.clone(),
                id: doomed.clone(),
                expected_version: None,
            })
            .await
            .expect("DeleteUser");
        let removed = mesh
            .groups
            .clone()
            .remove_member_everywhere(RemoveMemberEverywhereRequest {
                directory_id: mesh.directory_id.clone(),
                member_id: doomed.clone(),
            })
            .await
            .expect("RemoveMemberEverywhere")
            .into_inner();
        assert_eq!(removed.groups, 0, "not a member yet");
        gate.release.cancel();

        let patched = adding
            .await
            .expect("the PATCH ran")
            .expect("the rest of the PATCH applies");
        assert_eq!(patched.member_count, 1);
        assert_eq!(
            mesh.member_ids(&group.id).await,
            vec![bystander.clone()],
            "the deleted user is left out"
        );
        let refused = mesh
            .try_patch_members(&group.id, &[doomed], &[])
            .await
            .expect_err("a deleted user cannot be added");
        assert_eq!(scim_type(&refused), Some(ScimType::InvalidValue), "{refused:?}");
    }
);

/// How many sessions of the database of `db` wait for a lock.
async fn waiting_for_locks(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    row.try_get_by_index(0).expect("a count")
}

/// Waits until `n` sessions of the database wait for a lock.
async fn until_waiting(db: &sea_orm::DatabaseConnection, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while waiting_for_locks(db).await != n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} sessions never waited for a lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The same race on PostgreSQL, where the removal runs while the write is
/// inside its transaction, past its check for deleted users: the removal
/// waits for the write to commit, then finds and removes the new member.
/// (On SQLite a write transaction keeps every other writer out, so this
/// order cannot occur there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_removal_during_an_adding_transaction_waits_and_removes_the_new_member() {
    use sea_orm::{EntityTrait, QuerySelect};

    use crate::entity::group;

    idmesh_testkit::init_telemetry();
    let database = ScratchDatabase::new(idmesh_testkit::Backend::Postgres);
    let mesh = start_mesh(&database).await;
    let ids = mesh.users(1).await;
    let group = mesh.group("Engineering", &[]).await;
    let db = idmesh_store::connect(&mesh.database_url).await.expect("connect");

    // Another writer holds the group's row, so the write that adds the user
    // stops at the group's lock, after it has checked for deleted users.
    let txn = idmesh_store::begin_write(&db, None).await.expect("begin");
    group::Entity::find_by_id(group.id.clone())
        .lock_exclusive()
        .one(&txn)
        .await
        .expect("lock the group");
    let adding = tokio::spawn({
        let (mesh, group, user) = (mesh.clone(), group.id.clone(), ids[0].clone());
        async move { mesh.try_patch_members(&group, &[&user], &[]).await }
    });
    until_waiting(&db, 1).await;
    let removing = tokio::spawn({
        let mesh = mesh.clone();
        let user = ids[0].clone();
        async move {
            mesh.groups
                .clone()
                .remove_member_everywhere(RemoveMemberEverywhereRequest {
                    directory_id: mesh.directory_id.clone(),
                    member_id: user,
                })
                .await
        }
    });
    until_waiting(&db, 2).await;
    txn.commit().await.expect("release the group");

    let added = adding.await.expect("the add ran").expect("the add commits first");
    assert_eq!(added.member_count, 1);
    let removed = removing
        .await
        .expect("the removal ran")
        .expect("RemoveMemberEverywhere");
    assert_eq!(removed.into_inner().groups, 1, "the removal saw the new member");
    assert!(mesh.member_ids(&group.id).await.is_empty(), "no member left");
}

on_both!(
    ancestors_come_in_one_call_and_a_cycle_ends_where_it_closes,
    |mesh| async move {
        let ids = mesh.users(2).await;
        // ids[0] is in Team, Team in Department, Department in Company, and
        // Company in Team: a cycle. ids[1] is in nothing.
        let team = mesh.group("Team", &[&ids[0]]).await;
        let department = mesh.group("Department", &[&team.id]).await;
        let company = mesh.group("Company", &[&department.id]).await;
        mesh.try_patch_members(&team.id, &[&company.id], &[])
            .await
            .expect("Company into Team");
        let memberships = |include_ancestors| {
            let mesh = mesh.clone();
            let member_ids = vec![ids[0].clone(), ids[1].clone()];
            async move {
                let mut got: Vec<(String, String)> = mesh
                    .groups
                    .clone()
                    .list_groups_of_member(ListGroupsOfMemberRequest {
                        directory_id: mesh.directory_id.clone(),
                        member_ids,
                        include_ancestors,
                        without_group_names: false,
                    })
                    .await
                    .expect("ListGroupsOfMember")
                    .into_inner()
                    .memberships
                    .into_iter()
                    .map(|m| (m.member_id, m.group_id))
                    .collect();
                let sorted = {
                    let mut sorted = got.clone();
                    sorted.sort();
                    sorted
                };
                assert_eq!(got, sorted, "ordered by member id, then group id");
                got.sort();
                got
            }
        };
        assert_eq!(memberships(false).await, vec![(ids[0].clone(), team.id.clone())]);
        let mut expected = vec![
            (ids[0].clone(), team.id.clone()),
            (team.id.clone(), department.id.clone()),
            (department.id.clone(), company.id.clone()),
            (company.id.clone(), team.id.clone()),
        ];
        expected.sort();
        assert_eq!(
            memberships(true).await,
            expected,
            "each membership once, the cycle included"
        );
    }
);
