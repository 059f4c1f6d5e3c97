//! SCIM filters over HTTP (RFC 7644 §3.4.2.2), on PostgreSQL and SQLite: the
//! shapes IdPs and people send, answered by the database.

use idmesh_tests::{ScimClient, TestMesh, both_backends, encode};
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Three users with the attributes the filters below look at.
async fn staff(scim: &ScimClient) {
    let users = [
        json!({
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "title": "Tour Guide",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            ENTERPRISE: {"department": "R&D", "manager": {"value": "m-1"}}
        }),
        json!({
            "userName": "émile@example.com",
            "name": {"givenName": "Émile", "familyName": "Zola"},
            "emails": [{"value": "EMILE@Example.org", "type": "work"}],
            ENTERPRISE: {"department": "Sales"}
        }),
        json!({
            "userName": "nobody@example.com",
            "active": false,
            "emails": [{"value": "nobody@example.com", "type": "home"}]
        }),
    ];
    for user in users {
        scim.post("/Users", user, 201).await;
    }
}

/// The userNames a filter finds, sorted.
async fn found(scim: &ScimClient, filter: &str) -> Vec<String> {
    let found = scim.users().list(filter).await;
    let names = found.sorted(|user| user.user_name.clone());
    assert_eq!(found.total_results, names.len());
    names
}

both_backends!(
    value_paths_sub_attributes_and_extensions_filter_in_the_database,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        staff(&scim).await;
        let cases: [(&str, &[&str]); 10] = [
            (
                r#"emails[type eq "work" and value co "@example.com"]"#,
                &["bjensen@example.com"],
            ),
            (
                r#"emails[type eq "work" and value co "@EXAMPLE.ORG"]"#,
                &["émile@example.com"],
            ),
            (r#"emails co "jensen.org""#, &["bjensen@example.com"]),
            (
                r#"emails.type eq "home" and not (emails.type eq "work")"#,
                &["nobody@example.com"],
            ),
            (r#"name.familyName eq "JENSEN""#, &["bjensen@example.com"]),
            (r#"name.givenName sw "é""#, &["émile@example.com"]),
            (
                &format!(r#"{ENTERPRISE}:department eq "r&d""#),
                &["bjensen@example.com"],
            ),
            (&format!(r#"{ENTERPRISE}:manager pr"#), &["bjensen@example.com"]),
            (
                r#"title pr or active Eq false"#,
                &["bjensen@example.com", "nobody@example.com"],
            ),
            (
                r#"meta.lastModified gt "2000-01-01T00:00:00+02:00" and userName ew ".com""#,
                &["bjensen@example.com", "nobody@example.com", "émile@example.com"],
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(found(&scim, filter).await, expected, "{filter}");
        }
    }
);

both_backends!(
    filters_that_cannot_mean_anything_are_invalid_filter,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let too_long = format!(r#"userName eq "{}""#, "a".repeat(4_096));
        let too_deep = format!("{}userName pr{}", "(".repeat(33), ")".repeat(33));
        let cases = [
            (too_long.as_str(), "4096"),
            (too_deep.as_str(), "32"),
            (r#"userName eq"#, ""),
            (r#"nickName eq "x" and shoeSize eq 3"#, "shoeSize"),
            (r#"active gt true"#, "active"),
            (r#"meta.lastModified gt "yesterday""#, "RFC 3339"),
            (r#"name eq "Barbara""#, "complex"),
            (r#"meta.location eq "x""#, "meta.location"),
        ];
        for (filter, mentions) in cases {
            let response = scim.get(&format!("/Users?filter={}", encode(filter)), 400).await;
            assert_eq!(
                response.body["scimType"], "invalidFilter",
                "{filter}: {:#}",
                response.body
            );
            let detail = response.body["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(mentions), "{filter}: {detail}");
        }
    }
);

both_backends!(a_filter_never_reaches_another_directory, |mesh: TestMesh| async move {
    let (a, b) = (mesh.new_directory().await, mesh.new_directory().await);
    staff(&a).await;
    let everything = found(&b, "userName pr or not (userName pr)").await;
    assert_eq!(everything, Vec::<String>::new());
    assert_eq!(found(&a, "userName pr").await.len(), 3);
});
