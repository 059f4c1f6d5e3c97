//! Cursor paging (RFC 9865) on PostgreSQL and SQLite: a walk that users
//! are created during sees each existing user once and a new one at most
//! once; `previousCursor` leads back; index paging keeps working.

use std::collections::BTreeSet;

use idmesh_tests::{ScimClient, TestMesh, both_backends, encode, user};
use serde_json::{Value, json};

/// One page of a cursor walk over `/Users`.
async fn page(scim: &ScimClient, cursor: &str, count: u32) -> Value {
    scim.get(&format!("/Users?cursor={}&count={count}", encode(cursor)), 200)
        .await
        .body
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
    a_cursor_walk_sees_each_user_once_while_users_are_created,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut existing = BTreeSet::new();
        for i in 0..7 {
            existing.insert(
                scim.create_user(&format!("user{i}")).await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
        }
        let mut seen = Vec::new();
        let mut created_during = BTreeSet::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let body = page(&scim, &cursor, 2).await;
            assert!(body.get("startIndex").is_none(), "{body:#}");
            assert!(body["itemsPerPage"].as_u64().is_some_and(|n| n <= 2));
            seen.extend(ids(&body));
            pages += 1;
            assert!(pages < 20, "the walk ends");
            // Users join while the walk goes on.
            if pages <= 2 {
                let id = scim.create_user(&format!("joiner{pages}")).await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned();
                created_during.insert(id);
            }
            match body["nextCursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "nobody twice: {seen:?}");
        assert!(existing.is_subset(&unique), "nobody skipped");
        assert!(unique.difference(&existing).all(|id| created_during.contains(id)));

        let first = page(&scim, "", 3).await;
        assert!(first.get("previousCursor").is_none());
        let second = page(&scim, first["nextCursor"].as_str().expect("a next page"), 3).await;
        let back = page(&scim, second["previousCursor"].as_str().expect("a previous page"), 3).await;
        assert_eq!(ids(&back), ids(&first));
        assert_eq!(back["nextCursor"], first["nextCursor"]);
        assert!(back.get("previousCursor").is_none());
        assert_eq!(first["totalResults"], json!(9));

        let searched = scim
            .post(
                "/Users/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                       "cursor": first["nextCursor"], "count": 3}),
                200,
            )
            .await
            .body;
        assert_eq!(ids(&searched), ids(&second));
    }
);

both_backends!(
    cursors_follow_filters_and_reject_what_they_cannot_honour,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        for name in ["ann", "bob", "ann.b", "cy"] {
            scim.post("/Users", user(name), 201).await;
        }
        let filter = encode(r#"userName sw "ann""#);
        let body = scim
            .get(&format!("/Users?filter={filter}&cursor=&count=1"), 200)
            .await
            .body;
        assert_eq!(body["totalResults"], json!(2));
        let next = body["nextCursor"].as_str().expect("a next page").to_owned();
        let last = scim
            .get(&format!("/Users?filter={filter}&cursor={}&count=1", encode(&next)), 200)
            .await
            .body;
        assert!(last.get("nextCursor").is_none(), "{last:#}");

        let sorted = scim.get("/Users?cursor=&sortBy=userName", 400).await;
        assert_eq!(sorted.body["scimType"], json!("invalidValue"));
        scim.get("/Users?cursor=&startIndex=1", 400).await;
        let foreign = scim.get("/Users?cursor=page-two", 400).await;
        assert_eq!(foreign.body["scimType"], json!("invalidCursor"));
        let root = scim
            .post(
                "/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": ""}),
                400,
            )
            .await;
        assert_eq!(root.body["scimType"], json!("invalidValue"));

        let indexed = scim.get("/Users?startIndex=2&count=2&sortBy=userName", 200).await.body;
        assert_eq!(indexed["startIndex"], json!(2));
        assert_eq!(indexed["Resources"][0]["userName"], json!("ann.b"));

        scim.create_group("g1", &[]).await;
        scim.create_group("g2", &[]).await;
        let groups = scim.get("/Groups?cursor&count=1", 200).await.body;
        assert_eq!(groups["Resources"][0]["displayName"], json!("g1"));
        assert!(groups["nextCursor"].is_string());

        let spc = scim.get("/ServiceProviderConfig", 200).await.body;
        assert_eq!(
            spc["pagination"],
            json!({"cursor": true, "index": true, "defaultPaginationMethod": "index",
                   "defaultPageSize": 100, "maxPageSize": 1000})
        );
    }
);
