//! SCIM /Groups through the gateway to group-service, on PostgreSQL and
//! SQLite: the resource, its members as IdPs change them, memberships seen
//! from users, and the directory-wide search.

use idmesh::Target;
use idmesh_tests::{NewGroup, NewUser, ScimClient, ScratchDatabase, TestMesh, both_backends, encode, group, patch_op};
use reqwest::Method;
use serde_json::{Value, json};

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("the resource has an id").to_owned()
}

/// The member ids of a rendered group, sorted.
fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|member| member["value"].as_str().expect("a member value").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| (*id).clone()).collect();
    ids.sort();
    ids
}

/// `n` new users of the directory, by id.
async fn users(scim: &ScimClient, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let user = NewUser::new(&format!("{prefix}{i}@example.com"));
        ids.push(scim.users().create(&user).await.id);
    }
    ids
}

async fn get_group(scim: &ScimClient, id: &str) -> Value {
    scim.get(&format!("/Groups/{id}"), 200).await.body
}

/// The ids a list response carries, in order.
fn listed(list: &Value) -> Vec<String> {
    list["Resources"].as_array().into_iter().flatten().map(id_of).collect()
}

async fn filter_groups(scim: &ScimClient, filter: &str) -> Value {
    scim.get(&format!("/Groups?filter={}", encode(filter)), 200).await.body
}

both_backends!(
    a_group_is_created_read_listed_replaced_and_deleted,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "crud", 3).await;
        let mut body = group("Engineering", &[&ids[0], &ids[1]]);
        body["externalId"] = json!("okta-00g1");
        let created = scim.post("/Groups", body, 201).await;
        let id = id_of(&created.body);
        let location = created.header("location").expect("a Location header").to_owned();
        assert_eq!(location, format!("{}/Groups/{id}", scim.base_url));
        assert_eq!(created.body["meta"]["location"], json!(location));
        assert_eq!(created.body["meta"]["resourceType"], json!("Group"));
        assert_eq!(created.header("etag"), Some("W/\"1\""));
        assert_eq!(created.body["schemas"], json!([GROUP_SCHEMA]));
        assert_eq!(created.body["displayName"], json!("Engineering"));
        assert_eq!(created.body["externalId"], json!("okta-00g1"));
        assert_eq!(member_ids(&created.body), sorted(&[&ids[0], &ids[1]]));
        let first = created.body["members"]
            .as_array()
            .and_then(|members| members.iter().find(|m| m["value"] == json!(ids[0])))
            .expect("the first member");
        assert_eq!(first["type"], json!("User"));
        assert_eq!(first["$ref"], json!(format!("{}/Users/{}", scim.base_url, ids[0])));
        assert_eq!(first.get("display"), None, "no display was sent, so none comes back");

        let fetched = scim.get(&format!("/Groups/{id}"), 200).await;
        assert_eq!(fetched.header("etag"), Some("W/\"1\""));
        assert!(
            fetched
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/scim+json"))
        );
        assert_eq!(fetched.body, created.body);
        scim.send_with_headers(
            Method::GET,
            &format!("/Groups/{id}"),
            &[("if-none-match", "W/\"1\"")],
            None,
            304,
        )
        .await;

        let list = scim.get("/Groups", 200).await.body;
        assert_eq!(list["totalResults"], json!(1));
        assert_eq!(list["Resources"][0], created.body);

        let replaced = scim
            .put(&format!("/Groups/{id}"), group("Platform", &[&ids[2]]), 200)
            .await;
        assert_eq!(replaced.header("etag"), Some("W/\"2\""));
        assert_eq!(replaced.body["displayName"], json!("Platform"));
        assert_eq!(member_ids(&replaced.body), [ids[2].clone()]);
        assert_eq!(replaced.body.get("externalId"), None, "PUT replaces the whole group");
        assert_eq!(get_group(&scim, &id).await, replaced.body);

        scim.delete(&format!("/Groups/{id}"), 204).await;
        let missing = scim.get(&format!("/Groups/{id}"), 404).await;
        assert_eq!(missing.body["status"], json!("404"));
        assert_eq!(scim.get("/Groups", 200).await.body["totalResults"], json!(0));
    }
);

both_backends!(
    a_group_without_members_has_no_members_attribute,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let created = scim.create_group("Empty", &[]).await;
        assert_eq!(created.get("members"), None);
        assert_eq!(get_group(&scim, &id_of(&created)).await, created);
    }
);

both_backends!(
    groups_filter_by_display_name_external_id_and_member,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "filter", 2).await;
        let groups = scim.groups();
        let admins = groups.create(&NewGroup::new("Admins", &[&ids[0]])).await;
        // Entra ID allows two groups of one name.
        let twin = groups.create(&NewGroup::new("Admins", &[])).await;
        let sales = groups
            .create(&NewGroup::new("Sales", &[&ids[1]]).external_id("ext-sales"))
            .await;

        let by_name = groups.list("displayName eq \"ADMINS\"").await;
        assert_eq!(by_name.total_results, 2);
        assert_eq!(by_name.sorted(|g| g.id.clone()), sorted(&[&admins.id, &twin.id]));

        let by_external_id = groups.list("externalId eq \"ext-sales\"").await;
        assert_eq!(by_external_id.ids(), [sales.id.as_str()]);

        let by_member = groups.list(&format!("members[value eq \"{}\"]", ids[0])).await;
        assert_eq!(by_member.ids(), [admins.id]);
        assert_eq!(by_member.resources[0].member_ids(), [ids[0].clone()]);

        let nothing = groups.list("displayName eq \"Nobody\"").await;
        assert_eq!(nothing.total_results, 0);
        let invalid = scim
            .get(&format!("/Groups?filter={}", encode("displayName eq")), 400)
            .await;
        assert_eq!(invalid.body["scimType"], json!("invalidFilter"));

        let searched = scim
            .post(
                "/Groups/.search",
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "displayName eq \"sales\"",
                    "excludedAttributes": ["members"]
                }),
                200,
            )
            .await
            .body;
        assert_eq!(listed(&searched), [sales.id]);
        assert_eq!(searched["Resources"][0].get("members"), None);
    }
);

both_backends!(paging_and_sorting_visit_every_group_once, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let mut expected = Vec::new();
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        expected.push(scim.groups().create(&NewGroup::new(name, &[])).await.id);
    }
    let mut seen = Vec::new();
    let mut start_index = 1;
    loop {
        let page = scim
            .get(&format!("/Groups?startIndex={start_index}&count=2"), 200)
            .await
            .body;
        assert_eq!(page["totalResults"], json!(5));
        assert_eq!(page["startIndex"], json!(start_index));
        let ids = listed(&page);
        assert_eq!(page["itemsPerPage"], json!(ids.len()));
        if ids.is_empty() {
            break;
        }
        assert!(ids.len() <= 2);
        seen.extend(ids);
        start_index += 2;
    }
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);

    let by_name = scim
        .get(
            "/Groups?sortBy=displayName&sortOrder=descending&attributes=displayName",
            200,
        )
        .await
        .body;
    let names: Vec<&str> = by_name["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["displayName"].as_str())
        .collect();
    assert_eq!(names, ["echo", "delta", "charlie", "bravo", "alpha"]);
});

both_backends!(
    attributes_and_excluded_attributes_choose_what_a_group_carries,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "projection", 2).await;
        let id = scim
            .groups()
            .create(&NewGroup::new("Projected", &[&ids[0], &ids[1]]))
            .await
            .id;
        let path = format!("/Groups/{id}");

        let without = scim.get(&format!("{path}?excludedAttributes=members"), 200).await;
        assert_eq!(without.body.get("members"), None);
        assert_eq!(without.body["displayName"], json!("Projected"));
        assert_eq!(without.header("etag"), Some("W/\"1\""));

        let name_only = scim.get(&format!("{path}?attributes=displayName"), 200).await.body;
        assert_eq!(name_only.get("members"), None);
        assert_eq!(name_only.get("meta"), None);
        assert_eq!(name_only["id"], json!(id));

        let values = scim.get(&format!("{path}?attributes=members.value"), 200).await.body;
        assert_eq!(values.get("displayName"), None);
        let members = values["members"].as_array().expect("members");
        assert_eq!(members.len(), 2);
        assert!(members.iter().all(|m| m.as_object().is_some_and(|m| m.len() == 1)));

        let listed = scim.get("/Groups?excludedAttributes=members", 200).await.body;
        assert_eq!(listed["Resources"][0].get("members"), None);
        assert_eq!(listed["Resources"][0]["displayName"], json!("Projected"));
    }
);

both_backends!(
    okta_removes_by_filter_and_adds_in_one_request,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "okta", 4).await;
        let id = scim
            .groups()
            .create(&NewGroup::new("Okta", &[&ids[0], &ids[1]]))
            .await
            .id;
        let path = format!("/Groups/{id}");

        let patched = scim
            .patch(
                &path,
                patch_op(json!([
                    {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])},
                    {"op": "add", "path": "members", "value": [{"value": ids[2], "display": "okta2@example.com"}]}
                ])),
                200,
            )
            .await;
        assert_eq!(member_ids(&patched.body), sorted(&[&ids[1], &ids[2]]));
        assert_eq!(patched.header("etag"), Some("W/\"2\""));
        assert_eq!(member_ids(&get_group(&scim, &id).await), sorted(&[&ids[1], &ids[2]]));

        let replaced = scim
            .patch(
                &path,
                patch_op(json!([
                    {"op": "replace", "path": "members", "value": [{"value": ids[0]}, {"value": ids[3]}]}
                ])),
                200,
            )
            .await
            .body;
        assert_eq!(member_ids(&replaced), sorted(&[&ids[0], &ids[3]]));

        let renamed = scim
            .patch(
                &path,
                patch_op(json!([{"op": "replace", "value": {"id": id, "displayName": "Okta Renamed"}}])),
                200,
            )
            .await
            .body;
        assert_eq!(renamed["displayName"], json!("Okta Renamed"));
        assert_eq!(member_ids(&renamed), sorted(&[&ids[0], &ids[3]]));
        assert_eq!(get_group(&scim, &id).await, renamed);
    }
);

both_backends!(
    entra_adds_and_removes_exactly_the_listed_members,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "entra", 4).await;
        let groups = scim.groups();
        let id = groups
            .create(&NewGroup::new("Entra", &[&ids[0], &ids[1], &ids[2]]))
            .await
            .id;

        let added = groups
            .patch(
                &id,
                json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": ids[3]}]}]),
            )
            .await;
        assert_eq!(added.member_ids(), sorted(&[&ids[0], &ids[1], &ids[2], &ids[3]]));

        let removed = groups
            .patch(
                &id,
                json!([{"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}]),
            )
            .await;
        assert_eq!(removed.member_ids(), sorted(&[&ids[0], &ids[2], &ids[3]]));

        // Adding a present member or removing an absent one is no error.
        let again = groups
            .patch(
                &id,
                json!([
                    {"op": "Add", "path": "members", "value": [{"value": ids[0]}]},
                    {"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}
                ]),
            )
            .await;
        assert_eq!(again.member_ids(), sorted(&[&ids[0], &ids[2], &ids[3]]));
        assert_eq!(groups.get(&id).await.member_ids(), again.member_ids());
    }
);

both_backends!(
    unknown_members_are_skipped_and_the_known_ones_added,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let other = mesh.new_directory().await;
        let ids = users(&scim, "unknown", 3).await;
        let stranger = other.users().create(&NewUser::new("stranger@example.com")).await.id;
        let created = scim.create_group("Lenient", &[&ids[0]]).await;
        let path = format!("/Groups/{}", id_of(&created));

        // What Entra ID resends every cycle when one user failed to provision.
        for (unknown, known) in [("no-such-member", &ids[1]), (stranger.as_str(), &ids[2])] {
            let patched = scim
                .patch(
                    &path,
                    patch_op(json!([
                        {"op": "Add", "path": "members", "value": [{"value": known}, {"value": unknown}]}
                    ])),
                    200,
                )
                .await;
            let members: Vec<&str> = patched.body["members"]
                .as_array()
                .expect("members")
                .iter()
                .filter_map(|m| m["value"].as_str())
                .collect();
            assert!(
                members.contains(&known.as_str()) && !members.contains(&unknown),
                "{members:?}"
            );
        }
        assert_eq!(member_ids(&get_group(&scim, &id_of(&created)).await).len(), 3);

        let lenient = scim
            .post("/Groups", group("Partly", &["no-such-member", &ids[0]]), 201)
            .await;
        assert_eq!(lenient.body["members"].as_array().map(Vec::len), Some(1));
        let own = scim
            .patch(
                &path,
                patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id_of(&created)}]}])),
                400,
            )
            .await;
        assert_eq!(
            own.body["scimType"],
            json!("invalidValue"),
            "a group in itself is still an error"
        );
    }
);

both_backends!(
    fifty_concurrent_patches_adding_different_members_lose_none,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "concurrent", 50).await;
        let id = scim.groups().create(&NewGroup::new("Busy", &[])).await.id;
        let path = format!("/Groups/{id}");
        let mut patches = tokio::task::JoinSet::new();
        for member in ids.clone() {
            let (scim, path) = (scim.clone(), path.clone());
            patches.spawn(async move {
                let body = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]));
                scim.send(
                    Method::PATCH,
                    &format!("{path}?excludedAttributes=members"),
                    Some(body),
                    200,
                )
                .await;
            });
        }
        while let Some(done) = patches.join_next().await {
            done.expect("a PATCH task");
        }
        let group = scim.groups().get(&id).await;
        let mut expected = ids;
        expected.sort();
        assert_eq!(group.member_ids(), expected);
        assert_eq!(group.meta.version, "W/\"51\"");
    }
);

both_backends!(a_patch_with_a_stale_if_match_is_412, |mesh: TestMesh| async move {
    let scim = mesh.new_directory().await;
    let ids = users(&scim, "stale", 2).await;
    let id = scim.groups().create(&NewGroup::new("Versioned", &[])).await.id;
    let path = format!("/Groups/{id}");
    let add = |member: &str| patch_op(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]));

    let first = scim
        .send_with_headers(
            Method::PATCH,
            &path,
            &[("if-match", "W/\"1\"")],
            Some(add(&ids[0])),
            200,
        )
        .await;
    assert_eq!(first.header("etag"), Some("W/\"2\""));
    let stale = scim
        .send_with_headers(
            Method::PATCH,
            &path,
            &[("if-match", "W/\"1\"")],
            Some(add(&ids[1])),
            412,
        )
        .await;
    assert_eq!(stale.body["status"], json!("412"));
    assert_eq!(member_ids(&get_group(&scim, &id).await), [ids[0].clone()]);

    scim.send_with_headers(Method::DELETE, &path, &[("if-match", "W/\"1\"")], None, 412)
        .await;
    scim.send_with_headers(Method::DELETE, &path, &[("if-match", "W/\"2\"")], None, 204)
        .await;
});

both_backends!(
    users_carry_the_groups_they_are_direct_members_of,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "member", 2).await;
        let first = scim.create_group("First", &[&ids[0]]).await;
        let second = scim.create_group("Second", &[&ids[0]]).await;
        // A group inside a group: its users are not direct members of the outer one.
        scim.create_group("Outer", &[&id_of(&second)]).await;

        let member = scim.get(&format!("/Users/{}", ids[0]), 200).await.body;
        let mut groups = member["groups"].as_array().expect("groups").clone();
        groups.sort_by_key(|g| g["display"].as_str().map(str::to_owned));
        assert_eq!(
            groups,
            [
                json!({"value": id_of(&first), "$ref": format!("{}/Groups/{}", scim.base_url, id_of(&first)), "display": "First", "type": "direct"}),
                json!({"value": id_of(&second), "$ref": format!("{}/Groups/{}", scim.base_url, id_of(&second)), "display": "Second", "type": "direct"}),
            ]
        );
        let loner = scim.get(&format!("/Users/{}", ids[1]), 200).await.body;
        assert_eq!(loner.get("groups"), None);

        let list = scim.get("/Users?sortBy=userName", 200).await.body;
        assert_eq!(list["Resources"][0]["groups"].as_array().map(Vec::len), Some(2));
        assert_eq!(list["Resources"][1].get("groups"), None);

        let excluded = scim
            .get(&format!("/Users/{}?excludedAttributes=groups", ids[0]), 200)
            .await
            .body;
        assert_eq!(excluded.get("groups"), None);
        let only = scim
            .get(&format!("/Users/{}?attributes=groups.display", ids[0]), 200)
            .await
            .body;
        assert_eq!(only["groups"].as_array().map(Vec::len), Some(2));
        assert_eq!(only.get("userName"), None);

        let patched = scim
            .patch(
                &format!("/Users/{}", ids[0]),
                patch_op(json!([{"op": "replace", "path": "displayName", "value": "Member Zero"}])),
                200,
            )
            .await
            .body;
        assert_eq!(patched["groups"].as_array().map(Vec::len), Some(2));
    }
);

both_backends!(
    deleting_a_user_removes_it_from_its_groups,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "leaver", 2).await;
        let id = scim
            .groups()
            .create(&NewGroup::new("Team", &[&ids[0], &ids[1]]))
            .await
            .id;
        scim.delete(&format!("/Users/{}", ids[0]), 204).await;
        let group = get_group(&scim, &id).await;
        assert_eq!(member_ids(&group), [ids[1].clone()]);
        let by_member = filter_groups(&scim, &format!("members[value eq \"{}\"]", ids[0])).await;
        assert_eq!(by_member["totalResults"], json!(0));
    }
);

both_backends!(
    deleting_a_group_removes_it_from_its_parent,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "nested", 1).await;
        let child = scim.groups().create(&NewGroup::new("Child", &[&ids[0]])).await.id;
        let parent = scim.create_group("Parent", &[&child, &ids[0]]).await;
        let nested = parent["members"]
            .as_array()
            .and_then(|members| members.iter().find(|m| m["value"] == json!(child)))
            .expect("the child group is a member");
        assert_eq!(nested["type"], json!("Group"));
        assert_eq!(nested["$ref"], json!(format!("{}/Groups/{child}", scim.base_url)));

        scim.delete(&format!("/Groups/{child}"), 204).await;
        let parent = get_group(&scim, &id_of(&parent)).await;
        assert_eq!(member_ids(&parent), [ids[0].clone()]);
    }
);

both_backends!(
    the_directory_search_returns_users_then_groups,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "search", 2).await;
        let groups = [
            scim.groups().create(&NewGroup::new("Searched A", &[&ids[0]])).await.id,
            scim.groups().create(&NewGroup::new("Searched B", &[])).await.id,
        ];
        let search = |body: Value| {
            let mut request = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
            if let (Value::Object(request), Value::Object(body)) = (&mut request, body) {
                request.extend(body);
            }
            let scim = scim.clone();
            async move { scim.post("/.search", request, 200).await.body }
        };

        let first = search(json!({"count": 3})).await;
        assert_eq!(first["totalResults"], json!(4));
        assert_eq!(first["itemsPerPage"], json!(3));
        let types: Vec<&str> = first["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["meta"]["resourceType"].as_str())
            .collect();
        assert_eq!(types, ["User", "User", "Group"]);
        let second = search(json!({"startIndex": 4, "count": 3})).await;
        assert_eq!(second["totalResults"], json!(4));
        assert_eq!(second["startIndex"], json!(4));
        let mut all: Vec<String> = listed(&first).into_iter().chain(listed(&second)).collect();
        all.sort();
        let mut expected: Vec<String> = ids.iter().chain(groups.iter()).cloned().collect();
        expected.sort();
        assert_eq!(all, expected);

        // A filter on an attribute only groups have finds groups only.
        let by_member = search(json!({"filter": format!("members[value eq \"{}\"]", ids[0])})).await;
        assert_eq!(listed(&by_member), [groups[0].clone()]);
        let by_user_name = search(json!({"filter": "userName eq \"search1@example.com\""})).await;
        assert_eq!(listed(&by_user_name), [ids[1].clone()]);
        let by_display_name = search(json!({"filter": "displayName eq \"searched b\""})).await;
        assert_eq!(listed(&by_display_name), [groups[1].clone()]);

        let invalid = scim
            .post(
                "/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq"}),
                400,
            )
            .await;
        assert_eq!(invalid.body["scimType"], json!("invalidFilter"));
    }
);

/// A mesh whose gateway answers a PATCH of a group of more than 2 members
/// with 204.
async fn mesh_with_small_patch_limit(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| config.group_patch_member_limit = 2).await
}

async fn a_patch_of_a_large_group_answers_204_unless_attributes_are_asked_for(mesh: TestMesh) {
    let scim = mesh.new_directory().await;
    let ids = users(&scim, "large", 4).await;
    let id = scim
        .groups()
        .create(&NewGroup::new("Large", &[&ids[0], &ids[1]]))
        .await
        .id;
    let path = format!("/Groups/{id}");
    let add = |member: &str| patch_op(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]));

    // At the limit: the group, members and all.
    let at_limit = scim.patch(&path, add(&ids[1]), 200).await;
    assert_eq!(member_ids(&at_limit.body).len(), 2);

    let above = scim.patch(&path, add(&ids[2]), 204).await;
    assert_eq!(above.body, Value::Null);
    let version = scim.get(&format!("{path}?attributes=meta"), 200).await.body["meta"]["version"].clone();
    assert_eq!(above.header("etag"), version.as_str());

    let named = scim
        .patch(&format!("{path}?attributes=displayName"), add(&ids[3]), 200)
        .await;
    assert_eq!(named.body["displayName"], json!("Large"));
    assert_eq!(named.body.get("members"), None);

    let excluded = scim
        .patch(
            &format!("{path}?excludedAttributes=members"),
            patch_op(json!([{"op": "replace", "path": "displayName", "value": "Larger"}])),
            200,
        )
        .await;
    assert_eq!(excluded.body["displayName"], json!("Larger"));
    assert_eq!(excluded.body.get("members"), None);

    let with_members = scim
        .patch(&format!("{path}?attributes=members"), add(&ids[0]), 200)
        .await
        .body;
    assert_eq!(member_ids(&with_members).len(), 4);
}

both_backends!(
    a_patch_of_a_large_group_answers_204,
    mesh_with_small_patch_limit,
    a_patch_of_a_large_group_answers_204_unless_attributes_are_asked_for
);

both_backends!(a_group_is_seen_only_in_its_own_directory, |mesh: TestMesh| async move {
    let (a, b) = (mesh.new_directory().await, mesh.new_directory().await);
    let id = a.groups().create(&NewGroup::new("Private", &[])).await.id;
    b.get(&format!("/Groups/{id}"), 404).await;
    b.patch(
        &format!("/Groups/{id}"),
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "Mine"}])),
        404,
    )
    .await;
    b.delete(&format!("/Groups/{id}"), 404).await;
    assert_eq!(b.get("/Groups", 200).await.body["totalResults"], json!(0));
});

/// More members than the gateway reads from group-service at once (5,000).
const MORE_THAN_A_PAGE: usize = 5_001;

both_backends!(
    a_group_of_more_members_than_a_page_streams_each_member_once,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut creating = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let scim = scim.clone();
            creating.spawn(async move {
                let names = (worker..MORE_THAN_A_PAGE).step_by(8);
                let mut ids = Vec::new();
                for i in names {
                    ids.push(
                        scim.users()
                            .create(&NewUser::new(&format!("bulk{i}@example.com")))
                            .await
                            .id,
                    );
                }
                ids
            });
        }
        let mut ids = Vec::with_capacity(MORE_THAN_A_PAGE);
        while let Some(created) = creating.join_next().await {
            ids.extend(created.expect("a task creating users"));
        }
        let id = scim.groups().create(&NewGroup::new("Everyone", &[])).await.id;
        let path = format!("/Groups/{id}");
        for chunk in ids.chunks(1_000) {
            let members: Vec<Value> = chunk.iter().map(|id| json!({"value": id})).collect();
            let body = patch_op(json!([{"op": "add", "path": "members", "value": members}]));
            scim.send(
                Method::PATCH,
                &format!("{path}?excludedAttributes=members"),
                Some(body),
                200,
            )
            .await;
        }

        let streamed = scim.get(&path, 200).await;
        assert_eq!(streamed.header("content-length"), None, "the body is streamed");
        assert_eq!(streamed.header("etag"), Some("W/\"7\""));
        assert_eq!(streamed.body["displayName"], json!("Everyone"));
        ids.sort();
        assert_eq!(member_ids(&streamed.body), ids);

        let values = scim.get(&format!("{path}?attributes=members.value"), 200).await.body;
        assert_eq!(member_ids(&values), ids);
        assert!(
            values["members"]
                .as_array()
                .is_some_and(|members| members.iter().all(|m| m.as_object().is_some_and(|m| m.len() == 1)))
        );

        // A list writes each group's members after it, group after group.
        let few = [ids[0].as_str(), ids[1].as_str()];
        scim.groups().create(&NewGroup::new("Few", &few)).await;
        scim.groups().create(&NewGroup::new("Nobody", &[])).await;
        let listed = scim.get("/Groups?sortBy=displayName", 200).await;
        assert_eq!(listed.header("content-length"), None, "the list is streamed");
        assert_eq!(
            (&listed.body["totalResults"], &listed.body["itemsPerPage"]),
            (&json!(3), &json!(3))
        );
        let resources = &listed.body["Resources"];
        let names: Vec<&Value> = (0..3).map(|i| &resources[i]["displayName"]).collect();
        assert_eq!(names, [&json!("Everyone"), &json!("Few"), &json!("Nobody")]);
        assert_eq!(member_ids(&resources[0]), ids);
        assert_eq!(member_ids(&resources[1]), sorted(&[&ids[0], &ids[1]]));
        assert_eq!(resources[2].get("members"), None);

        // So does the search over every resource type.
        let search = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "displayName eq \"Everyone\"",
            "attributes": ["members.value"],
        });
        let searched = scim.post("/.search", search, 200).await.body;
        assert_eq!(searched["totalResults"], json!(1));
        assert_eq!(member_ids(&searched["Resources"][0]), ids);
    }
);

both_backends!(
    concurrent_add_and_remove_of_one_member_end_as_one_order_explains,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let ids = users(&scim, "race", 2).await;
        let (stayer, racer) = (&ids[0], &ids[1]);
        let id = scim.groups().create(&NewGroup::new("Race", &[stayer])).await.id;
        let path = format!("/Groups/{id}?excludedAttributes=members");
        for round in 0..10 {
            let add = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": racer}]}]));
            let remove = patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{racer}\"]")}]));
            let (adding, removing) = (scim.clone(), scim.clone());
            let (path_a, path_r) = (path.clone(), path.clone());
            tokio::join!(
                async move { adding.send(Method::PATCH, &path_a, Some(add), 200).await },
                async move { removing.send(Method::PATCH, &path_r, Some(remove), 200).await },
            );
            let group = get_group(&scim, &id).await;
            let members = member_ids(&group);
            // Add then remove leaves the stayer; remove then add, both.
            assert!(
                members == [stayer.clone()] || members == sorted(&[stayer, racer]),
                "round {round}: {members:?}"
            );
            // Neither write was lost: version 1 at creation, then per round
            // the add, the remove and the reset below.
            assert_eq!(group["meta"]["version"], json!(format!("W/\"{}\"", 3 * round + 3)));
            // Start each round from the same state.
            scim.patch(
                &format!("/Groups/{id}"),
                patch_op(json!([{"op": "replace", "path": "members", "value": [{"value": stayer}]}])),
                200,
            )
            .await;
        }
    }
);
