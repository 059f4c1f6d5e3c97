//! Conditional requests on /Users/{id} (RFC 7644 §3.14): ETags, If-Match
//! and If-None-Match over HTTP, on PostgreSQL and SQLite.

use idmesh_tests::{NewUser, ScimClient, ScimResponse, TestMesh, both_backends, patch_op, user};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates a user and returns its path, `/Users/{id}`.
async fn create(scim: &ScimClient, user_name: &str) -> String {
    let created = scim.users().create(&NewUser::new(user_name)).await;
    format!("/Users/{}", created.id)
}

fn rename(title: &str) -> Value {
    patch_op(json!([{"op": "replace", "path": "title", "value": title}]))
}

async fn get_if(scim: &ScimClient, path: &str, header: &str, value: &str, expect: u16) -> ScimResponse {
    scim.send_with_headers(Method::GET, path, &[(header, value)], None, expect)
        .await
}

async fn patch_if(scim: &ScimClient, path: &str, header: &str, value: &str, title: &str, expect: u16) -> ScimResponse {
    scim.send_with_headers(Method::PATCH, path, &[(header, value)], Some(rename(title)), expect)
        .await
}

async fn delete_if(scim: &ScimClient, path: &str, header: &str, value: &str, expect: u16) -> ScimResponse {
    scim.send_with_headers(Method::DELETE, path, &[(header, value)], None, expect)
        .await
}

fn assert_precondition_failed(response: &ScimResponse) {
    assert_eq!(
        response.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(response.body["status"], json!("412"));
}

both_backends!(
    get_with_the_current_etag_in_if_none_match_is_304,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let path = create(&scim, "etag.get@example.com").await;
        let fetched = scim.get(&path, 200).await;
        let etag = fetched.header("etag").expect("an ETag").to_owned();
        assert_eq!(etag, "W/\"1\"");
        assert_eq!(fetched.body["meta"]["version"], json!(etag));

        for current in [etag.as_str(), "\"1\"", "*", "W/\"7\", W/\"1\""] {
            let not_modified = get_if(&scim, &path, "if-none-match", current, 304).await;
            assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
            assert_eq!(not_modified.body, Value::Null, "a 304 has no body");
        }
        for other in ["W/\"2\"", "\"not-ours\""] {
            let full = get_if(&scim, &path, "if-none-match", other, 200).await;
            assert_eq!(full.body, fetched.body);
        }

        // After a change, the old ETag no longer saves the transfer.
        scim.patch(&path, rename("Engineer"), 200).await;
        let changed = get_if(&scim, &path, "if-none-match", &etag, 200).await;
        assert_eq!(changed.header("etag"), Some("W/\"2\""));
        assert_eq!(changed.body["title"], json!("Engineer"));
    }
);

both_backends!(get_with_a_stale_if_match_is_412, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let path = create(&scim, "etag.read@example.com").await;
    scim.patch(&path, rename("Engineer"), 200).await;
    assert_precondition_failed(&get_if(&scim, &path, "if-match", "W/\"1\"", 412).await);
    assert_precondition_failed(&get_if(&scim, &path, "if-match", "\"not-ours\"", 412).await);
    get_if(&scim, &path, "if-match", "W/\"2\"", 200).await;
    get_if(&scim, &path, "if-match", "*", 200).await;
});

both_backends!(
    patch_with_a_stale_if_match_is_412_and_changes_nothing,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let path = create(&scim, "etag.patch@example.com").await;
        let first = scim.get(&path, 200).await;
        let stale = first.header("etag").expect("an ETag").to_owned();
        // Someone else changes the user: the ETag the client holds is stale.
        scim.patch(&path, rename("Engineer"), 200).await;
        let before = scim.get(&path, 200).await;

        let refused = patch_if(&scim, &path, "if-match", &stale, "Manager", 412).await;
        assert_precondition_failed(&refused);
        let after = scim.get(&path, 200).await;
        assert_eq!(after.body, before.body);
        assert_eq!(after.header("etag"), Some("W/\"2\""));

        let current = before.header("etag").expect("an ETag").to_owned();
        let applied = patch_if(&scim, &path, "if-match", &current, "Manager", 200).await;
        assert_eq!(applied.header("etag"), Some("W/\"3\""));
        assert_eq!(applied.body["meta"]["version"], json!("W/\"3\""));
        assert_eq!(applied.body["title"], json!("Manager"));
        assert_eq!(scim.get(&path, 200).await.body["title"], json!("Manager"));
    }
);

both_backends!(
    put_honours_if_match_and_any_version_with_star,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let path = create(&scim, "etag.put@example.com").await;
        let mut body = user("etag.put@example.com");
        body["title"] = json!("Replaced");

        let stale = scim
            .send_with_headers(Method::PUT, &path, &[("if-match", "W/\"9\"")], Some(body.clone()), 412)
            .await;
        assert_precondition_failed(&stale);
        assert_eq!(scim.get(&path, 200).await.body["title"], Value::Null);

        let replaced = scim
            .send_with_headers(Method::PUT, &path, &[("if-match", "W/\"1\"")], Some(body.clone()), 200)
            .await;
        assert_eq!(replaced.header("etag"), Some("W/\"2\""));
        assert_eq!(replaced.body["title"], json!("Replaced"));

        let any = scim
            .send_with_headers(Method::PUT, &path, &[("if-match", "*")], Some(body), 200)
            .await;
        assert_eq!(any.header("etag"), Some("W/\"3\""));
    }
);

both_backends!(
    delete_with_a_stale_if_match_is_412_and_the_user_stays,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let path = create(&scim, "etag.delete@example.com").await;
        scim.patch(&path, rename("Engineer"), 200).await;

        assert_precondition_failed(&delete_if(&scim, &path, "if-match", "W/\"1\"", 412).await);
        assert_precondition_failed(&delete_if(&scim, &path, "if-match", "\"not-ours\"", 412).await);
        let still_there = scim.get(&path, 200).await;
        assert_eq!(still_there.body["title"], json!("Engineer"));

        delete_if(&scim, &path, "if-match", "W/\"2\"", 204).await;
        scim.get(&path, 404).await;
    }
);

both_backends!(
    if_match_with_several_versions_accepts_any_of_them,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let path = create(&scim, "etag.list@example.com").await;
        scim.patch(&path, rename("Engineer"), 200).await;

        let applied = patch_if(&scim, &path, "if-match", "W/\"1\", W/\"2\"", "Manager", 200).await;
        assert_eq!(applied.header("etag"), Some("W/\"3\""));
        // A tag that is not ours does not hide the ones that are.
        let mixed = patch_if(&scim, &path, "if-match", "\"not-ours\", W/\"3\"", "Director", 200).await;
        assert_eq!(mixed.header("etag"), Some("W/\"4\""));
        // None of them is current any more.
        let refused = patch_if(&scim, &path, "if-match", "W/\"2\", W/\"3\"", "CEO", 412).await;
        assert_precondition_failed(&refused);
        assert_eq!(scim.get(&path, 200).await.body["title"], json!("Director"));
    }
);

both_backends!(
    if_none_match_star_refuses_writes_to_an_existing_user,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let path = create(&scim, "etag.star@example.com").await;
        let before = scim.get(&path, 200).await.body;

        assert_precondition_failed(&patch_if(&scim, &path, "if-none-match", "*", "Manager", 412).await);
        let put = scim
            .send_with_headers(
                Method::PUT,
                &path,
                &[("if-none-match", "*")],
                Some(user("etag.star@example.com")),
                412,
            )
            .await;
        assert_precondition_failed(&put);
        assert_precondition_failed(&delete_if(&scim, &path, "if-none-match", "*", 412).await);
        assert_precondition_failed(&delete_if(&scim, &path, "if-none-match", "W/\"1\"", 412).await);
        assert_eq!(scim.get(&path, 200).await.body, before);

        // Naming only other versions, If-None-Match lets the write through.
        let applied = patch_if(&scim, &path, "if-none-match", "W/\"5\"", "Manager", 200).await;
        assert_eq!(applied.header("etag"), Some("W/\"2\""));
    }
);

both_backends!(preconditions_on_a_missing_user_are_404, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let path = "/Users/0196d5c2-0000-7000-8000-000000000000";
    for (header, value) in [
        ("if-match", "W/\"1\""),
        ("if-match", "*"),
        ("if-match", "W/\"1\", W/\"2\""),
        ("if-none-match", "*"),
    ] {
        let missing = patch_if(&scim, path, header, value, "Ghost", 404).await;
        assert_eq!(missing.body["status"], json!("404"));
        delete_if(&scim, path, header, value, 404).await;
        get_if(&scim, path, header, value, 404).await;
    }
});
