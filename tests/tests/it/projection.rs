//! attributes / excludedAttributes, sortBy / sortOrder and POST .search over
//! HTTP, on PostgreSQL and SQLite.

use idmesh_tests::{NewUser, ScimClient, TestMesh, both_backends, encode, patch_op, user};
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("id").to_owned()
}

fn keys(resource: &Value) -> Vec<&str> {
    resource
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// userNames of a ListResponse, in order.
fn names(list: &Value) -> Vec<&str> {
    list["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["userName"].as_str().expect("userName"))
        .collect()
}

both_backends!(
    every_response_with_a_user_honours_attributes,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut body = user("ada@example.com");
        body[ENTERPRISE] = json!({"department": "R&D", "employeeNumber": "1"});
        let created = scim.post("/Users?attributes=userName", body, 201).await.body;
        assert_eq!(keys(&created), ["schemas", "id", "userName"]);
        let id = id_of(&created);

        let got = scim
            .get(
                &format!("/Users/{id}?attributes=name.givenName,{ENTERPRISE}:department"),
                200,
            )
            .await;
        assert_eq!(got.body["name"], json!({"givenName": "Test"}));
        assert_eq!(got.body[ENTERPRISE], json!({"department": "R&D"}));
        assert_eq!(got.body.get("userName"), None);

        let excluded = scim
            .get(&format!("/Users/{id}?excludedAttributes=emails,meta,id"), 200)
            .await;
        assert_eq!(excluded.body.get("emails"), None);
        assert_eq!(excluded.body.get("meta"), None);
        assert_eq!(excluded.body["id"], json!(id), "id is always returned");
        assert_eq!(excluded.body["userName"], "ada@example.com");

        let patched = scim
            .patch(
                &format!("/Users/{id}?excludedAttributes=emails"),
                patch_op(json!([{"op": "replace", "path": "title", "value": "Countess"}])),
                200,
            )
            .await;
        assert_eq!(patched.body["title"], "Countess");
        assert_eq!(patched.body.get("emails"), None);

        let replaced = scim
            .put(&format!("/Users/{id}?attributes=title"), user("ada@example.com"), 200)
            .await;
        assert_eq!(keys(&replaced.body), ["schemas", "id"], "PUT removed title");

        let listed = scim.get("/Users?attributes=userName&excludedAttributes=id", 200).await;
        assert_eq!(
            listed.body["Resources"],
            json!([{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "ada@example.com"}])
        );
    }
);

both_backends!(unsupported_query_parameters_are_400, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let id = scim.users().create(&NewUser::new("q@example.com")).await.id;
    for path in [
        format!("/Users/{id}?filter=userName%20pr"),
        format!("/Users/{id}?attribute=userName"),
        "/Users?sort=userName".to_owned(),
    ] {
        let response = scim.get(&path, 400).await;
        assert_eq!(response.body["scimType"], "invalidValue", "{path}");
    }
    let malformed = scim
        .get(&format!("/Users/{id}?attributes={}", encode("userName,[x")), 400)
        .await;
    assert_eq!(malformed.body["scimType"], "invalidValue");
});

/// Users whose family names sort differently by case and by script.
async fn family(scim: &ScimClient) {
    let people = [
        (
            "u1@example.com",
            Some("zola"),
            vec![
                json!({"value": "b@x.org"}),
                json!({"value": "z@x.org", "primary": true}),
            ],
        ),
        ("u2@example.com", Some("Ávila"), vec![json!({"value": "a@x.org"})]),
        ("u3@example.com", Some("Brown"), vec![]),
        ("u4@example.com", None, vec![json!({"value": "c@x.org"})]),
        (
            "u5@example.com",
            Some("adams"),
            vec![json!({"value": "y@x.org"}), json!({"value": "d@x.org"})],
        ),
    ];
    for (user_name, family_name, emails) in people {
        let mut body = json!({"userName": user_name, "emails": emails});
        if let Some(family_name) = family_name {
            body["name"] = json!({"familyName": family_name});
        }
        scim.post("/Users", body, 201).await;
    }
}

both_backends!(
    sort_by_orders_ignoring_case_with_missing_values_last,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        family(&scim).await;
        let ascending = scim.get("/Users?sortBy=name.familyName", 200).await.body;
        assert_eq!(
            names(&ascending),
            [
                "u5@example.com",
                "u3@example.com",
                "u1@example.com",
                "u2@example.com",
                "u4@example.com"
            ]
        );
        let descending = scim
            .get(
                "/Users?sortBy=NAME.FAMILYNAME&sortOrder=descending&startIndex=2&count=2",
                200,
            )
            .await
            .body;
        assert_eq!(names(&descending), ["u1@example.com", "u3@example.com"]);
        assert_eq!(descending["totalResults"], 5);
        // A multi-valued attribute sorts by its primary value, else its first.
        let by_email = scim.get("/Users?sortBy=emails.value", 200).await.body;
        assert_eq!(
            names(&by_email),
            [
                "u2@example.com",
                "u4@example.com",
                "u5@example.com",
                "u1@example.com",
                "u3@example.com"
            ]
        );
        let by_user_name = scim
            .get("/Users?sortBy=userName&sortOrder=Descending&count=1", 200)
            .await
            .body;
        assert_eq!(names(&by_user_name), ["u5@example.com"]);

        for bad in [
            "/Users?sortBy=userName&sortOrder=up",
            "/Users?sortBy=shoeSize",
            "/Users?sortBy=name",
        ] {
            let response = scim.get(bad, 400).await;
            assert_eq!(response.body["scimType"], "invalidValue", "{bad}");
        }
    }
);

both_backends!(search_posts_the_query_in_a_body, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    family(&scim).await;
    let request = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "name.familyName pr",
        "sortBy": "name.familyName",
        "sortOrder": "descending",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 2
    });
    for path in ["/Users/.search", "/.search"] {
        let found = scim.post(path, request.clone(), 200).await.body;
        assert_eq!(found["totalResults"], 4, "{path}");
        assert_eq!(names(&found), ["u2@example.com", "u1@example.com"], "{path}");
        assert_eq!(keys(&found["Resources"][0]), ["schemas", "id", "userName"], "{path}");
    }
    let wrong = scim
        .post("/Users/.search", json!({"filters": "userName pr"}), 400)
        .await;
    assert_eq!(wrong.body["scimType"], "invalidValue");
});
