//! Discovery (RFC 7644 §4) over HTTP: /ServiceProviderConfig, /Schemas and
//! /ResourceTypes under a directory's base URL, on PostgreSQL and SQLite.

use idmesh_tests::{ScimClient, TestMesh, both_backends, encode};
use reqwest::Method;
use serde_json::{Value, json};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

const ENDPOINTS: [&str; 5] = [
    "/ServiceProviderConfig",
    "/Schemas",
    "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "/ResourceTypes",
    "/ResourceTypes/User",
];

fn resources(list: &Value) -> &Vec<Value> {
    list["Resources"].as_array().expect("a ListResponse with Resources")
}

fn ids(list: &Value) -> Vec<&str> {
    resources(list).iter().filter_map(|r| r["id"].as_str()).collect()
}

fn attribute<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["attributes"]
        .as_array()
        .and_then(|attributes| attributes.iter().find(|a| a["name"] == name))
        .unwrap_or_else(|| panic!("{} has no attribute {name}", schema["id"]))
}

fn assert_scim_error(body: &Value, status: &str) {
    assert_eq!(body["schemas"], json!([ERROR]), "{body}");
    assert_eq!(body["status"], json!(status), "{body}");
}

async fn schema(scim: &ScimClient, id: &str) -> Value {
    scim.get(&format!("/Schemas/{id}"), 200).await.body
}

both_backends!(
    service_provider_config_says_what_idmesh_implements,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let spc = scim.get("/ServiceProviderConfig", 200).await;
        assert!(
            spc.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/scim+json"))
        );
        let body = spc.body;
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
        );
        assert_eq!(body["patch"], json!({"supported": true}));
        assert_eq!(
            body["bulk"],
            json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576})
        );
        assert_eq!(body["filter"], json!({"supported": true, "maxResults": 1000}));
        assert_eq!(body["sort"], json!({"supported": true}));
        assert_eq!(body["etag"], json!({"supported": true}));
        assert_eq!(body["changePassword"], json!({"supported": true}));
        let schemes = body["authenticationSchemes"].as_array().expect("authenticationSchemes");
        assert_eq!(schemes.len(), 1);
        assert_eq!(schemes[0]["type"], json!("oauthbearertoken"));
        assert_eq!(schemes[0]["primary"], json!(true));
        assert!(schemes[0]["name"].as_str().is_some_and(|name| !name.is_empty()));
        assert!(schemes[0]["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(
            body["meta"],
            json!({
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", scim.base_url),
            })
        );
    }
);

both_backends!(
    schemas_lists_the_user_and_group_schemas_and_the_service_provider_schemas,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let list = scim.get("/Schemas", 200).await.body;
        assert_eq!(list["schemas"], json!([LIST_RESPONSE]));
        assert_eq!(
            ids(&list),
            [
                USER_SCHEMA,
                ENTERPRISE_SCHEMA,
                GROUP_SCHEMA,
                "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
                "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
                "urn:ietf:params:scim:schemas:core:2.0:Schema",
            ]
        );
        assert_eq!(list["totalResults"], json!(6));
        assert_eq!(list["itemsPerPage"], json!(6));
        assert_eq!(list["startIndex"], json!(1));
        for entry in resources(&list) {
            let id = entry["id"].as_str().expect("an id");
            assert_eq!(
                entry["meta"],
                json!({"resourceType": "Schema", "location": format!("{}/Schemas/{id}", scim.base_url)})
            );
            assert_eq!(
                entry["schemas"],
                json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
            );
            // Each entry is also served on its own, identically.
            assert_eq!(&schema(&scim, id).await, entry);
        }
    }
);

both_backends!(
    the_user_schema_describes_what_the_server_enforces,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let user = schema(&scim, USER_SCHEMA).await;
        assert_eq!(user["name"], json!("User"));
        let user_name = attribute(&user, "userName");
        assert_eq!(user_name["type"], json!("string"));
        assert_eq!(user_name["caseExact"], json!(false));
        assert_eq!(user_name["uniqueness"], json!("server"));
        assert_eq!(user_name["required"], json!(true));
        assert_eq!(user_name["multiValued"], json!(false));
        let password = attribute(&user, "password");
        assert_eq!(
            (&password["mutability"], &password["returned"]),
            (&json!("writeOnly"), &json!("never"))
        );
        let emails = attribute(&user, "emails");
        assert_eq!(emails["multiValued"], json!(true));
        let value = emails["subAttributes"]
            .as_array()
            .and_then(|subs| subs.iter().find(|s| s["name"] == "value"))
            .expect("emails.value");
        assert_eq!(value["caseExact"], json!(false));
        assert_eq!(attribute(&user, "groups")["mutability"], json!("readOnly"));

        // URNs match in any case, also percent-encoded.
        let upper = schema(&scim, &USER_SCHEMA.to_uppercase()).await;
        assert_eq!(upper, user);
        assert_eq!(schema(&scim, &encode(USER_SCHEMA)).await, user);

        let enterprise = schema(&scim, ENTERPRISE_SCHEMA).await;
        assert_eq!(attribute(&enterprise, "manager")["type"], json!("complex"));
        assert_eq!(attribute(&enterprise, "department")["type"], json!("string"));
    }
);

both_backends!(
    resource_types_serve_user_with_the_enterprise_extension_and_group,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let list = scim.get("/ResourceTypes", 200).await.body;
        assert_eq!(list["schemas"], json!([LIST_RESPONSE]));
        assert_eq!(ids(&list), ["User", "Group"]);
        assert_eq!(list["totalResults"], json!(2));

        let user = scim.get("/ResourceTypes/User", 200).await.body;
        assert_eq!(&user, &resources(&list)[0]);
        assert_eq!(
            user["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"])
        );
        assert_eq!(user["name"], json!("User"));
        assert_eq!(user["endpoint"], json!("/Users"));
        assert_eq!(user["schema"], json!(USER_SCHEMA));
        assert_eq!(
            user["schemaExtensions"],
            json!([{"schema": ENTERPRISE_SCHEMA, "required": false}])
        );
        assert_eq!(
            user["meta"],
            json!({"resourceType": "ResourceType", "location": format!("{}/ResourceTypes/User", scim.base_url)})
        );

        let group = scim.get("/ResourceTypes/Group", 200).await.body;
        assert_eq!(&group, &resources(&list)[1]);
        assert_eq!(group["endpoint"], json!("/Groups"));
        assert_eq!(group["schema"], json!(GROUP_SCHEMA));
        assert_eq!(group["schemaExtensions"], json!([]));
        assert_eq!(
            group["meta"],
            json!({"resourceType": "ResourceType", "location": format!("{}/ResourceTypes/Group", scim.base_url)})
        );

        // Every schema a resource type names is served.
        for urn in [USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA] {
            schema(&scim, urn).await;
        }
        let members = attribute(&schema(&scim, GROUP_SCHEMA).await, "members").clone();
        assert_eq!(members["multiValued"], json!(true));
    }
);

both_backends!(
    unknown_schemas_resource_types_and_paths_are_scim_404s,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        for path in [
            "/Schemas/0b9f3c8e-5d1c-4f57-a1a3-8c3f2e9d7b10",
            "/ResourceTypes/Widget",
            "/ServiceProviderConfigs",
            "/ServiceProviderConfig/patch",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User/attributes",
        ] {
            let missing = scim.get(path, 404).await;
            assert_scim_error(&missing.body, "404");
        }
    }
);

both_backends!(
    writes_to_discovery_endpoints_are_scim_405s,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        for path in ENDPOINTS {
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let body = (method != Method::DELETE).then(|| json!({"schemas": [USER_SCHEMA]}));
                let refused = scim.send(method.clone(), path, body, 405).await;
                assert_scim_error(&refused.body, "405");
                assert!(
                    refused.header("allow").is_some_and(|allow| allow.contains("GET")),
                    "{method} {path}: {:?}",
                    refused.headers
                );
            }
        }
    }
);

both_backends!(discovery_needs_the_directory_token, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let other = mesh.new_directory().await;
    let anonymous = scim.with_token(None);
    let foreign = scim.with_token(other.token.as_deref());
    for path in ENDPOINTS {
        assert_scim_error(&anonymous.get(path, 401).await.body, "401");
        assert_scim_error(&foreign.get(path, 401).await.body, "401");
    }
});

both_backends!(
    discovery_refuses_filters_and_unknown_parameters,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let filter = format!("?filter={}", encode("name eq \"User\""));
        for path in ["/Schemas", "/ResourceTypes", "/ServiceProviderConfig"] {
            let forbidden = scim.get(&format!("{path}{filter}"), 403).await;
            assert_scim_error(&forbidden.body, "403");
            let unknown = scim.get(&format!("{path}?page=2"), 400).await;
            assert_eq!(unknown.body["scimType"], json!("invalidValue"));
            assert_eq!(unknown.body["detail"], json!("unsupported query parameter page"));
        }
        // Paging and sorting are ignored (RFC 7644 §4): the whole list comes back.
        let paged = scim.get("/Schemas?startIndex=2&count=1&sortBy=name", 200).await.body;
        assert_eq!(paged["totalResults"], json!(6));
        assert_eq!(resources(&paged).len(), 6);
    }
);
