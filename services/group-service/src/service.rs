//! The `idmesh.v1.GroupService` gRPC API.
//!
//! Every write validates what it adds before it begins: the document with
//! `scim`, and each new member id against this directory's groups and,
//! through user-service, its users (ids that are neither are left out of
//! SCIM writes and fail PatchMembers and ReplaceMembers; see
//! [`crate::members::Unknown`]). It then runs in one transaction that
//! first locks the group's row (`SELECT … FOR UPDATE` on PostgreSQL; on
//! SQLite the write transaction's `BEGIN IMMEDIATE` already serialises
//! writers), so concurrent writes to one group queue up instead of
//! retrying, and none is lost. `expected_version` is checked under that
//! lock. Each write records its events in the outbox in that transaction
//! ([`crate::events`]).

use idmesh_api::document;
use idmesh_api::meta::Meta;
use idmesh_outbox::Outbox;
use idmesh_proto::v1::group_service_server::GroupService;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_proto::v1::{
    CreateGroupRequest, DeleteGroupRequest, DeleteGroupResponse, EventType, GetGroupRequest, Group,
    ListGroupsOfMemberRequest, ListGroupsOfMemberResponse, ListGroupsRequest, ListGroupsResponse, ListMembersRequest,
    ListMembersResponse, Member, MemberType, Membership, PatchGroupRequest, PatchMembersRequest,
    RemoveMemberEverywhereRequest, RemoveMemberEverywhereResponse, ReplaceMembersRequest, UpdateGroupRequest,
};
use idmesh_runtime::auth;
use idmesh_runtime::auth::AuthChannel;
use idmesh_runtime::clock::Clock;
use idmesh_store::list::Window;
use scim::patch::PatchOperation;
use scim::schema::GROUP_RESOURCE;
use scim::{Limits, ScimError};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

use crate::Error;
use crate::entity::{group, group_member};
use crate::events;
use crate::filter::GroupFilters;
use crate::lookup;
use crate::members::{self, Candidates, Unknown};
use scim::members::{MemberChange, NewMember};

/// Members per ListMembers page unless asked otherwise, and the most.
const DEFAULT_MEMBER_PAGE: u64 = 1_000;
const MAX_MEMBER_PAGE: u64 = 10_000;
/// The most member ids one ListGroupsOfMember call may name.
const MAX_MEMBERSHIP_IDS: usize = 1_000;
/// Group ids per `IN (...)` list.
const CHUNK: usize = 1_000;

/// The group-service gRPC implementation.
#[derive(Clone)]
pub struct GroupApi {
    db: DatabaseConnection,
    /// The pool of the reads whose generic plans are tested
    /// ([`idmesh_store::connect_plan_cached`]); `db` until
    /// [`GroupApi::with_plan_cached`] says otherwise.
    plan_cached: DatabaseConnection,
    users: UserServiceClient<AuthChannel>,
    clock: Clock,
    limits: Limits,
    /// Where every write records its events.
    outbox: Outbox,
}

impl std::fmt::Debug for GroupApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupApi").finish_non_exhaustive()
    }
}

/// A validated group document without members, and the columns derived
/// from it.
struct Document {
    doc: Map<String, Value>,
    display_name: String,
    external_id: Option<String>,
}

impl Document {
    /// Validates a SCIM Group document from which members were taken out.
    fn normalize(body: Map<String, Value>, limits: &Limits) -> Result<Document, Error> {
        let doc = scim::resource::normalize(Value::Object(body), &GROUP_RESOURCE)?.doc;
        limits.check_document(&doc)?;
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(Document {
            display_name: text("displayName").unwrap_or_default(),
            external_id: text("externalId"),
            doc,
        })
    }

    fn folded(&self) -> Value {
        Value::Object(scim::filter::fold(&self.doc, &GROUP_RESOURCE))
    }
}

/// A Group document from a request, and the members it lists.
fn document_and_members(resource_json: &str, limits: &Limits) -> Result<(Document, Vec<NewMember>), Error> {
    let mut body = document::parse_within(resource_json, limits)?;
    let mut listed = Vec::new();
    for members in scim::members::take_members(&mut body)? {
        listed.extend(scim::members::new_members(&members)?);
    }
    limits.check_members(listed.len())?;
    Ok((Document::normalize(body, limits)?, listed))
}

/// How many members `changes` name one by one.
fn members_named(changes: &[MemberChange]) -> usize {
    changes
        .iter()
        .map(|change| match change {
            MemberChange::Add(members) => members.len(),
            MemberChange::Remove(ids) => ids.len(),
            MemberChange::RemoveAll | MemberChange::RemoveMatching(_) => 0,
        })
        .sum()
}

/// Members added by id alone, as gRPC callers name them.
fn by_id(ids: Vec<String>) -> Vec<NewMember> {
    ids.into_iter().map(NewMember::from).collect()
}

fn to_proto(model: group::Model) -> Group {
    let resource_json = match &model.resource {
        Value::Object(doc) => document::to_json(doc),
        _ => String::new(),
    };
    let meta = Meta {
        version: model.version,
        created: model.created,
        last_modified: model.last_modified,
    };
    Group {
        id: model.id,
        directory_id: model.directory_id,
        display_name: model.display_name,
        external_id: model.external_id,
        resource_json,
        member_count: model.member_count,
        meta: Some(meta.to_proto()),
    }
}

fn member_to_proto(row: group_member::Model) -> Member {
    let kind = match row.member_type.as_str() {
        group_member::GROUP => MemberType::Group,
        _ => MemberType::User,
    };
    Member {
        value: row.member_id,
        r#type: kind.into(),
        display: row.display,
    }
}

fn not_found(id: &str) -> Error {
    ScimError::not_found(format!("Group {id} not found")).into()
}

fn stale_version(expected: i64, actual: i64) -> Error {
    scim::meta::stale_version("group", expected, actual).into()
}

fn taken(external_id: Option<&str>) -> Error {
    ScimError::uniqueness(format!(
        "externalId {:?} is already taken in this directory",
        external_id.unwrap_or_default()
    ))
    .into()
}

/// What a write does to a group besides its member rows.
enum DocumentChange {
    Keep,
    Replace(Document),
    Patch(Vec<PatchOperation>),
}

impl GroupApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.GroupService";

    /// The API over `db`, with the default [`Limits`].
    pub(crate) fn new(db: DatabaseConnection, users: AuthChannel, clock: Clock) -> Self {
        Self {
            plan_cached: db.clone(),
            db,
            users: idmesh_runtime::with_message_limits!(UserServiceClient::new(users)),
            clock,
            limits: Limits::DEFAULT,
            outbox: Outbox::new(events::OUTBOX_TABLE),
        }
    }

    /// The outbox the writes record their events in, for the
    /// OutboxService that events-service drains it through.
    pub(crate) fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The same API bounded by `limits`.
    pub(crate) fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    /// Reads one member's direct groups on `plan_cached`, a pool on the
    /// same database that keeps PostgreSQL's plans.
    pub(crate) fn with_plan_cached(self, plan_cached: DatabaseConnection) -> Self {
        Self { plan_cached, ..self }
    }

    fn filters(&self) -> GroupFilters {
        GroupFilters::new(self.db.get_database_backend())
    }

    async fn load(&self, directory_id: &str, id: &str) -> Result<group::Model, Error> {
        group::Entity::find_by_id(id)
            .filter(group::Column::DirectoryId.eq(directory_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// The group's row, locked until `txn` ends.
    async fn lock(
        &self,
        txn: &DatabaseTransaction,
        directory_id: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> Result<group::Model, Error> {
        let current = group::Entity::find_by_id(id)
            .filter(group::Column::DirectoryId.eq(directory_id))
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or_else(|| not_found(id))?;
        if let Some(expected) = expected_version.filter(|v| *v != current.version) {
            return Err(stale_version(expected, current.version));
        }
        Ok(current)
    }

    /// Resolves the members a write adds, before its transaction begins:
    /// the candidates, and the ids that are neither users nor groups of the
    /// directory, answered by `policy`.
    async fn candidates(
        &self,
        directory_id: &str,
        group_id: &str,
        changes: &[MemberChange],
        policy: Unknown,
    ) -> Result<(Candidates, Vec<String>), Error> {
        let added = changes
            .iter()
            .flat_map(|change| match change {
                MemberChange::Add(added) => added.as_slice(),
                _ => &[],
            })
            .map(|member| &member.id);
        let (candidates, unknown) = members::resolve(&self.db, &self.users, directory_id, group_id, added).await?;
        members::check_unknown(policy, &unknown)?;
        Ok((candidates, unknown))
    }

    /// One write to a group: its document and its member rows, under the
    /// group's lock, all or nothing; the version goes up by one. Added ids
    /// that are not users or groups of the directory are answered by
    /// `policy`.
    async fn write(
        &self,
        directory_id: &str,
        id: &str,
        expected_version: Option<i64>,
        document: DocumentChange,
        changes: Vec<MemberChange>,
        policy: Unknown,
    ) -> Result<group::Model, Error> {
        self.limits.check_members(members_named(&changes))?;
        let (mut candidates, mut skipped) = self.candidates(directory_id, id, &changes, policy).await?;
        // Returning early drops `txn`, which rolls it back.
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining()).await?;
        let mut gone = members::hold_users(&txn, directory_id, &mut candidates).await?;
        gone.extend(members::hold_groups(&txn, directory_id, &mut candidates).await?);
        members::check_unknown(policy, &gone)?;
        skipped.extend(gone);
        let current = self.lock(&txn, directory_id, id, expected_version).await?;
        let document = match document {
            DocumentChange::Keep => None,
            DocumentChange::Replace(document) => Some(document),
            DocumentChange::Patch(ops) if ops.is_empty() => None,
            DocumentChange::Patch(ops) => {
                let Value::Object(doc) = &current.resource else {
                    return Err(ScimError::internal().into());
                };
                Some(Document::normalize(
                    scim::patch::apply(doc, &ops, &GROUP_RESOURCE)?,
                    &self.limits,
                )?)
            }
        };
        // What the new document changes, for GROUP_UPDATED.
        let changed = document.as_ref().map(|document| match &current.resource {
            Value::Object(before) => idmesh_outbox::changed_attributes(before, &document.doc),
            _ => Vec::new(),
        });
        let (delta, touched) = members::apply(&txn, self.filters(), &current, &changes, &candidates).await?;
        let mut updated = group::Model {
            member_count: current.member_count + delta,
            version: current.version + 1,
            last_modified: (self.clock)(),
            ..current
        };
        if let Some(document) = document {
            updated.display_name_folded = scim::filter::fold_text(&document.display_name);
            updated.resource_folded = document.folded();
            updated.display_name = document.display_name;
            updated.external_id = document.external_id;
            updated.resource = Value::Object(document.doc);
        }
        let mut row = group::ActiveModel::from(updated.clone()).reset_all();
        row.id = sea_orm::ActiveValue::NotSet;
        row.directory_id = sea_orm::ActiveValue::NotSet;
        row.created = sea_orm::ActiveValue::NotSet;
        match group::Entity::update_many()
            .set(row)
            .filter(group::Column::Id.eq(&updated.id))
            .exec(&txn)
            .await
        {
            Ok(_) => {}
            Err(err) if idmesh_store::is_unique_violation(&err) => {
                return Err(taken(updated.external_id.as_deref()));
            }
            Err(err) => return Err(err.into()),
        }
        let mut recorded: Vec<_> = changed
            .into_iter()
            .map(|changed| events::with_document(EventType::GroupUpdated, &updated, changed))
            .collect();
        recorded.extend(events::members(&updated, touched));
        self.outbox.record(&txn, recorded).await?;
        txn.commit().await?;
        self.outbox.written();
        members::report_skipped(directory_id, id, &skipped);
        Ok(updated)
    }
}

#[tonic::async_trait]
impl GroupService for GroupApi {
    async fn create_group(&self, request: Request<CreateGroupRequest>) -> Result<Response<Group>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let (document, listed) = document_and_members(&request.resource_json, &self.limits)?;
        let id = uuid::Uuid::now_v7().to_string();
        let changes = vec![MemberChange::Add(listed)];
        let (mut candidates, mut skipped) = self
            .candidates(&request.directory_id, &id, &changes, Unknown::Skip)
            .await?;
        let now = (self.clock)();
        let row = group::Model {
            id,
            directory_id: request.directory_id,
            display_name_folded: scim::filter::fold_text(&document.display_name),
            resource_folded: document.folded(),
            display_name: document.display_name,
            external_id: document.external_id,
            resource: Value::Object(document.doc),
            member_count: 0,
            version: 1,
            created: now,
            last_modified: now,
        };
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining())
            .await
            .map_err(Error::from)?;
        skipped.extend(members::hold_users(&txn, &row.directory_id, &mut candidates).await?);
        skipped.extend(members::hold_groups(&txn, &row.directory_id, &mut candidates).await?);
        let (added, touched) = members::apply(&txn, self.filters(), &row, &changes, &candidates).await?;
        let row = group::Model {
            member_count: added,
            ..row
        };
        let model = match group::ActiveModel::from(row.clone()).insert(&txn).await {
            Ok(model) => model,
            Err(err) if idmesh_store::is_unique_violation(&err) => {
                return Err(taken(row.external_id.as_deref()).into());
            }
            Err(err) => return Err(Error::from(err).into()),
        };
        let mut recorded = vec![events::with_document(EventType::GroupCreated, &model, Vec::new())];
        recorded.extend(events::members(&model, touched));
        self.outbox.record(&txn, recorded).await.map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        self.outbox.written();
        members::report_skipped(&model.directory_id, &model.id, &skipped);
        tracing::info!(directory_id = %model.directory_id, group_id = %model.id, members = model.member_count, "group created");
        Ok(Response::new(to_proto(model)))
    }

    async fn get_group(&self, request: Request<GetGroupRequest>) -> Result<Response<Group>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        Ok(Response::new(to_proto(
            self.load(&request.directory_id, &request.id).await?,
        )))
    }

    async fn list_groups(&self, request: Request<ListGroupsRequest>) -> Result<Response<ListGroupsResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let mut query = group::Entity::find().filter(group::Column::DirectoryId.eq(&request.directory_id));
        if !request.filter.trim().is_empty() {
            let filter = scim::filter::parse(&request.filter).map_err(Error::from)?;
            query = query.filter(self.filters().groups(&filter).map_err(Error::from)?);
        }
        let (sort, page) = (request.sort.unwrap_or_default(), request.page.unwrap_or_default());
        let window = Window {
            sort_by: &sort.sort_by,
            descending: sort.descending,
            start_index: page.start_index,
            count: page.count,
            cursor: page.cursor.as_deref(),
        };
        let listed = self
            .filters()
            .target()
            .list::<_, group::Model, Error>(&self.db, query, group::Column::Id, window)
            .await?;
        Ok(Response::new(ListGroupsResponse {
            groups: listed.rows.into_iter().map(to_proto).collect(),
            total_results: i64::try_from(listed.total).unwrap_or(i64::MAX),
            next_cursor: listed.next_cursor,
            previous_cursor: listed.previous_cursor,
        }))
    }

    async fn update_group(&self, request: Request<UpdateGroupRequest>) -> Result<Response<Group>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let (document, listed) = document_and_members(&request.resource_json, &self.limits)?;
        let model = self
            .write(
                &request.directory_id,
                &request.id,
                request.expected_version,
                DocumentChange::Replace(document),
                vec![MemberChange::RemoveAll, MemberChange::Add(listed)],
                Unknown::Skip,
            )
            .await?;
        tracing::info!(directory_id = %model.directory_id, group_id = %model.id, version = model.version, "group replaced");
        Ok(Response::new(to_proto(model)))
    }

    async fn patch_group(&self, request: Request<PatchGroupRequest>) -> Result<Response<Group>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let operations = idmesh_api::patch::from_proto(request.operations).map_err(Error::from)?;
        self.limits.check_patch(&operations).map_err(Error::from)?;
        let split = scim::members::split(operations).map_err(Error::from)?;
        let model = self
            .write(
                &request.directory_id,
                &request.id,
                request.expected_version,
                DocumentChange::Patch(split.document),
                split.members,
                Unknown::Skip,
            )
            .await?;
        tracing::info!(directory_id = %model.directory_id, group_id = %model.id, version = model.version, members = model.member_count, "group patched");
        Ok(Response::new(to_proto(model)))
    }

    async fn patch_members(&self, request: Request<PatchMembersRequest>) -> Result<Response<Group>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let model = self
            .write(
                &request.directory_id,
                &request.group_id,
                request.expected_version,
                DocumentChange::Keep,
                vec![
                    MemberChange::Add(by_id(request.add)),
                    MemberChange::Remove(request.remove),
                ],
                Unknown::Reject,
            )
            .await?;
        tracing::info!(directory_id = %model.directory_id, group_id = %model.id, version = model.version, members = model.member_count, "group members changed");
        Ok(Response::new(to_proto(model)))
    }

    async fn replace_members(&self, request: Request<ReplaceMembersRequest>) -> Result<Response<Group>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let model = self
            .write(
                &request.directory_id,
                &request.group_id,
                request.expected_version,
                DocumentChange::Keep,
                vec![MemberChange::RemoveAll, MemberChange::Add(by_id(request.members))],
                Unknown::Reject,
            )
            .await?;
        tracing::info!(directory_id = %model.directory_id, group_id = %model.id, version = model.version, members = model.member_count, "group members replaced");
        Ok(Response::new(to_proto(model)))
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        self.load(&request.directory_id, &request.group_id).await?;
        let size = match u64::try_from(request.page_size) {
            Ok(0) | Err(_) => DEFAULT_MEMBER_PAGE,
            Ok(size) => size.min(MAX_MEMBER_PAGE),
        };
        let mut query = group_member::Entity::find()
            .filter(group_member::Column::GroupId.eq(&request.group_id))
            .filter(group_member::Column::DirectoryId.eq(&request.directory_id));
        if !request.page_token.is_empty() {
            query = query.filter(group_member::Column::MemberId.gt(&request.page_token));
        }
        // One row beyond the page tells whether another page follows.
        let mut rows = query
            .order_by_asc(group_member::Column::MemberId)
            .limit(size + 1)
            .all(&self.db)
            .await
            .map_err(Error::from)?;
        let more = u64::try_from(rows.len()).unwrap_or(u64::MAX) > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match rows.last() {
            Some(last) if more => last.member_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(ListMembersResponse {
            members: rows.into_iter().map(member_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_groups_of_member(
        &self,
        request: Request<ListGroupsOfMemberRequest>,
    ) -> Result<Response<ListGroupsOfMemberResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        if request.member_ids.len() > MAX_MEMBERSHIP_IDS {
            return Err(Error::from(ScimError::invalid_value(format!(
                "at most {MAX_MEMBERSHIP_IDS} member ids per call, not {}",
                request.member_ids.len()
            )))
            .into());
        }
        if let [member_id] = request.member_ids.as_slice() {
            let memberships = lookup::groups_of_one(
                &self.db,
                &self.plan_cached,
                &request.directory_id,
                member_id,
                request.include_ancestors,
                request.without_group_names,
            )
            .await?;
            return Ok(Response::new(ListGroupsOfMemberResponse { memberships }));
        }
        let rows = lookup::memberships(
            &self.db,
            &request.directory_id,
            request.member_ids,
            request.include_ancestors,
        )
        .await?;
        let mut group_ids: Vec<&String> = if request.without_group_names {
            Vec::new()
        } else {
            rows.iter().map(|(_, group_id)| group_id).collect()
        };
        group_ids.sort_unstable();
        group_ids.dedup();
        // By primary key alone: the ids come from the directory's own
        // membership rows. A `directory_id` condition here would add nothing
        // but let PostgreSQL, with statistics older than a bulk load, choose
        // to scan the whole directory's groups instead.
        let mut names = std::collections::HashMap::with_capacity(group_ids.len());
        for chunk in group_ids.chunks(CHUNK) {
            let found: Vec<(String, String)> = group::Entity::find()
                .select_only()
                .columns([group::Column::Id, group::Column::DisplayName])
                .filter(group::Column::Id.is_in(chunk.iter().map(|id| (*id).clone())))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(Error::from)?;
            names.extend(found);
        }
        let memberships = rows
            .into_iter()
            .map(|(member_id, group_id)| Membership {
                group_display_name: names.get(&group_id).cloned().unwrap_or_default(),
                member_id,
                group_id,
            })
            .collect();
        Ok(Response::new(ListGroupsOfMemberResponse { memberships }))
    }

    async fn delete_group(
        &self,
        request: Request<DeleteGroupRequest>,
    ) -> Result<Response<DeleteGroupResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining())
            .await
            .map_err(Error::from)?;
        let current = self
            .lock(&txn, &request.directory_id, &request.id, request.expected_version)
            .await?;
        let now = (self.clock)();
        let members = members::remove_all(&txn, &current.id).await?;
        let parents_left = members::leave_all(&txn, &current.directory_id, &current.id, now).await?;
        group::Entity::delete_by_id(&current.id)
            .exec(&txn)
            .await
            .map_err(Error::from)?;
        let parents = parents_left.len();
        let mut recorded = events::left(&current.directory_id, &current.id, parents_left, now);
        recorded.push(events::deleted(&current, now));
        self.outbox.record(&txn, recorded).await.map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        self.outbox.written();
        tracing::info!(directory_id = %current.directory_id, group_id = %current.id, members, parents, "group deleted");
        Ok(Response::new(DeleteGroupResponse {}))
    }

    async fn remove_member_everywhere(
        &self,
        request: Request<RemoveMemberEverywhereRequest>,
    ) -> Result<Response<RemoveMemberEverywhereResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining())
            .await
            .map_err(Error::from)?;
        let now = (self.clock)();
        let left = members::forget_deleted(&txn, &request.directory_id, &request.member_id, now).await?;
        let groups = left.len();
        let recorded = events::left(&request.directory_id, &request.member_id, left, now);
        self.outbox.record(&txn, recorded).await.map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        self.outbox.written();
        if groups > 0 {
            tracing::info!(directory_id = %request.directory_id, member_id = %request.member_id, groups, "member removed from every group");
        }
        Ok(Response::new(RemoveMemberEverywhereResponse {
            groups: i64::try_from(groups).unwrap_or(i64::MAX),
        }))
    }
}
