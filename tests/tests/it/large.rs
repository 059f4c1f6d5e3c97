//! Large documents on PostgreSQL and SQLite: a list page ends early at its
//! byte budget (4 MiB of documents) and the next page goes on from there,
//! by index and by cursor, over HTTP and gRPC; a gRPC message over the
//! 16 MiB limit is refused by name, and one over tonic's default (4 MiB)
//! but within ours passes on both sides.

use std::collections::BTreeSet;

use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_proto::v1::{CreateUserRequest, ListUsersRequest, PageRequest};
use idmesh_tests::{ScimClient, TestMesh, both_backends, encode};
use serde_json::{Value, json};
use tonic::Code;

/// Documents of about 900 kB: within the 1 MiB document limit, and five
/// of them pass the 4 MiB page budget.
const NICKNAME_BYTES: usize = 900_000;

/// Six large users, by id: a page of ten holds the first five.
async fn large_users(scim: &ScimClient) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for i in 0..6 {
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("large{i}@example.com"),
            "nickName": "n".repeat(NICKNAME_BYTES),
        });
        let created = scim.post("/Users", user, 201).await.body;
        ids.insert(created["id"].as_str().expect("an id").to_owned());
    }
    ids
}

fn ids(page: &Value) -> Vec<String> {
    page["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_owned())
        .collect()
}

both_backends!(
    a_page_of_large_users_ends_at_its_byte_budget_and_the_next_goes_on,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let all = large_users(&scim).await;

        let first = scim.get("/Users?count=10", 200).await.body;
        assert_eq!(
            (&first["totalResults"], &first["itemsPerPage"], &first["startIndex"]),
            (&json!(6), &json!(5), &json!(1))
        );
        let second = scim.get("/Users?count=10&startIndex=6", 200).await.body;
        assert_eq!(second["itemsPerPage"], json!(1));
        let by_index: BTreeSet<String> = ids(&first).into_iter().chain(ids(&second)).collect();
        assert_eq!(by_index, all, "each user once, none skipped");

        let first = scim.get("/Users?count=10&cursor=", 200).await.body;
        assert_eq!(first["itemsPerPage"], json!(5));
        let next = first["nextCursor"].as_str().expect("a next page");
        let second = scim
            .get(&format!("/Users?count=10&cursor={}", encode(next)), 200)
            .await
            .body;
        assert_eq!(second["itemsPerPage"], json!(1));
        assert_eq!(second.get("nextCursor"), None);
        let back = second["previousCursor"].as_str().expect("a page behind");
        let behind = scim
            .get(&format!("/Users?count=10&cursor={}", encode(back)), 200)
            .await
            .body;
        assert_eq!(ids(&behind), ids(&first), "the page behind is the first page again");
        let by_cursor: BTreeSet<String> = ids(&first).into_iter().chain(ids(&second)).collect();
        assert_eq!(by_cursor, all);

        // The directory-wide search ends its page with the users' part.
        let search = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "count": 10,
        });
        scim.groups().create(&idmesh_tests::NewGroup::new("Small", &[])).await;
        let searched = scim.post("/.search", search, 200).await.body;
        assert_eq!(
            (&searched["totalResults"], &searched["itemsPerPage"]),
            (&json!(7), &json!(5))
        );

        // gRPC callers get the same page.
        let page = mesh
            .users()
            .list_users(ListUsersRequest {
                directory_id: scim.directory_id.clone(),
                page: Some(PageRequest {
                    count: 10,
                    ..PageRequest::default()
                }),
                ..ListUsersRequest::default()
            })
            .await
            .expect("a page")
            .into_inner();
        assert_eq!((page.users.len(), page.total_results), (5, 6));
    }
);

both_backends!(
    a_grpc_message_over_the_limit_is_refused_by_name,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let request = |bytes: usize| CreateUserRequest {
            directory_id: scim.directory_id.clone(),
            resource_json: json!({"userName": "big@example.com", "nickName": "n".repeat(bytes)}).to_string(),
        };
        // A caller that is not idmesh's, with tonic's defaults.
        let mut foreign = UserServiceClient::new(mesh.channel_as(mesh.user_addr, &mesh.admin_key));

        // Over tonic's 4 MiB default, within idmesh's 16 MiB: it reaches
        // user-service, which refuses the document by its own limit.
        let refused = foreign
            .create_user(request(5 * 1024 * 1024))
            .await
            .expect_err("over the document limit");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

        for mut users in [foreign, mesh.users()] {
            let too_large = users
                .create_user(request(17 * 1024 * 1024))
                .await
                .expect_err("over the message limit");
            assert_eq!(too_large.code(), Code::OutOfRange, "{too_large:?}");
            assert!(
                too_large.message().contains("the limit is: 16777216 bytes"),
                "{too_large:?}"
            );
        }
    }
);
