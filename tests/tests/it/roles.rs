//! role-mapping-service end to end, on PostgreSQL and SQLite: users and
//! groups provisioned through SCIM at the gateway, roles, mappings and
//! profiles over gRPC, each answer read right after the SCIM change.

use idmesh_proto::v1::role_mapping_service_client::RoleMappingServiceClient;
use std::time::{Duration, Instant};

use idmesh_proto::v1::{
    AttributePreset, CheckSessionRequest, CreateRoleRequest, DeleteRoleRequest, Event, EventType,
    GetEffectiveRolesRequest, GetProfileRequest, ListEventsRequest, ListRoleHoldersRequest, MappingRule,
    PreviewMappingsRequest, ProfileField, ProfileFieldType, Role, RoleMappingMode, RoleSourceKind, SessionStatus,
    SetAttributeMappingRequest, SetRoleMappingRequest, mapping_rule,
};
use idmesh_runtime::auth::AuthChannel;
use idmesh_tests::{NewGroup, NewUser, ScimClient, TestMesh, both_backends};
use serde_json::{Value, json};
use tonic::Code;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

type Roles = RoleMappingServiceClient<AuthChannel>;

async fn create_roles(roles: &mut Roles, keys: &[&str]) {
    for key in keys {
        roles
            .create_role(CreateRoleRequest {
                role: Some(Role {
                    key: (*key).to_owned(),
                    name: key.to_uppercase(),
                    description: String::new(),
                }),
            })
            .await
            .expect("CreateRole");
    }
}

fn group_rule(group_id: &str, roles: &[&str], precedence: i32) -> MappingRule {
    MappingRule {
        source: Some(mapping_rule::Source::GroupId(group_id.to_owned())),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        precedence,
    }
}

fn roles_value_rule(value: &str, roles: &[&str], precedence: i32) -> MappingRule {
    MappingRule {
        source: Some(mapping_rule::Source::RolesValue(value.to_owned())),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        precedence,
    }
}

async fn set_mapping(
    roles: &mut Roles,
    scim: &ScimClient,
    mode: RoleMappingMode,
    rules: Vec<MappingRule>,
    default_role: &str,
) {
    roles
        .set_role_mapping(SetRoleMappingRequest {
            directory_id: scim.directory_id.clone(),
            mode: mode.into(),
            rules,
            default_role: default_role.to_owned(),
            ..Default::default()
        })
        .await
        .expect("SetRoleMapping");
}

/// The user's role keys, sorted.
async fn roles_of(roles: &mut Roles, scim: &ScimClient, user_id: &str) -> Vec<String> {
    roles
        .get_effective_roles(GetEffectiveRolesRequest {
            directory_id: scim.directory_id.clone(),
            user_id: user_id.to_owned(),
            ..Default::default()
        })
        .await
        .expect("GetEffectiveRoles")
        .into_inner()
        .roles
        .into_iter()
        .map(|role| role.role)
        .collect()
}

async fn user(scim: &ScimClient, name: &str) -> String {
    scim.users()
        .create(&NewUser::new(&format!("{name}@example.com")))
        .await
        .id
}

async fn group(scim: &ScimClient, name: &str, members: &[&str]) -> String {
    scim.groups().create(&NewGroup::new(name, members)).await.id
}

async fn remove_member(scim: &ScimClient, group_id: &str, member_id: &str) {
    let path = format!("members[value eq \"{member_id}\"]");
    scim.groups()
        .patch(group_id, json!([{"op": "remove", "path": path}]))
        .await;
}

async fn add_member(scim: &ScimClient, group_id: &str, member_id: &str) {
    scim.groups()
        .patch(
            group_id,
            json!([{"op": "add", "path": "members", "value": [{"value": member_id}]}]),
        )
        .await;
}

both_backends!(
    single_mode_follows_precedence_as_a_member_leaves_the_winning_group,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member", "guest"]).await;
        let ada = user(&scim, "ada").await;
        let admins = group(&scim, "Admins", &[&ada]).await;
        let staff = group(&scim, "Staff", &[&ada]).await;
        // The member rule comes first in the list; precedence decides.
        let rules = vec![group_rule(&staff, &["member"], 2), group_rule(&admins, &["admin"], 1)];
        set_mapping(&mut roles, &scim, RoleMappingMode::Single, rules, "guest").await;

        let answer = roles
            .get_effective_roles(GetEffectiveRolesRequest {
                directory_id: scim.directory_id.clone(),
                user_id: ada.clone(),
                ..Default::default()
            })
            .await
            .expect("GetEffectiveRoles")
            .into_inner();
        assert_eq!(answer.roles.len(), 1);
        assert_eq!(answer.roles[0].role, "admin");
        let source = &answer.roles[0].sources[0];
        assert_eq!(source.kind(), RoleSourceKind::Group);
        assert_eq!(
            (source.group_id.as_str(), source.rule_index, source.precedence),
            (admins.as_str(), 1, 1)
        );

        // Leaving the winning group through SCIM: the next rule, at once.
        remove_member(&scim, &admins, &ada).await;
        assert_eq!(roles_of(&mut roles, &scim, &ada).await, ["member"]);
        remove_member(&scim, &staff, &ada).await;
        let answer = roles
            .get_effective_roles(GetEffectiveRolesRequest {
                directory_id: scim.directory_id.clone(),
                user_id: ada.clone(),
                ..Default::default()
            })
            .await
            .expect("GetEffectiveRoles")
            .into_inner();
        assert_eq!(answer.roles[0].role, "guest");
        assert_eq!(answer.roles[0].sources[0].kind(), RoleSourceKind::Default);
        // Back into the admins: admin again.
        add_member(&scim, &admins, &ada).await;
        assert_eq!(roles_of(&mut roles, &scim, &ada).await, ["admin"]);
    }
);

both_backends!(
    multiple_mode_is_the_union_of_every_mapped_role,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "billing", "viewer"]).await;
        // Okta's entitlements: a roles value on the user.
        let mut body = serde_json::to_value(NewUser::new("grace@example.com")).expect("JSON");
        body["roles"] = json!([{"value": "okta-billing", "display": "Billing"}]);
        let grace = scim.post("/Users", body, 201).await.body["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let eng = group(&scim, "Engineering", &[&grace]).await;
        let ops = group(&scim, "Ops", &[&grace]).await;
        let rules = vec![
            group_rule(&eng, &["viewer"], 0),
            group_rule(&ops, &["admin", "viewer"], 0),
            roles_value_rule("okta-billing", &["billing"], 0),
        ];
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules, "").await;
        let answer = roles
            .get_effective_roles(GetEffectiveRolesRequest {
                directory_id: scim.directory_id.clone(),
                user_id: grace.clone(),
                ..Default::default()
            })
            .await
            .expect("GetEffectiveRoles")
            .into_inner();
        let keys: Vec<&str> = answer.roles.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(keys, ["admin", "billing", "viewer"]);
        let viewer = &answer.roles[2];
        let mut via: Vec<&str> = viewer.sources.iter().map(|s| s.group_id.as_str()).collect();
        via.sort();
        let mut expected = vec![eng.as_str(), ops.as_str()];
        expected.sort();
        assert_eq!(via, expected, "viewer comes from both groups");
        let billing = &answer.roles[1].sources[0];
        assert_eq!(billing.kind(), RoleSourceKind::RolesAttribute);
        assert_eq!(billing.roles_value, "okta-billing");

        // The IdP drops the roles value: billing goes, the groups stay.
        scim.users()
            .patch(&grace, json!([{"op": "remove", "path": "roles"}]))
            .await;
        assert_eq!(roles_of(&mut roles, &scim, &grace).await, ["admin", "viewer"]);
    }
);

both_backends!(
    the_default_role_applies_without_a_match_and_no_default_means_no_role,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member"]).await;
        let lone = user(&scim, "lone").await;
        let boss = user(&scim, "boss").await;
        let admins = group(&scim, "Admins", &[&boss]).await;
        // No mapping at all: nobody has a role.
        assert!(roles_of(&mut roles, &scim, &lone).await.is_empty());
        let rules = || vec![group_rule(&admins, &["admin"], 0)];
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules(), "member").await;
        assert_eq!(roles_of(&mut roles, &scim, &lone).await, ["member"]);
        assert_eq!(
            roles_of(&mut roles, &scim, &boss).await,
            ["admin"],
            "the default only without a match"
        );
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules(), "").await;
        assert!(roles_of(&mut roles, &scim, &lone).await.is_empty());

        // A deactivated user has no role, not even the default.
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules(), "member").await;
        scim.users()
            .patch(&boss, json!([{"op": "replace", "path": "active", "value": false}]))
            .await;
        let answer = roles
            .get_effective_roles(GetEffectiveRolesRequest {
                directory_id: scim.directory_id.clone(),
                user_id: boss.clone(),
                ..Default::default()
            })
            .await
            .expect("GetEffectiveRoles")
            .into_inner();
        assert!(!answer.active);
        assert!(answer.roles.is_empty());

        let unknown = roles
            .get_effective_roles(GetEffectiveRolesRequest {
                directory_id: scim.directory_id.clone(),
                user_id: "no-such-user".to_owned(),
                ..Default::default()
            })
            .await
            .expect_err("an unknown user");
        assert_eq!(unknown.code(), Code::NotFound);
    }
);

both_backends!(
    a_group_deleted_through_scim_grants_nothing_any_more,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member"]).await;
        let ada = user(&scim, "ada").await;
        let admins = group(&scim, "Admins", &[&ada]).await;
        let staff = group(&scim, "Staff", &[&ada]).await;
        let rules = vec![group_rule(&admins, &["admin"], 1), group_rule(&staff, &["member"], 2)];
        set_mapping(&mut roles, &scim, RoleMappingMode::Single, rules, "").await;
        assert_eq!(roles_of(&mut roles, &scim, &ada).await, ["admin"]);
        scim.delete(&format!("/Groups/{admins}"), 204).await;
        assert_eq!(roles_of(&mut roles, &scim, &ada).await, ["member"]);
        scim.delete(&format!("/Groups/{staff}"), 204).await;
        assert!(roles_of(&mut roles, &scim, &ada).await.is_empty());
    }
);

both_backends!(
    nested_groups_grant_their_roles_and_a_cycle_ends,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "viewer"]).await;
        let ada = user(&scim, "ada").await;
        let bob = user(&scim, "bob").await;
        let team = group(&scim, "Team", &[&ada]).await;
        let department = group(&scim, "Department", &[&team]).await;
        let company = group(&scim, "Company", &[&department, &bob]).await;
        // Company in Team closes a cycle: Team → Department → Company → Team.
        add_member(&scim, &team, &company).await;
        let rules = vec![
            group_rule(&company, &["viewer"], 0),
            group_rule(&department, &["admin"], 0),
        ];
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules, "").await;
        let answer = roles
            .get_effective_roles(GetEffectiveRolesRequest {
                directory_id: scim.directory_id.clone(),
                user_id: ada.clone(),
                ..Default::default()
            })
            .await
            .expect("GetEffectiveRoles")
            .into_inner();
        let keys: Vec<&str> = answer.roles.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(keys, ["admin", "viewer"]);
        for role in &answer.roles {
            assert_eq!(role.sources[0].via_group_id, team, "reached through Team");
        }
        // Bob is in Company, which is in Team (the cycle), which is in
        // Department: every group of the cycle.
        assert_eq!(roles_of(&mut roles, &scim, &bob).await, ["admin", "viewer"]);
        // Breaking the chain through SCIM takes the nested roles away.
        remove_member(&scim, &department, &team).await;
        assert!(roles_of(&mut roles, &scim, &ada).await.is_empty());
    }
);

both_backends!(
    deleting_a_role_a_mapping_uses_is_refused_naming_the_mapping,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member", "spare"]).await;
        let ada = user(&scim, "ada").await;
        let admins = group(&scim, "Admins", &[&ada]).await;
        let rules = vec![group_rule(&admins, &["admin"], 0)];
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules, "member").await;
        for key in ["admin", "member"] {
            let refused = roles
                .delete_role(DeleteRoleRequest { key: key.to_owned() })
                .await
                .expect_err("in use");
            assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
            assert_eq!(idmesh_api::status::reason(&refused).as_deref(), Some("roleInUse"));
            assert!(refused.message().contains(&scim.directory_id), "{refused:?}");
        }
        assert_eq!(roles_of(&mut roles, &scim, &ada).await, ["admin"], "nothing changed");
        roles
            .delete_role(DeleteRoleRequest {
                key: "spare".to_owned(),
            })
            .await
            .expect("an unused role");
        // A mapping naming a role that does not exist is refused too.
        let unknown = roles
            .set_role_mapping(SetRoleMappingRequest {
                directory_id: scim.directory_id.clone(),
                mode: RoleMappingMode::Multiple.into(),
                rules: vec![group_rule(&admins, &["spare"], 0)],
                ..Default::default()
            })
            .await
            .expect_err("spare is gone");
        assert_eq!(unknown.code(), Code::InvalidArgument);
        assert!(unknown.message().contains("spare"), "{unknown:?}");
        let not_a_group = roles
            .set_role_mapping(SetRoleMappingRequest {
                directory_id: scim.directory_id.clone(),
                mode: RoleMappingMode::Multiple.into(),
                rules: vec![group_rule("no-such-group", &["admin"], 0)],
                ..Default::default()
            })
            .await
            .expect_err("not a group");
        assert_eq!(not_a_group.code(), Code::InvalidArgument);
        // Once no mapping uses it, it can go.
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, Vec::new(), "").await;
        roles
            .delete_role(DeleteRoleRequest {
                key: "admin".to_owned(),
            })
            .await
            .expect("no longer in use");
    }
);

both_backends!(
    preview_lists_exactly_what_applying_then_changes,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member", "guest"]).await;
        let mut users = Vec::new();
        for name in ["u0", "u1", "u2", "u3", "u4"] {
            users.push(user(&scim, name).await);
        }
        let admins = group(&scim, "Admins", &[&users[0], &users[1]]).await;
        let staff = group(&scim, "Staff", &[&users[1], &users[2], &users[3]]).await;
        set_mapping(
            &mut roles,
            &scim,
            RoleMappingMode::Multiple,
            vec![group_rule(&staff, &["member"], 0)],
            "",
        )
        .await;
        let proposed = vec![group_rule(&admins, &["admin"], 1), group_rule(&staff, &["member"], 2)];
        let mut before = Vec::new();
        for id in &users {
            before.push(roles_of(&mut roles, &scim, id).await);
        }
        // Two users per page, to go through pages.
        let mut changes = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = roles
                .preview_mappings(PreviewMappingsRequest {
                    directory_id: scim.directory_id.clone(),
                    mode: RoleMappingMode::Single.into(),
                    rules: proposed.clone(),
                    default_role: "guest".to_owned(),
                    page_size: 2,
                    page_token,
                })
                .await
                .expect("PreviewMappings")
                .into_inner();
            changes.extend(page.changes);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        // Nothing applied yet.
        for (id, roles_before) in users.iter().zip(&before) {
            assert_eq!(&roles_of(&mut roles, &scim, id).await, roles_before);
        }
        set_mapping(&mut roles, &scim, RoleMappingMode::Single, proposed, "guest").await;
        let mut changed = 0;
        for (id, roles_before) in users.iter().zip(&before) {
            let after = roles_of(&mut roles, &scim, id).await;
            let gained: Vec<String> = after.iter().filter(|r| !roles_before.contains(r)).cloned().collect();
            let lost: Vec<String> = roles_before.iter().filter(|r| !after.contains(r)).cloned().collect();
            match changes.iter().find(|change| &change.user_id == id) {
                Some(change) => {
                    changed += 1;
                    assert_eq!((&change.gained, &change.lost), (&gained, &lost), "user {id}");
                }
                None => assert!(gained.is_empty() && lost.is_empty(), "user {id} changed unannounced"),
            }
        }
        assert_eq!(changed, changes.len());
        // u0: admin; u1: member → admin; u2, u3: unchanged; u4: guest.
        assert_eq!(changes.len(), 3, "{changes:?}");
    }
);

both_backends!(
    role_holders_are_listed_page_by_page_with_their_sources,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member"]).await;
        let mut users = Vec::new();
        for name in ["h0", "h1", "h2", "h3"] {
            users.push(user(&scim, name).await);
        }
        let admins = group(&scim, "Admins", &[&users[1], &users[3]]).await;
        let rules = vec![group_rule(&admins, &["admin"], 0)];
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, rules, "member").await;
        let mut holders = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = roles
                .list_role_holders(ListRoleHoldersRequest {
                    directory_id: scim.directory_id.clone(),
                    role: "admin".to_owned(),
                    page_size: 3,
                    page_token,
                })
                .await
                .expect("ListRoleHolders")
                .into_inner();
            holders.extend(page.holders);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        let ids: Vec<&str> = holders.iter().map(|h| h.user_id.as_str()).collect();
        assert_eq!(ids, [users[1].as_str(), users[3].as_str()]);
        assert_eq!(holders[0].user_name, "h1@example.com");
        assert_eq!(holders[0].sources[0].group_id, admins);
        let unknown = roles
            .list_role_holders(ListRoleHoldersRequest {
                directory_id: scim.directory_id.clone(),
                role: "nobody".to_owned(),
                ..Default::default()
            })
            .await
            .expect_err("an unknown role");
        assert_eq!(unknown.code(), Code::NotFound);
    }
);

fn field(key: &str, kind: ProfileFieldType, sources: &[&str]) -> ProfileField {
    ProfileField {
        key: key.to_owned(),
        r#type: kind.into(),
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
    }
}

async fn profile_of(roles: &mut Roles, scim: &ScimClient, user_id: &str) -> Value {
    let profile = roles
        .get_profile(GetProfileRequest {
            directory_id: scim.directory_id.clone(),
            user_id: user_id.to_owned(),
            ..Default::default()
        })
        .await
        .expect("GetProfile")
        .into_inner();
    serde_json::from_str(&profile.fields_json).expect("a JSON object")
}

both_backends!(
    attribute_paths_read_okta_and_entra_shapes_and_fall_back,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["member"]).await;
        set_mapping(&mut roles, &scim, RoleMappingMode::Multiple, Vec::new(), "member").await;
        roles
            .set_attribute_mapping(SetAttributeMappingRequest {
                directory_id: scim.directory_id.clone(),
                preset: AttributePreset::EntraId.into(),
                fields: vec![
                    // The work email, else the userName.
                    field(
                        "email",
                        ProfileFieldType::String,
                        &["emails[type eq \"work\"].value", "userName"],
                    ),
                    field("badge", ProfileFieldType::Integer, &["urn:example:acme:1.0:User:badge"]),
                    field(
                        "hired",
                        ProfileFieldType::Timestamp,
                        &["urn:example:acme:1.0:User:hired"],
                    ),
                ],
            })
            .await
            .expect("SetAttributeMapping");

        // Entra ID: the manager as a bare id, booleans as strings, a custom extension.
        let entra = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, "urn:example:acme:1.0:User"],
            "userName": "alex@contoso.com",
            "externalId": "alex",
            "active": "True",
            "displayName": "Alex Wilber",
            "title": "Engineer",
            "name": {"givenName": "Alex", "familyName": "Wilber"},
            "emails": [{"type": "work", "value": "alex.w@contoso.com", "primary": true}],
            "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}, {"type": "work", "value": "+1 555 0199"}],
            "addresses": [{"type": "work", "country": "DE"}],
            ENTERPRISE: {"department": "R&D", "employeeNumber": "77", "manager": "m-1"},
            "urn:example:acme:1.0:User": {"badge": 1207, "hired": "2024-03-01T09:00:00Z"}
        });
        let alex = scim.post("/Users", entra, 201).await.body["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let profile = profile_of(&mut roles, &scim, &alex).await;
        assert_eq!(
            profile,
            json!({
                "user_name": "alex@contoso.com",
                "email": "alex.w@contoso.com",
                "given_name": "Alex",
                "family_name": "Wilber",
                "display_name": "Alex Wilber",
                "mobile_phone": "+1 555 0100",
                "business_phone": "+1 555 0199",
                "title": "Engineer",
                "country": "DE",
                "department": "R&D",
                "employee_number": "77",
                "manager_id": "m-1",
                "external_id": "alex",
                "active": true,
                "badge": 1207,
                "hired": "2024-03-01T09:00:00Z"
            })
        );
        // The manager as {value}, no work email: the email falls back.
        let other = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "sam@contoso.com",
            "emails": [{"type": "home", "value": "sam@home.example"}],
            ENTERPRISE: {"manager": {"value": "m-2"}}
        });
        let sam = scim.post("/Users", other, 201).await.body["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let profile = profile_of(&mut roles, &scim, &sam).await;
        assert_eq!(profile["manager_id"], json!("m-2"));
        assert_eq!(profile["email"], json!("sam@contoso.com"));
        assert_eq!(profile.get("badge"), None, "a missing source gives no field");

        // GetProfile carries the roles too.
        let whole = roles
            .get_profile(GetProfileRequest {
                directory_id: scim.directory_id.clone(),
                user_id: sam.clone(),
                ..Default::default()
            })
            .await
            .expect("GetProfile")
            .into_inner();
        let effective = whole.roles.expect("roles");
        assert_eq!(effective.roles[0].role, "member");

        // Okta: the primary email, a profile change through SCIM shows at once.
        roles
            .set_attribute_mapping(SetAttributeMappingRequest {
                directory_id: scim.directory_id.clone(),
                preset: AttributePreset::Okta.into(),
                fields: Vec::new(),
            })
            .await
            .expect("SetAttributeMapping");
        let okta = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "dana@example.com",
            "name": {"givenName": "Dana", "familyName": "Scully"},
            "emails": [
                {"value": "dana.home@example.com", "type": "home"},
                {"value": "dana@example.com", "type": "work", "primary": true}
            ],
            "roles": [{"value": "Admin", "display": "Admin"}],
            "active": true
        });
        let dana = scim.post("/Users", okta, 201).await.body["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let profile = profile_of(&mut roles, &scim, &dana).await;
        assert_eq!(profile["email"], json!("dana@example.com"));
        assert_eq!(profile["roles"], json!(["Admin"]));
        assert_eq!(profile["active"], json!(true));
        scim.users()
            .patch(
                &dana,
                json!([{"op": "replace", "path": "name.givenName", "value": "Danielle"}]),
            )
            .await;
        assert_eq!(
            profile_of(&mut roles, &scim, &dana).await["given_name"],
            json!("Danielle")
        );
    }
);

both_backends!(
    a_wrong_type_or_path_is_refused_when_the_mapping_is_saved,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        let cases = [
            (
                field("age", ProfileFieldType::Integer, &["userName"]),
                "is a integer but \"userName\" is a string",
            ),
            (
                field("vip", ProfileFieldType::Boolean, &["emails[type eq ]"]),
                "invalid value filter",
            ),
            (field("email", ProfileFieldType::String, &["emails"]), "sub-attributes"),
            (
                field("shoe", ProfileFieldType::String, &["shoeSize"]),
                "names no attribute",
            ),
            (
                field("none", ProfileFieldType::Unspecified, &["userName"]),
                "the type must be",
            ),
        ];
        for (bad, reason) in cases {
            let refused = roles
                .set_attribute_mapping(SetAttributeMappingRequest {
                    directory_id: scim.directory_id.clone(),
                    fields: vec![bad.clone()],
                    ..Default::default()
                })
                .await
                .expect_err(reason);
            assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
            assert!(refused.message().contains(reason), "{reason}: {refused:?}");
            assert!(refused.message().contains(&bad.key), "names the key: {refused:?}");
        }
        let saved = roles
            .get_attribute_mapping(idmesh_proto::v1::GetAttributeMappingRequest {
                directory_id: scim.directory_id.clone(),
            })
            .await
            .expect("GetAttributeMapping")
            .into_inner();
        assert!(saved.fields.is_empty(), "nothing was saved");
    }
);

/// The directory's role events once there are `count` of them, as (type,
/// user, role) in log order, with their events. They follow the SCIM
/// changes by about a second: role-mapping-service reads the log.
async fn role_events(
    mesh: &TestMesh,
    scim: &ScimClient,
    count: usize,
) -> (Vec<(EventType, String, String)>, Vec<Event>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = mesh
            .events()
            .list_events(ListEventsRequest {
                directory_id: scim.directory_id.clone(),
                types: vec![EventType::RoleAssigned.into(), EventType::RoleRemoved.into()],
                page_size: 1_000,
                ..Default::default()
            })
            .await
            .expect("ListEvents")
            .into_inner()
            .events;
        let summary: Vec<(EventType, String, String)> = events
            .iter()
            .map(|e| (e.r#type(), e.resource_id.clone(), e.role.clone()))
            .collect();
        assert!(summary.len() <= count, "more role events than expected: {summary:?}");
        if summary.len() == count {
            return (summary, events);
        }
        assert!(Instant::now() < deadline, "only {summary:?} of {count} role events");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(
    role_changes_are_logged_as_events_after_their_causes_and_a_removal_revokes_sessions_when_asked,
    |mesh: TestMesh| async move {
        use EventType::{RoleAssigned, RoleRemoved};
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "member"]).await;
        let ada = user(&scim, "ada").await;
        let bob = user(&scim, "bob").await;
        let admins = group(&scim, "Admins", &[]).await;
        roles
            .set_role_mapping(SetRoleMappingRequest {
                directory_id: scim.directory_id.clone(),
                mode: RoleMappingMode::Multiple.into(),
                rules: vec![group_rule(&admins, &["admin"], 0)],
                default_role: "member".to_owned(),
                revoke_sessions_on_role_removal: true,
                ..Default::default()
            })
            .await
            .expect("SetRoleMapping");
        // A new mapping decides every user: both get the default role.
        let (mut seen, _) = role_events(&mesh, &scim, 2).await;
        seen.sort();
        let mut expected = vec![
            (RoleAssigned, ada.clone(), "member".to_owned()),
            (RoleAssigned, bob.clone(), "member".to_owned()),
        ];
        expected.sort();
        assert_eq!(seen, expected);

        // Joining the mapped group through SCIM: the default role goes
        // (it applies only without a match), then the group's is assigned,
        // both after the membership in the log.
        add_member(&scim, &admins, &ada).await;
        let (seen, events) = role_events(&mesh, &scim, 4).await;
        assert_eq!(
            seen[2..],
            [
                (RoleRemoved, ada.clone(), "member".to_owned()),
                (RoleAssigned, ada.clone(), "admin".to_owned())
            ],
            "removals first: never more than either state grants"
        );
        let joined = mesh
            .events()
            .list_events(ListEventsRequest {
                directory_id: scim.directory_id.clone(),
                types: vec![EventType::MemberAdded.into()],
                ..Default::default()
            })
            .await
            .expect("ListEvents")
            .into_inner()
            .events;
        assert_eq!(joined.len(), 1);
        assert!(
            events[2].sequence > joined[0].sequence,
            "a role event follows its cause"
        );
        assert!(events[3].version >= 1, "the user's version: {:?}", events[3]);
        assert_eq!(events[3].resource_type, "User");

        // Leaving it: admin removed (the default back), and Ada's session
        // is revoked with it.
        let session = mesh.sign_in(&scim.directory_id, &ada, Duration::from_secs(3600)).await;
        remove_member(&scim, &admins, &ada).await;
        let (seen, _) = role_events(&mesh, &scim, 6).await;
        assert_eq!(
            seen[4..],
            [
                (RoleRemoved, ada.clone(), "admin".to_owned()),
                (RoleAssigned, ada.clone(), "member".to_owned())
            ]
        );
        let checked = mesh
            .sessions()
            .check_session(CheckSessionRequest {
                session_id: session.id.clone(),
            })
            .await
            .expect("CheckSession")
            .into_inner();
        assert_eq!(
            checked.status(),
            SessionStatus::Revoked,
            "revoked before the removal is logged"
        );

        // A group moved into the mapped group reaches its members.
        let staff = group(&scim, "Staff", &[&bob]).await;
        add_member(&scim, &admins, &staff).await;
        let (seen, _) = role_events(&mesh, &scim, 8).await;
        assert_eq!(
            seen[6..],
            [
                (RoleRemoved, bob.clone(), "member".to_owned()),
                (RoleAssigned, bob.clone(), "admin".to_owned())
            ]
        );

        // Deactivated: no roles. Deleting the mapped group afterwards
        // changes nothing for anyone.
        scim.users()
            .patch(&bob, json!([{"op": "replace", "path": "active", "value": false}]))
            .await;
        let (seen, _) = role_events(&mesh, &scim, 9).await;
        assert_eq!(seen[8], (RoleRemoved, bob.clone(), "admin".to_owned()));
        scim.delete(&format!("/Groups/{admins}"), 204).await;
        // Ada is deleted: her last role goes.
        scim.delete(&format!("/Users/{ada}"), 204).await;
        let (seen, events) = role_events(&mesh, &scim, 10).await;
        assert_eq!(seen[9], (RoleRemoved, ada.clone(), "member".to_owned()));
        assert_eq!(events[9].version, 0, "a deleted user has no version");
    }
);

fn staleness(millis: u64) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(Duration::from_millis(millis)).ok()
}

/// When an answer was computed, as (seconds, nanoseconds): comparable.
fn computed_at(at: Option<prost_types::Timestamp>) -> (i64, i32) {
    let at = at.expect("computed_at");
    (at.seconds, at.nanos)
}

/// The user's role keys and when they were computed, accepting an answer
/// up to `max_staleness` old.
async fn roles_within(
    roles: &mut Roles,
    scim: &ScimClient,
    user_id: &str,
    max_staleness: Option<prost_types::Duration>,
) -> (Vec<String>, (i64, i32)) {
    let answer = roles
        .get_effective_roles(GetEffectiveRolesRequest {
            directory_id: scim.directory_id.clone(),
            user_id: user_id.to_owned(),
            max_staleness,
        })
        .await
        .expect("GetEffectiveRoles")
        .into_inner();
    let keys = answer.roles.into_iter().map(|role| role.role).collect();
    (keys, computed_at(answer.computed_at))
}

both_backends!(
    an_answer_up_to_max_staleness_old_may_be_served_but_never_an_older_one,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut roles = mesh.roles();
        create_roles(&mut roles, &["admin", "guest"]).await;
        let ada = user(&scim, "ada").await;
        let admins = group(&scim, "Admins", &[&ada]).await;
        let rules = vec![group_rule(&admins, &["admin"], 1)];
        set_mapping(&mut roles, &scim, RoleMappingMode::Single, rules, "guest").await;
        let minute = staleness(60_000);

        let (first, first_at) = roles_within(&mut roles, &scim, &ada, minute).await;
        assert_eq!(first, ["admin"]);
        remove_member(&scim, &admins, &ada).await;
        // Accepting a minute-old answer: the one computed before the change.
        assert_eq!(roles_within(&mut roles, &scim, &ada, minute).await, (first, first_at));
        // Asking for a fresh one (the default): the change, at once.
        let (fresh, fresh_at) = roles_within(&mut roles, &scim, &ada, None).await;
        assert_eq!(fresh, ["guest"]);
        assert!(fresh_at > first_at, "{fresh_at:?} after {first_at:?}");
        // That fresh answer is now the one kept.
        assert_eq!(roles_within(&mut roles, &scim, &ada, minute).await, (fresh, fresh_at));

        // A kept answer older than the caller accepts is computed again.
        add_member(&scim, &admins, &ada).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (again, again_at) = roles_within(&mut roles, &scim, &ada, staleness(200)).await;
        assert_eq!(again, ["admin"]);
        assert!(again_at > fresh_at, "{again_at:?} after {fresh_at:?}");

        // The profile keeps its fields and roles together, under the same rule.
        roles
            .set_attribute_mapping(SetAttributeMappingRequest {
                directory_id: scim.directory_id.clone(),
                fields: vec![field("name", ProfileFieldType::String, &["displayName"])],
                ..Default::default()
            })
            .await
            .expect("SetAttributeMapping");
        let profile = |max_staleness| {
            let (mut roles, directory_id, user_id) = (roles.clone(), scim.directory_id.clone(), ada.clone());
            async move {
                let profile = roles
                    .get_profile(GetProfileRequest {
                        directory_id,
                        user_id,
                        max_staleness,
                    })
                    .await
                    .expect("GetProfile")
                    .into_inner();
                let fields: Value = serde_json::from_str(&profile.fields_json).expect("a JSON object");
                let roles = profile.roles.expect("roles");
                let keys: Vec<String> = roles.roles.into_iter().map(|role| role.role).collect();
                (fields["name"].clone(), keys, computed_at(roles.computed_at))
            }
        };
        scim.users()
            .patch(&ada, json!([{"op": "replace", "path": "displayName", "value": "Ada"}]))
            .await;
        let before = profile(minute).await;
        assert_eq!(
            (&before.0, before.1.as_slice()),
            (&json!("Ada"), ["admin".to_owned()].as_slice())
        );
        scim.users()
            .patch(
                &ada,
                json!([{"op": "replace", "path": "displayName", "value": "Ada Lovelace"}]),
            )
            .await;
        remove_member(&scim, &admins, &ada).await;
        assert_eq!(profile(minute).await, before);
        let after = profile(None).await;
        assert_eq!(
            (&after.0, after.1.as_slice()),
            (&json!("Ada Lovelace"), ["guest".to_owned()].as_slice())
        );
        assert!(after.2 > before.2);

        // A negative staleness, or more than a minute, is the caller's mistake.
        let refused = [
            Some(prost_types::Duration { seconds: -1, nanos: 0 }),
            Some(prost_types::Duration { seconds: 60, nanos: 1 }),
        ];
        for max_staleness in refused {
            let err = roles
                .get_effective_roles(GetEffectiveRolesRequest {
                    directory_id: scim.directory_id.clone(),
                    user_id: ada.clone(),
                    max_staleness,
                })
                .await
                .expect_err("refused");
            assert_eq!(err.code(), Code::InvalidArgument, "{max_staleness:?}: {err:?}");
            let err = roles
                .get_profile(GetProfileRequest {
                    directory_id: scim.directory_id.clone(),
                    user_id: ada.clone(),
                    max_staleness,
                })
                .await
                .expect_err("refused");
            assert_eq!(err.code(), Code::InvalidArgument, "{max_staleness:?}: {err:?}");
        }
    }
);
