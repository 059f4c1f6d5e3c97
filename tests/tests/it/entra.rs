//! The three ways Microsoft Entra ID's traffic departed from what idmesh
//! accepted (issue 15), on PostgreSQL and SQLite: its `aadOptscim062020`
//! feature flag on every request, the enterprise `manager` in its list
//! form, and a sub-attribute after a value filter in a filter.

use idmesh_tests::{TestMesh, both_backends, encode, patch_op, user};
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const FLAG: &str = "aadOptscim062020";

both_backends!(
    the_entra_feature_flag_is_ignored_on_every_endpoint,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let created = scim
            .post(&format!("/Users?{FLAG}"), user("ada@corp.example"), 201)
            .await;
        let id = created.body["id"].as_str().expect("an id").to_owned();
        let filter = encode(r#"userName eq "ada@corp.example""#);
        let found = scim.get(&format!("/Users?{FLAG}&filter={filter}"), 200).await;
        assert_eq!(found.body["totalResults"], json!(1));
        scim.get(&format!("/Users/{id}?{FLAG}"), 200).await;
        let deactivate = patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}]));
        let patched = scim.patch(&format!("/Users/{id}?{FLAG}"), deactivate, 200).await;
        assert_eq!(patched.body["active"], json!(false));
        scim.get(&format!("/Groups?{FLAG}&excludedAttributes=members"), 200)
            .await;
        scim.get(&format!("/ServiceProviderConfig?{FLAG}"), 200).await;
        scim.get(&format!("/Schemas?{FLAG}"), 200).await;

        let unknown = scim.get(&format!("/Users?{FLAG}&page=2"), 400).await;
        assert_eq!(unknown.body["detail"], json!("unsupported query parameter page"));
        let bad_count = scim.get(&format!("/Users?{FLAG}&count=ten"), 400).await;
        assert_eq!(bad_count.body["scimType"], json!("invalidValue"));
        scim.get(&format!("/Users/{id}?{FLAG}&filter=x"), 400).await;
        scim.delete(&format!("/Users/{id}?{FLAG}"), 204).await;
    }
);

both_backends!(
    the_enterprise_manager_in_entra_list_form_is_stored_as_its_value,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let manager = scim.create_user("boss@corp.example").await["id"].clone();
        let id = scim.create_user("ada@corp.example").await["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let path = format!("{ENTERPRISE}:manager");
        let listed = patch_op(json!([{"op": "Add", "path": path, "value": [{"$ref": null, "value": manager}]}]));
        let patched = scim.patch(&format!("/Users/{id}"), listed, 200).await;
        assert_eq!(patched.body[ENTERPRISE]["manager"], json!({"value": manager}));
        let bare = patch_op(json!([{"op": "Replace", "path": path, "value": "someone-else"}]));
        let patched = scim.patch(&format!("/Users/{id}"), bare, 200).await;
        assert_eq!(patched.body[ENTERPRISE]["manager"], json!({"value": "someone-else"}));
        let two = patch_op(json!([{"op": "Add", "path": path, "value": [{"value": "a"}, {"value": "b"}]}]));
        let rejected = scim.patch(&format!("/Users/{id}"), two, 400).await;
        assert_eq!(rejected.body["scimType"], json!("invalidValue"));
    }
);

both_backends!(
    a_sub_attribute_after_a_value_filter_looks_at_one_element,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut ada = user("ada");
        ada["emails"] = json!([
            {"type": "work", "value": "ada@corp.example"},
            {"type": "home", "value": "x@corp.example"}
        ]);
        scim.post("/Users", ada, 201).await;
        let mut bob = user("bob");
        bob["emails"] = json!([{"type": "work", "value": "X@Corp.Example", "primary": true}]);
        scim.post("/Users", bob, 201).await;
        let names = |filter: &'static str| {
            let scim = scim.clone();
            async move { scim.users().list(filter).await.sorted(|user| user.user_name.clone()) }
        };
        assert_eq!(
            names(r#"emails[type eq "work"].value eq "x@corp.example""#).await,
            ["bob"]
        );
        assert_eq!(
            names(r#"emails[type eq "home"].value eq "x@corp.example""#).await,
            ["ada"]
        );
        assert_eq!(
            names(r#"emails[type eq "work"].value pr and not (emails[type eq "home"].value pr)"#).await,
            ["bob"]
        );
        let bad = scim
            .get(
                &format!("/Users?filter={}", encode(r#"emails[type eq "work"].value"#)),
                400,
            )
            .await;
        assert_eq!(bad.body["scimType"], json!("invalidFilter"));
    }
);
