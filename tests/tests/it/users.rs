//! SCIM /Users through the gateway to user-service, on PostgreSQL and SQLite.

use idmesh_tests::{NewUser, TestMesh, both_backends, encode, patch_op, user};
use reqwest::Method;
use serde_json::{Value, json};

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("the resource has an id").to_owned()
}

both_backends!(
    creating_a_user_answers_201_with_location_and_etag,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let created = scim.post("/Users", user("ada@example.com"), 201).await;
        let id = id_of(&created.body);
        let location = created.header("location").expect("a Location header").to_owned();
        assert_eq!(location, format!("{}/Users/{id}", scim.base_url));
        assert_eq!(created.body["meta"]["location"], json!(location));
        assert_eq!(created.body["meta"]["resourceType"], json!("User"));
        assert_eq!(created.header("etag"), Some("W/\"1\""));
        assert_eq!(created.body["meta"]["version"], json!("W/\"1\""));
        assert!(
            created
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/scim+json"))
        );
        assert_eq!(created.body["userName"], json!("ada@example.com"));
        assert_eq!(created.body["name"]["familyName"], json!("User"));

        let fetched = scim.get(&format!("/Users/{id}"), 200).await;
        assert_eq!(fetched.body, created.body);
    }
);

both_backends!(
    a_client_that_accepts_only_application_json_gets_it,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let created = scim.users().create(&NewUser::new("onelogin@example.com")).await;
        let path = format!("/Users/{}", created.id);
        let content_type = |accept: &'static str, expect: u16, path: String| {
            let scim = scim.clone();
            async move {
                let response = scim
                    .send_with_headers(Method::GET, &path, &[("accept", accept)], None, expect)
                    .await;
                response.header("content-type").map(str::to_owned)
            }
        };
        let plain = content_type("application/json", 200, path.clone()).await;
        assert_eq!(plain.as_deref(), Some("application/json"));
        let scim_json = content_type("application/scim+json", 200, path.clone()).await;
        assert_eq!(scim_json.as_deref(), Some("application/scim+json"));
        let either = content_type("application/json, application/scim+json", 200, path).await;
        assert_eq!(either.as_deref(), Some("application/scim+json"));
        let error = content_type("application/json", 404, "/Users/no-such-user".to_owned()).await;
        assert_eq!(error.as_deref(), Some("application/json"), "errors too");
    }
);

both_backends!(user_name_is_unique_ignoring_case, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    scim.users().create(&NewUser::new("Grace.Hopper@example.com")).await;
    let conflict = scim.post("/Users", user("grace.hopper@EXAMPLE.com"), 409).await;
    assert_eq!(conflict.body["scimType"], json!("uniqueness"));
    assert_eq!(conflict.body["status"], json!("409"));
    assert_eq!(
        conflict.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
});

both_backends!(
    the_same_user_name_may_exist_in_two_directories,
    |mesh: TestMesh| async move {
        let (a, b) = (mesh.new_directory().await, mesh.new_directory().await);
        a.users().create(&NewUser::new("shared@example.com")).await;
        b.users().create(&NewUser::new("shared@example.com")).await;
    }
);

both_backends!(
    user_name_filter_ignores_case_and_keeps_original_case,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let created = scim.create_user("Alan.Turing@example.com").await;
        let query = format!("/Users?filter={}", encode("userName eq \"ALAN.TURING@EXAMPLE.COM\""));
        let found = scim.get(&query, 200).await.body;
        assert_eq!(found["totalResults"], json!(1));
        assert_eq!(found["Resources"][0]["id"], created["id"]);
        assert_eq!(found["Resources"][0]["userName"], json!("Alan.Turing@example.com"));
        assert_eq!(
            found["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
        );
    }
);

both_backends!(
    a_filter_that_matches_nothing_is_an_empty_list,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        scim.users().create(&NewUser::new("someone@example.com")).await;
        let found = scim.users().list("userName eq \"nobody@example.com\"").await;
        assert_eq!(found.total_results, 0);
        assert_eq!(found.items_per_page, 0);
        assert_eq!(found.start_index, 1);
        assert!(found.resources.is_empty());
    }
);

both_backends!(
    external_id_and_user_name_filters_combine_with_and,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let users = scim.users();
        let created = users
            .create(&NewUser::new("ext@example.com").external_id("00u1abcd"))
            .await;
        users.create(&NewUser::new("other@example.com")).await;

        let found = users.list("externalId eq \"00u1abcd\"").await;
        assert_eq!(found.total_results, 1);
        assert_eq!(found.resources[0].id, created.id);

        let both = users
            .list("userName Eq \"EXT@example.com\" and externalId eq \"00u1abcd\"")
            .await;
        assert_eq!(both.total_results, 1);
        // externalId is case-exact.
        let wrong_case = users.list("externalId eq \"00U1ABCD\"").await;
        assert_eq!(wrong_case.total_results, 0);
    }
);

both_backends!(
    paging_with_count_2_visits_every_user_exactly_once,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut expected = Vec::new();
        for i in 0..7 {
            expected.push(
                scim.users()
                    .create(&NewUser::new(&format!("page{i}@example.com")))
                    .await
                    .id,
            );
        }
        let mut seen = Vec::new();
        let mut start_index = 1;
        loop {
            let page = scim
                .get(&format!("/Users?startIndex={start_index}&count=2"), 200)
                .await
                .body;
            assert_eq!(page["totalResults"], json!(7));
            assert_eq!(page["startIndex"], json!(start_index));
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            assert_eq!(page["itemsPerPage"], json!(resources.len()));
            if resources.is_empty() {
                break;
            }
            assert!(resources.len() <= 2);
            seen.extend(resources.iter().map(id_of));
            start_index += 2;
        }
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected);
    }
);

both_backends!(
    patch_active_false_deactivates_in_okta_and_entra_dialects,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let users = scim.users();
        let okta = users.create(&NewUser::new("okta@example.com")).await.id;
        let entra = users.create(&NewUser::new("entra@example.com")).await.id;

        // Okta: a path-less replace with an object.
        let patched = scim
            .patch(
                &format!("/Users/{okta}"),
                patch_op(json!([{"op": "replace", "value": {"active": false}}])),
                200,
            )
            .await;
        assert_eq!(patched.body["active"], json!(false));
        assert_eq!(patched.header("etag"), Some("W/\"2\""));
        assert_eq!(users.get(&okta).await.active, Some(false));

        // Entra ID: capitalised op, a path, and the boolean as a string.
        users
            .patch(&entra, json!([{"op": "Replace", "path": "active", "value": "False"}]))
            .await;
        assert_eq!(users.get(&entra).await.active, Some(false));

        let inactive = users.list("active eq false").await;
        assert_eq!(inactive.total_results, 2);
    }
);

both_backends!(patch_applies_all_operations_or_none, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let id = scim.users().create(&NewUser::new("atomic@example.com")).await.id;
    let failing = patch_op(json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "id", "value": "hijacked"}
    ]));
    let rejected = scim.patch(&format!("/Users/{id}"), failing, 400).await;
    assert_eq!(rejected.body["scimType"], json!("mutability"));
    let unchanged = scim.get(&format!("/Users/{id}"), 200).await;
    assert_eq!(unchanged.body.get("displayName"), None);
    assert_eq!(unchanged.header("etag"), Some("W/\"1\""));
});

both_backends!(
    a_user_is_created_active_and_active_can_be_removed,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut body = user("unassigned@example.com");
        body.as_object_mut().expect("object").remove("active");
        let created = scim.post("/Users", body, 201).await.body;
        assert_eq!(created["active"], json!(true));
        let id = id_of(&created);

        let removed = scim
            .patch(
                &format!("/Users/{id}"),
                patch_op(json!([{"op": "remove", "path": "active"}])),
                200,
            )
            .await;
        assert_eq!(removed.body.get("active"), None, "{:#}", removed.body);
        assert_eq!(scim.get(&format!("/Users/{id}"), 200).await.body.get("active"), None);
        assert_eq!(scim.users().list("active pr").await.total_results, 0);
        assert_eq!(scim.users().list("not (active eq false)").await.total_results, 1);
    }
);

both_backends!(put_replaces_the_whole_user, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let mut body = user("replace@example.com");
    body["title"] = json!("Engineer");
    let id = id_of(&scim.post("/Users", body, 201).await.body);

    let replacement = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Replaced@example.com",
        "displayName": "Replaced",
        "active": true
    });
    let replaced = scim.put(&format!("/Users/{id}"), replacement, 200).await;
    assert_eq!(replaced.body["userName"], json!("Replaced@example.com"));
    assert_eq!(replaced.body["displayName"], json!("Replaced"));
    assert_eq!(
        replaced.body.get("title"),
        None,
        "attributes left out of a PUT are cleared"
    );
    assert_eq!(replaced.body.get("emails"), None);
    assert_eq!(replaced.header("etag"), Some("W/\"2\""));
    assert_eq!(scim.get(&format!("/Users/{id}"), 200).await.body, replaced.body);
    assert_eq!(
        scim.users()
            .list("userName eq \"replaced@example.com\"")
            .await
            .total_results,
        1
    );
});

both_backends!(delete_answers_204_and_the_user_is_gone, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let id = scim.users().create(&NewUser::new("gone@example.com")).await.id;
    let deleted = scim.delete(&format!("/Users/{id}"), 204).await;
    assert_eq!(deleted.body, Value::Null);
    let missing = scim.get(&format!("/Users/{id}"), 404).await;
    assert_eq!(missing.body["status"], json!("404"));
    scim.delete(&format!("/Users/{id}"), 404).await;
    // The userName is free again.
    scim.users().create(&NewUser::new("gone@example.com")).await;
});

both_backends!(malformed_json_is_400_invalid_syntax, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let response = scim
        .send_raw(
            reqwest::Method::POST,
            "/Users",
            Some(b"{\"userName\": \"half".to_vec()),
            400,
        )
        .await;
    assert_eq!(response.body["scimType"], json!("invalidSyntax"));
    let not_an_object = scim
        .send_raw(reqwest::Method::POST, "/Users", Some(b"[1, 2]".to_vec()), 400)
        .await;
    assert_eq!(not_an_object.body["scimType"], json!("invalidSyntax"));
    // Past axum's 2 MB limit: too large, not malformed.
    let huge = format!("{{\"userName\": \"{}\"}}", "x".repeat(3 << 20));
    let too_large = scim
        .send_raw(reqwest::Method::POST, "/Users", Some(huge.into_bytes()), 413)
        .await;
    assert_eq!(too_large.body["status"], json!("413"));
});

both_backends!(
    a_user_without_user_name_is_400_invalid_value,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut body = user("x@example.com");
        body.as_object_mut().expect("an object").remove("userName");
        let response = scim.post("/Users", body, 400).await;
        assert_eq!(response.body["scimType"], json!("invalidValue"));
        assert!(response.body["detail"].as_str().is_some_and(|d| d.contains("userName")));
    }
);

both_backends!(a_bad_filter_is_400_invalid_filter, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let response = scim.get("/Users?filter=userName%20eq", 400).await;
    assert_eq!(response.body["scimType"], json!("invalidFilter"));
});

both_backends!(requests_without_a_valid_token_are_401, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let anonymous = scim.with_token(None).get("/Users", 401).await;
    assert_eq!(anonymous.body["status"], json!("401"));
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    scim.with_token(Some("idm_not-a-real-token")).get("/Users", 401).await;
    scim.with_token(Some("idm_not-a-real-token"))
        .post("/Users", user("sneaky@example.com"), 401)
        .await;
});

both_backends!(a_token_works_only_on_its_own_directory, |mesh: TestMesh| async move {
    let a = mesh.new_directory().await;
    let b = mesh.new_directory().await;
    let victim = b.users().create(&NewUser::new("victim@example.com")).await.id;

    let a_token_on_b = b.with_token(a.token.as_deref());
    a_token_on_b.get("/Users", 401).await;
    a_token_on_b.get(&format!("/Users/{victim}"), 401).await;
    a_token_on_b.post("/Users", user("intruder@example.com"), 401).await;
    a_token_on_b
        .patch(
            &format!("/Users/{victim}"),
            patch_op(json!([{"op": "replace", "value": {"active": false}}])),
            401,
        )
        .await;
    a_token_on_b.delete(&format!("/Users/{victim}"), 401).await;

    let listed = b.get("/Users", 200).await.body;
    assert_eq!(listed["totalResults"], json!(1));
    let still_there = b.users().get(&victim).await;
    assert_eq!(still_there.active, Some(true));
    assert_eq!(still_there.meta.version, "W/\"1\"");
    // And directory A cannot see B's user under its own URL either.
    a.get(&format!("/Users/{victim}"), 404).await;
});

both_backends!(passwords_are_accepted_but_never_returned, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let mut body = user("secret@example.com");
    body["password"] = json!("hunter2-Correct-Horse");
    let created = scim.post("/Users", body, 201).await.body;
    assert_eq!(created.get("password"), None);
    let id = id_of(&created);
    assert_eq!(scim.get(&format!("/Users/{id}"), 200).await.body.get("password"), None);
    let patched = scim
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "replace", "path": "password", "value": "n3w"}])),
            200,
        )
        .await;
    assert_eq!(patched.body.get("password"), None);
});

both_backends!(
    enterprise_and_custom_extensions_are_kept_whole,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let custom = "urn:example:params:scim:schemas:extension:acme:1.0:User";
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise, custom],
            "userName": "ext.user@example.com",
            enterprise: {"department": "R&D", "employeeNumber": "42", "manager": {"value": "boss-id"}},
            custom: {"badge": {"color": "blue", "floors": [1, 3]}, "clearance": "L2"}
        });
        let created = scim.post("/Users", body, 201).await.body;
        assert_eq!(created[enterprise]["department"], json!("R&D"));
        assert_eq!(created[enterprise]["manager"]["value"], json!("boss-id"));
        assert_eq!(
            created[custom],
            json!({"badge": {"color": "blue", "floors": [1, 3]}, "clearance": "L2"})
        );
        let schemas = created["schemas"].as_array().expect("schemas");
        assert!(schemas.contains(&json!(enterprise)) && schemas.contains(&json!(custom)));

        // Entra ID sets enterprise attributes with URN-qualified paths.
        let id = id_of(&created);
        let patched = scim
            .patch(
                &format!("/Users/{id}"),
                patch_op(json!([{"op": "Replace", "path": format!("{enterprise}:department"), "value": "Sales"}])),
                200,
            )
            .await;
        assert_eq!(patched.body[enterprise]["department"], json!("Sales"));
        assert_eq!(patched.body[enterprise]["employeeNumber"], json!("42"));
        assert_eq!(patched.body[custom]["clearance"], json!("L2"));
    }
);

both_backends!(unknown_endpoints_answer_scim_404, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let missing = scim.get("/Widgets", 404).await;
    assert_eq!(missing.body["status"], json!("404"));
});

both_backends!(
    renaming_to_a_taken_user_name_is_409_and_changes_nothing,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        scim.users().create(&NewUser::new("first@example.com")).await;
        let second = scim.users().create(&NewUser::new("second@example.com")).await.id;
        let rename = json!({"userName": "FIRST@example.com"});
        let put = scim.put(&format!("/Users/{second}"), rename, 409).await;
        assert_eq!(put.body["scimType"], json!("uniqueness"));
        let patch = patch_op(json!([{"op": "replace", "path": "userName", "value": "First@Example.com"}]));
        let patched = scim.patch(&format!("/Users/{second}"), patch, 409).await;
        assert_eq!(patched.body["scimType"], json!("uniqueness"));
        let unchanged = scim.get(&format!("/Users/{second}"), 200).await;
        assert_eq!(unchanged.body["userName"], json!("second@example.com"));
        assert_eq!(unchanged.header("etag"), Some("W/\"1\""));
    }
);
