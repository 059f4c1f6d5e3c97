//! The `idmesh.v1.RoleMappingService` gRPC API.
//!
//! Nothing here is materialised: each answer reads the directory's mapping
//! from this service's tables and the users and memberships it concerns
//! from user-service and group-service at the time of the call, so it is
//! right immediately after any SCIM change, whichever replica answers. A
//! caller that names a `max_staleness` may get an answer computed that
//! long before instead ([`crate::recent`]). (The roles the follower
//! records, [`crate::follow`], are only what it last announced in the
//! change stream.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use idmesh_api::timestamp;
use idmesh_proto::v1 as pb;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::role_mapping_service_server::RoleMappingService;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_runtime::auth;
use idmesh_runtime::auth::AuthChannel;
use idmesh_runtime::clock::Clock;
use scim::ScimError;
use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tonic::{Code, Request, Response, Status};

use crate::Error;
use crate::entity::role;
use crate::mapping::{Mapping, UserFacts};
use crate::membership;
use crate::profile::AttributeMapping;
use crate::recent::{self, Recent};
use crate::store;

/// Users looked at per ListRoleHolders or PreviewMappings page unless asked
/// otherwise, and the most.
const DEFAULT_USER_PAGE: i32 = 500;
pub(crate) const MAX_USER_PAGE: i32 = 1_000;
/// Users read from user-service at once when deciding a set of them.
const CONCURRENT_READS: usize = 16;
/// Longest role key, name and description.
const MAX_ROLE_KEY_LEN: usize = 64;
const MAX_ROLE_NAME_LEN: usize = 256;
const MAX_ROLE_DESCRIPTION_LEN: usize = 1_024;

/// The role-mapping-service gRPC implementation.
#[derive(Clone)]
pub struct RoleApi {
    db: DatabaseConnection,
    users: UserServiceClient<AuthChannel>,
    groups: GroupServiceClient<AuthChannel>,
    clock: Clock,
    recent_roles: Arc<Recent<pb::EffectiveRoles>>,
    recent_profiles: Arc<Recent<pb::Profile>>,
}

impl std::fmt::Debug for RoleApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleApi").finish_non_exhaustive()
    }
}

/// The roles a mapping gives one user, as the follower records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub user_id: String,
    /// The user's version the roles were decided from; 0 for a user that
    /// no longer exists.
    pub version: i64,
    /// False for a deactivated or deleted user.
    pub active: bool,
    pub roles: BTreeSet<String>,
}

impl Decision {
    pub(crate) fn of(user: &pb::User, mapping: &Mapping, facts: &UserFacts) -> Decision {
        Decision {
            user_id: user.id.clone(),
            version: user.meta.as_ref().map_or(0, |meta| meta.version),
            active: user.active,
            roles: mapping.decide(facts).into_keys().collect(),
        }
    }

    /// A user that no longer exists: no roles.
    pub(crate) fn gone(user_id: String) -> Decision {
        Decision {
            user_id,
            version: 0,
            active: false,
            roles: BTreeSet::new(),
        }
    }
}

/// What one user's roles and profile are computed from.
struct Subject {
    user: pb::User,
    doc: Map<String, Value>,
}

impl Subject {
    fn new(user: pb::User) -> Result<Subject, Error> {
        let doc = idmesh_api::document::from_service(&user.resource_json)?;
        Ok(Subject { user, doc })
    }

    fn facts(&self, groups: HashMap<String, String>) -> UserFacts {
        let roles_values = match self.doc.get("roles") {
            Some(Value::Array(roles)) => roles
                .iter()
                .filter_map(|role| role.get("value").and_then(Value::as_str).map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        UserFacts {
            active: self.user.active,
            roles_values,
            groups,
        }
    }
}

fn role_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_ROLE_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:.".contains(&b))
}

fn role_to_proto(row: role::Model) -> pb::Role {
    pb::Role {
        key: row.key,
        name: row.name,
        description: row.description,
    }
}

fn effective(
    directory_id: &str,
    user: &pb::User,
    roles: BTreeMap<String, Vec<pb::RoleSource>>,
    mapping_version: i64,
    computed_at: OffsetDateTime,
) -> pb::EffectiveRoles {
    pb::EffectiveRoles {
        directory_id: directory_id.to_owned(),
        user_id: user.id.clone(),
        active: user.active,
        roles: roles
            .into_iter()
            .map(|(role, sources)| pb::EffectiveRole { role, sources })
            .collect(),
        mapping_version,
        computed_at: Some(timestamp::to_proto(computed_at)),
    }
}

fn page_size(asked: i32) -> i32 {
    match asked {
        size if size <= 0 => DEFAULT_USER_PAGE,
        size => size.min(MAX_USER_PAGE),
    }
}

impl RoleApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.RoleMappingService";

    pub(crate) fn new(db: DatabaseConnection, users: AuthChannel, groups: AuthChannel, clock: Clock) -> Self {
        Self {
            db,
            users: idmesh_runtime::with_message_limits!(UserServiceClient::new(users)),
            groups: idmesh_runtime::with_message_limits!(GroupServiceClient::new(groups)),
            clock,
            recent_roles: Arc::new(Recent::new()),
            recent_profiles: Arc::new(Recent::new()),
        }
    }

    async fn subject(&self, directory_id: &str, user_id: &str) -> Result<Subject, Error> {
        let user = self
            .users
            .clone()
            .get_user(pb::GetUserRequest {
                directory_id: directory_id.to_owned(),
                id: user_id.to_owned(),
            })
            .await
            .map_err(Error::users)?
            .into_inner();
        Subject::new(user)
    }

    /// The user, its groups and the mapping, asked for at once; the answer
    /// says it was computed at `now`, a time taken before any of it was read.
    async fn decide(
        &self,
        directory_id: &str,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Subject, pb::EffectiveRoles), Error> {
        let ids = [user_id.to_owned()];
        let (mapping, subject, mut groups) = tokio::try_join!(
            store::load_mapping(&self.db, directory_id),
            self.subject(directory_id, user_id),
            membership::closure(&self.groups, directory_id, &ids),
        )?;
        let roles = mapping.decide(&subject.facts(groups.remove(user_id).unwrap_or_default()));
        let answer = effective(directory_id, &subject.user, roles, mapping.version, now);
        Ok((subject, answer))
    }

    /// Refuses a mapping that names roles missing from the catalog or
    /// groups that are not the directory's, as saving it would.
    async fn check_mapping(&self, directory_id: &str, mapping: &Mapping) -> Result<(), Error> {
        let known: Vec<String> = store::list_roles(&self.db).await?.into_iter().map(|r| r.key).collect();
        let unknown: Vec<String> = mapping
            .role_keys()
            .into_iter()
            .filter(|key| !known.contains(key))
            .collect();
        if !unknown.is_empty() {
            return Err(ScimError::invalid_value(format!("roles not in the catalog: {unknown:?}")).into());
        }
        for group_id in mapping.group_ids() {
            if !self.is_group(directory_id, &group_id).await? {
                return Err(ScimError::invalid_value(format!(
                    "{group_id:?} is not a group of directory {directory_id}"
                ))
                .into());
            }
        }
        Ok(())
    }

    /// What `mapping` decides for each of `user_ids` (at most a few
    /// thousand) now: no roles, at version 0, for an id that is not a user
    /// (any more).
    pub(crate) async fn decide_users(
        &self,
        directory_id: &str,
        user_ids: &[String],
        mapping: &Mapping,
    ) -> Result<Vec<Decision>, Error> {
        let mut subjects = Vec::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(CONCURRENT_READS) {
            let mut reads = tokio::task::JoinSet::new();
            for user_id in chunk {
                let (api, directory_id, user_id) = (self.clone(), directory_id.to_owned(), user_id.clone());
                reads.spawn(async move {
                    match api.subject(&directory_id, &user_id).await {
                        Ok(subject) => Ok(Some(subject)),
                        Err(Error::Peer { status, .. }) if status.code() == Code::NotFound => Ok(None),
                        Err(err) => Err(err),
                    }
                });
            }
            while let Some(read) = reads.join_next().await {
                subjects.extend(read.map_err(|err| Error::Task(err.to_string()))??);
            }
        }
        let found: Vec<String> = subjects.iter().map(|subject| subject.user.id.clone()).collect();
        let is_user: std::collections::HashSet<&str> = found.iter().map(String::as_str).collect();
        let mut closure = membership::closure(&self.groups, directory_id, &found).await?;
        let mut decisions: Vec<Decision> = subjects
            .into_iter()
            .map(|subject| {
                let groups = closure.remove(&subject.user.id).unwrap_or_default();
                Decision::of(&subject.user, mapping, &subject.facts(groups))
            })
            .collect();
        decisions.extend(
            user_ids
                .iter()
                .filter(|user_id| !is_user.contains(user_id.as_str()))
                .cloned()
                .map(Decision::gone),
        );
        Ok(decisions)
    }

    /// Whether `id` is a group of the directory.
    pub(crate) async fn is_group(&self, directory_id: &str, id: &str) -> Result<bool, Error> {
        let found = self
            .groups
            .clone()
            .get_group(pb::GetGroupRequest {
                directory_id: directory_id.to_owned(),
                id: id.to_owned(),
            })
            .await;
        match found {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(Error::groups(status)),
        }
    }

    /// One page of the directory's users, each with the groups it is in:
    /// what ListRoleHolders and PreviewMappings walk through, and the
    /// follower when it decides every user.
    pub(crate) async fn user_page(
        &self,
        directory_id: &str,
        size: i32,
        token: String,
    ) -> Result<(Vec<(pb::User, UserFacts)>, String), Error> {
        let page = self
            .users
            .clone()
            .list_users(pb::ListUsersRequest {
                directory_id: directory_id.to_owned(),
                page: Some(pb::PageRequest {
                    start_index: 1,
                    count: size,
                    cursor: Some(token),
                }),
                ..Default::default()
            })
            .await
            .map_err(Error::users)?
            .into_inner();
        let ids: Vec<String> = page.users.iter().map(|user| user.id.clone()).collect();
        let mut closure = membership::closure(&self.groups, directory_id, &ids).await?;
        let users = page
            .users
            .into_iter()
            .map(|user| {
                let groups = closure.remove(&user.id).unwrap_or_default();
                let subject = Subject::new(user)?;
                let facts = subject.facts(groups);
                Ok((subject.user, facts))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((users, page.next_cursor))
    }
}

#[tonic::async_trait]
impl RoleMappingService for RoleApi {
    async fn create_role(&self, request: Request<pb::CreateRoleRequest>) -> Result<Response<pb::Role>, Status> {
        auth::caller(&request)?;
        let role = request.into_inner().role.unwrap_or_default();
        let key = role.key.trim().to_owned();
        if !role_key_ok(&key) {
            return Err(Error::from(ScimError::invalid_value(format!(
                "role key {key:?}: 1 to {MAX_ROLE_KEY_LEN} of a-z, 0-9, '-', '_', ':' and '.'"
            )))
            .into());
        }
        if role.name.len() > MAX_ROLE_NAME_LEN || role.description.len() > MAX_ROLE_DESCRIPTION_LEN {
            return Err(Error::from(ScimError::invalid_value(format!(
                "a role's name is at most {MAX_ROLE_NAME_LEN} bytes and its description {MAX_ROLE_DESCRIPTION_LEN}"
            )))
            .into());
        }
        let name = match role.name.trim() {
            "" => key.clone(),
            name => name.to_owned(),
        };
        let row = role::Model {
            key,
            name,
            description: role.description,
            created: (self.clock)(),
        };
        let created = store::create_role(&self.db, row).await?;
        tracing::info!(role = %created.key, "role created");
        Ok(Response::new(role_to_proto(created)))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        auth::caller(&request)?;
        let roles = store::list_roles(&self.db).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.into_iter().map(role_to_proto).collect(),
        }))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        auth::caller(&request)?;
        let key = request.into_inner().key;
        store::delete_role(&self.db, &key).await?;
        tracing::info!(role = %key, "role deleted");
        Ok(Response::new(pb::DeleteRoleResponse {}))
    }

    async fn set_role_mapping(
        &self,
        request: Request<pb::SetRoleMappingRequest>,
    ) -> Result<Response<pb::RoleMapping>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let mapping = Mapping {
            revoke_sessions: request.revoke_sessions_on_role_removal,
            ..Mapping::from_request(request.mode, request.rules, request.default_role).map_err(Error::from)?
        };
        self.check_mapping(&request.directory_id, &mapping).await?;
        let saved = store::save_mapping(
            &self.db,
            &request.directory_id,
            mapping,
            request.expected_version,
            (self.clock)(),
        )
        .await?;
        tracing::info!(directory_id = %request.directory_id, version = saved.version, rules = saved.rules.len(), "role mapping set");
        Ok(Response::new(saved.to_proto(&request.directory_id)))
    }

    async fn get_role_mapping(
        &self,
        request: Request<pb::GetRoleMappingRequest>,
    ) -> Result<Response<pb::RoleMapping>, Status> {
        auth::authorize(&request)?;
        let directory_id = request.into_inner().directory_id;
        let mapping = store::load_mapping(&self.db, &directory_id).await?;
        Ok(Response::new(mapping.to_proto(&directory_id)))
    }

    async fn preview_mappings(
        &self,
        request: Request<pb::PreviewMappingsRequest>,
    ) -> Result<Response<pb::PreviewMappingsResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let proposed = Mapping::from_request(request.mode, request.rules, request.default_role).map_err(Error::from)?;
        self.check_mapping(&request.directory_id, &proposed).await?;
        let current = store::load_mapping(&self.db, &request.directory_id).await?;
        let (users, next_page_token) = self
            .user_page(&request.directory_id, page_size(request.page_size), request.page_token)
            .await?;
        let changes = users
            .into_iter()
            .filter_map(|(user, facts)| {
                let before = current.decide(&facts);
                let after = proposed.decide(&facts);
                let gained: Vec<String> = after
                    .keys()
                    .filter(|role| !before.contains_key(*role))
                    .cloned()
                    .collect();
                let lost: Vec<String> = before
                    .keys()
                    .filter(|role| !after.contains_key(*role))
                    .cloned()
                    .collect();
                (!gained.is_empty() || !lost.is_empty()).then_some(pb::RoleChange {
                    user_id: user.id,
                    user_name: user.user_name,
                    gained,
                    lost,
                })
            })
            .collect();
        Ok(Response::new(pb::PreviewMappingsResponse {
            changes,
            next_page_token,
        }))
    }

    async fn set_attribute_mapping(
        &self,
        request: Request<pb::SetAttributeMappingRequest>,
    ) -> Result<Response<pb::AttributeMapping>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let mapping = AttributeMapping::from_request(request.preset, request.fields).map_err(Error::from)?;
        store::save_attributes(&self.db, &request.directory_id, &mapping).await?;
        tracing::info!(directory_id = %request.directory_id, fields = mapping.fields.len(), "attribute mapping set");
        Ok(Response::new(mapping.to_proto(&request.directory_id)))
    }

    async fn get_attribute_mapping(
        &self,
        request: Request<pb::GetAttributeMappingRequest>,
    ) -> Result<Response<pb::AttributeMapping>, Status> {
        auth::authorize(&request)?;
        let directory_id = request.into_inner().directory_id;
        let mapping = store::load_attributes(&self.db, &directory_id).await?;
        Ok(Response::new(mapping.to_proto(&directory_id)))
    }

    async fn get_effective_roles(
        &self,
        request: Request<pb::GetEffectiveRolesRequest>,
    ) -> Result<Response<pb::EffectiveRoles>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let max_staleness = recent::max_staleness(request.max_staleness).map_err(Error::from)?;
        let (directory_id, user_id) = (&request.directory_id, &request.user_id);
        let roles = self
            .recent_roles
            .answer(directory_id, user_id, max_staleness, || async {
                let (_, roles) = self.decide(directory_id, user_id, (self.clock)()).await?;
                Ok(roles)
            })
            .await?;
        Ok(Response::new(roles))
    }

    async fn list_role_holders(
        &self,
        request: Request<pb::ListRoleHoldersRequest>,
    ) -> Result<Response<pb::ListRoleHoldersResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let known = store::list_roles(&self.db).await?;
        if !known.iter().any(|role| role.key == request.role) {
            return Err(Error::from(ScimError::not_found(format!("role {:?} not found", request.role))).into());
        }
        let mapping = store::load_mapping(&self.db, &request.directory_id).await?;
        let (users, next_page_token) = self
            .user_page(&request.directory_id, page_size(request.page_size), request.page_token)
            .await?;
        let holders = users
            .into_iter()
            .filter_map(|(user, facts)| {
                let mut roles = mapping.decide(&facts);
                roles.remove(&request.role).map(|sources| pb::RoleHolder {
                    user_id: user.id,
                    user_name: user.user_name,
                    sources,
                })
            })
            .collect();
        Ok(Response::new(pb::ListRoleHoldersResponse {
            holders,
            next_page_token,
        }))
    }

    async fn get_profile(&self, request: Request<pb::GetProfileRequest>) -> Result<Response<pb::Profile>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let max_staleness = recent::max_staleness(request.max_staleness).map_err(Error::from)?;
        let (directory_id, user_id) = (&request.directory_id, &request.user_id);
        let profile = self
            .recent_profiles
            .answer(directory_id, user_id, max_staleness, || async {
                let (attributes, (subject, roles)) = tokio::try_join!(
                    store::load_attributes(&self.db, directory_id),
                    self.decide(directory_id, user_id, (self.clock)()),
                )?;
                let fields = attributes.profile(&subject.doc);
                Ok(pb::Profile {
                    directory_id: directory_id.clone(),
                    user_id: subject.user.id,
                    fields_json: idmesh_api::document::to_json(&fields),
                    roles: Some(roles),
                })
            })
            .await?;
        Ok(Response::new(profile))
    }
}
