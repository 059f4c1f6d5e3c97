//! `POST /Bulk` (RFC 7644 §3.7) on PostgreSQL and SQLite: bulkId
//! references in any order, cycles, failOnErrors, versions, and the limits
//! ServiceProviderConfig advertises.

use idmesh_tests::{ScimClient, TestMesh, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn bulk_request(fail_on_errors: Option<u64>, operations: Value) -> Value {
    let mut body = json!({"schemas": [BULK_REQUEST], "Operations": operations});
    if let Some(n) = fail_on_errors {
        body["failOnErrors"] = json!(n);
    }
    body
}

/// The operations of a BulkResponse.
async fn bulk(scim: &ScimClient, body: Value) -> Vec<Value> {
    let response = scim.post("/Bulk", body, 200).await.body;
    assert_eq!(
        response["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    response["Operations"].as_array().expect("Operations").clone()
}

fn id_in(location: &Value) -> String {
    location
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("a location")
        .to_owned()
}

both_backends!(
    a_group_can_reference_a_user_created_later_in_the_same_request,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let results = bulk(
            &scim,
            bulk_request(
                None,
                json!([
                    {"method": "POST", "path": "/Groups", "bulkId": "tour", "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Tour Guides",
                        "members": [{"type": "User", "value": "bulkId:qwerty"}]
                    }},
                    {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": "Alice"
                    }},
                    {"method": "PATCH", "path": "/Groups/bulkId:tour", "data": {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": "Guides"}]
                    }}
                ]),
            ),
        )
        .await;
        let statuses: Vec<(&str, &str)> = results
            .iter()
            .map(|r| (r["bulkId"].as_str().unwrap_or("-"), r["status"].as_str().unwrap_or("?")))
            .collect();
        assert_eq!(statuses, [("qwerty", "201"), ("tour", "201"), ("-", "200")]);
        let user_id = id_in(&results[0]["location"]);
        let group_id = id_in(&results[1]["location"]);
        assert!(
            results[0]["location"]
                .as_str()
                .is_some_and(|l| l.starts_with(&scim.base_url) && l.contains("/Users/"))
        );
        assert_eq!(results[2]["version"], json!("W/\"2\""));
        let group = scim.get(&format!("/Groups/{group_id}"), 200).await.body;
        assert_eq!(group["displayName"], json!("Guides"));
        assert_eq!(group["members"][0]["value"], json!(user_id));

        let results = bulk(
            &scim,
            bulk_request(
                None,
                json!([
                    {"method": "DELETE", "path": format!("/Users/{user_id}"), "version": "W/\"7\""},
                    {"method": "DELETE", "path": format!("/Users/{user_id}"), "version": "W/\"1\""},
                    {"method": "PUT", "path": format!("/Groups/{group_id}"), "data": {"displayName": "Renamed"}}
                ]),
            ),
        )
        .await;
        let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap_or("?")).collect();
        assert_eq!(statuses, ["412", "204", "200"]);
        assert_eq!(results[0]["response"]["status"], json!("412"));
        assert_eq!(results[1]["location"].as_str().map(id_in_str), Some(user_id.clone()));
        scim.get(&format!("/Users/{user_id}"), 404).await;
    }
);

fn id_in_str(location: &str) -> String {
    id_in(&json!(location))
}

both_backends!(
    cycles_are_409_and_fail_on_errors_stops_the_request,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let group =
            |name: &str, member: &str| json!({"displayName": name, "members": [{"value": format!("bulkId:{member}")}]});
        let results = bulk(
            &scim,
            bulk_request(
                None,
                json!([
                    {"method": "POST", "path": "/Groups", "bulkId": "a", "data": group("A", "b")},
                    {"method": "POST", "path": "/Groups", "bulkId": "b", "data": group("B", "a")},
                    {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "fine"}},
                    {"method": "POST", "path": "/Users", "bulkId": "v", "data": {"userName": "bulkId:nowhere"}}
                ]),
            ),
        )
        .await;
        let statuses: Vec<(&str, &str)> = results
            .iter()
            .map(|r| (r["bulkId"].as_str().unwrap_or("-"), r["status"].as_str().unwrap_or("?")))
            .collect();
        assert_eq!(statuses, [("v", "400"), ("u", "201"), ("a", "409"), ("b", "409")]);
        assert!(
            results[2]["response"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("cycle"))
        );
        assert_eq!(scim.get("/Groups", 200).await.body["totalResults"], json!(0));

        let results = bulk(
            &scim,
            bulk_request(
                Some(1),
                json!([
                    {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "fine"}},
                    {"method": "POST", "path": "/Users", "bulkId": "next", "data": {"userName": "never"}}
                ]),
            ),
        )
        .await;
        assert_eq!(results.len(), 1, "{results:?}");
        assert_eq!(results[0]["status"], json!("409"));
        assert_eq!(results[0]["response"]["scimType"], json!("uniqueness"));
        assert_eq!(scim.get("/Users", 200).await.body["totalResults"], json!(1));
    }
);

both_backends!(bulk_limits_are_413_and_bad_requests_400, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let spc = scim.get("/ServiceProviderConfig", 200).await.body;
    let max_operations = spc["bulk"]["maxOperations"].as_u64().expect("maxOperations");
    let max_payload = spc["bulk"]["maxPayloadSize"].as_u64().expect("maxPayloadSize");
    assert_eq!(spc["bulk"]["supported"], json!(true));

    let too_many: Vec<Value> = (0..=max_operations)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let response = scim.post("/Bulk", bulk_request(None, json!(too_many)), 413).await;
    assert_eq!(response.body["status"], json!("413"));

    let padding = "x".repeat(usize::try_from(max_payload).expect("a size"));
    let too_large = bulk_request(
        None,
        json!([{"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": padding}}]),
    );
    scim.post("/Bulk", too_large, 413).await;

    let malformed = scim.post("/Bulk", json!({"Operations": []}), 400).await;
    assert_eq!(malformed.body["scimType"], json!("invalidValue"));
    scim.send_raw(Method::POST, "/Bulk", Some(b"{".to_vec()), 400).await;
    let results = bulk(
        &scim,
        bulk_request(
            None,
            json!([{"method": "POST", "path": "/Widgets", "bulkId": "w", "data": {}}]),
        ),
    )
    .await;
    assert_eq!(results[0]["status"], json!("400"));
});
