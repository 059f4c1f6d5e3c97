//! The `idmesh.v1.UserService` gRPC API.
//!
//! Every write validates the document with `scim`, whoever the caller is, and
//! is a compare-and-set on the row's version: a PATCH reads the user, applies
//! its operations in memory and writes back only if nobody wrote in between,
//! retrying otherwise. Two IdP requests therefore never lose each other's
//! changes, on PostgreSQL and SQLite alike, without holding row locks.
//!
//! A write that deactivates a user (stored `active` from true, or
//! unassigned, to false) and every delete also revoke the user's sessions:
//! the revocation is stored in the write's transaction and delivered before
//! the call answers ([`crate::revocation`]).
//!
//! Every write also records its event (created, updated, deactivated,
//! reactivated, deleted) in the outbox in its own transaction, for
//! events-service to sequence ([`idmesh_outbox`]).

use idmesh_api::{document, timestamp};
use idmesh_outbox::Outbox;
use idmesh_proto::v1::user_service_server::UserService;
use idmesh_proto::v1::{
    CreateUserRequest, DeleteUserRequest, DeleteUserResponse, Event, EventType, GetRevocationBacklogRequest,
    GetRevocationBacklogResponse, GetUserRequest, ListUsersRequest, ListUsersResponse, LookupUsersRequest,
    LookupUsersResponse, PatchUserRequest, ReplaceUserRequest, User, UserSummary,
};
use idmesh_runtime::auth;
use idmesh_runtime::clock::Clock;
use idmesh_runtime::cpu::CpuPool;
use idmesh_store::filter::{Column, ColumnKind, Target};
use idmesh_store::list::{Listed, Window};
use scim::filter::Filter;
use scim::resource::Normalized;
use scim::schema::USER_RESOURCE;
use scim::{Limits, ScimError};
use sea_orm::sea_query::{Alias, CommonTableExpression, Expr, Query, WithClause};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QuerySelect, QueryTrait, Select, Statement,
};
use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

use crate::entity::{session_revocation, user};
use crate::revocation::{Revocations, USER_DEACTIVATED, USER_DELETED};
use crate::stored::StoredUser;
use crate::{Error, password};

/// The most ids one LookupUsers call may name.
const MAX_LOOKUP_IDS: usize = 10_000;
/// How many ids go into one `IN (...)` list: well below SQLite's and
/// PostgreSQL's limits on bound parameters.
const LOOKUP_CHUNK: usize = 1_000;

/// How often a write is retried when another write to the same user won the
/// race. Conflicts need two writers on one user at the same instant, so
/// running out of attempts means pathological contention.
const MAX_WRITE_ATTEMPTS: usize = 32;

/// The table of user-service's outbox of events.
pub(crate) const OUTBOX_TABLE: &str = "user_event_outbox";

/// The user-service gRPC implementation.
#[derive(Clone)]
pub struct UserApi {
    db: DatabaseConnection,
    /// The pool of the reads whose generic plans are tested
    /// ([`idmesh_store::connect_plan_cached`]); `db` until
    /// [`UserApi::with_plan_cached`] says otherwise.
    plan_cached: DatabaseConnection,
    clock: Clock,
    revocations: Revocations,
    /// Where every write records its event.
    outbox: Outbox,
    limits: Limits,
    /// Where PATCH application and password hashing run.
    cpu: CpuPool,
}

impl std::fmt::Debug for UserApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserApi").finish_non_exhaustive()
    }
}

/// Whether a write's validation is cheap enough for an async worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    Light,
    Heavy,
}

/// The columns of a user row that are derived from its SCIM document.
struct Indexed {
    user_name: String,
    user_name_folded: String,
    external_id: Option<String>,
    active: bool,
    display_name: Option<String>,
}

impl Indexed {
    fn of(doc: &Map<String, Value>) -> Self {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let user_name = text("userName").unwrap_or_default();
        Self {
            user_name_folded: scim::filter::fold_text(&user_name),
            user_name,
            external_id: text("externalId"),
            // Unassigned (removed by a PATCH) is not deactivated.
            active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
            display_name: text("displayName"),
        }
    }
}

/// A user row as written, and the revocation of their sessions that the
/// write stored, still to be delivered.
struct Written {
    user: StoredUser,
    revocation: Option<session_revocation::Model>,
}

/// What filters and sorting read: the document with every string that
/// compares case-insensitively lower-cased.
fn folded(doc: &Map<String, Value>) -> Value {
    Value::Object(scim::filter::fold(doc, &USER_RESOURCE))
}

/// Validates a SCIM User document within `limits`.
fn normalize_user(body: Value, limits: &Limits) -> Result<Normalized, Error> {
    let normalized = scim::resource::normalize(body, &USER_RESOURCE)?;
    limits.check_document(&normalized.doc)?;
    Ok(normalized)
}

/// The User attribute kept in a column of its own besides the common ones:
/// `userName`, folded, with the unique index that makes it unique per
/// directory ignoring case.
const USER_NAME: Column = Column {
    attribute: "userName",
    name: "user_name_folded",
    kind: ColumnKind::Text,
};
const COLUMNS: &[Column] = &[USER_NAME];

/// A List's filter, parsed; `None` when it is blank.
pub(crate) fn parse_filter(filter: &str) -> Result<Option<Filter>, Error> {
    if filter.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(scim::filter::parse(filter)?))
}

/// The event of a write that left `model` behind.
fn event(event_type: EventType, model: &user::Model, changed_attributes: Vec<String>) -> Event {
    let meta = scim::meta::Meta {
        resource_type: "User",
        created: model.created,
        last_modified: model.last_modified,
        version: model.version,
        location: String::new(),
    };
    let resource_json = match &model.resource {
        Value::Object(doc) => idmesh_outbox::resource_json(doc, &model.id, &meta),
        _ => String::new(),
    };
    Event {
        directory_id: model.directory_id.clone(),
        time: Some(timestamp::to_proto(model.last_modified)),
        r#type: event_type.into(),
        resource_type: "User".to_owned(),
        resource_id: model.id.clone(),
        version: model.version,
        resource_json,
        changed_attributes,
        ..Event::default()
    }
}

/// What a write that leaves `active` as `is_active` was, for its event.
fn update_type(was_active: bool, is_active: bool) -> EventType {
    match (was_active, is_active) {
        (true, false) => EventType::UserDeactivated,
        (false, true) => EventType::UserReactivated,
        _ => EventType::UserUpdated,
    }
}

fn not_found(id: &str) -> Error {
    ScimError::not_found(format!("User {id} not found")).into()
}

fn stale_version(expected: i64, actual: i64) -> Error {
    scim::meta::stale_version("user", expected, actual).into()
}

fn taken(user_name: &str) -> Error {
    ScimError::uniqueness(format!("userName {user_name:?} is already taken in this directory")).into()
}

impl UserApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.UserService";

    /// The API over `db`, with the default [`Limits`] and one CPU-heavy job
    /// per core.
    pub(crate) fn new(db: DatabaseConnection, clock: Clock, revocations: Revocations) -> Self {
        Self {
            plan_cached: db.clone(),
            db,
            clock,
            revocations,
            outbox: Outbox::new(OUTBOX_TABLE),
            limits: Limits::DEFAULT,
            cpu: CpuPool::per_core(),
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

    /// Reads a user by id on `plan_cached`, a pool on the same database
    /// that keeps PostgreSQL's plans.
    pub(crate) fn with_plan_cached(self, plan_cached: DatabaseConnection) -> Self {
        Self { plan_cached, ..self }
    }

    /// Validates a new user's document and fills in what the server decides:
    /// a user is created active unless told otherwise. Later writes keep what
    /// the client sends, so a PATCH that removes `active` leaves it
    /// unassigned.
    fn normalize_new(&self, body: Value) -> Result<Normalized, Error> {
        let mut normalized = normalize_user(body, &self.limits)?;
        normalized.doc.entry("active").or_insert(Value::Bool(true));
        Ok(normalized)
    }

    /// The SCIM document a request carries (an absent one is empty, and
    /// fails validation like any document without a userName).
    fn request_body(&self, resource_json: &str) -> Result<Value, Error> {
        Ok(Value::Object(document::parse_within(resource_json, &self.limits)?))
    }

    /// Where filters and sorting find User attributes.
    fn target(&self) -> Target {
        Target {
            backend: self.db.get_database_backend(),
            schema: &USER_RESOURCE,
            folded_document: "resource_folded",
            columns: COLUMNS,
            common_columns: true,
        }
    }

    /// The users of a directory that match a SCIM filter (all of them
    /// without one), as one query.
    pub(crate) fn matching(&self, directory_id: &str, filter: Option<&Filter>) -> Result<Select<user::Entity>, Error> {
        let query = user::Entity::find().filter(user::Column::DirectoryId.eq(directory_id));
        let Some(filter) = filter else {
            return Ok(query);
        };
        Ok(query.filter(self.target().condition(filter)?))
    }

    /// The page of users that `filter` and `window` ask for. A lookup by
    /// `userName eq "…"` (what IdPs send before every create) is one read
    /// of the unique index on the folded userName; every other list runs
    /// the list pipeline.
    async fn list(
        &self,
        directory_id: &str,
        filter: Option<&Filter>,
        window: Window<'_>,
    ) -> Result<Listed<StoredUser>, Error> {
        if let Some(filter) = filter
            && window.by_index_unsorted()
            && let Some((USER_NAME, user_name_folded)) = self.target().column_equality(filter)
        {
            let found = StoredUser::find_by_user_name(&self.db, directory_id, &user_name_folded).await?;
            return Ok(Listed::at_most_one(found, &window));
        }
        let query = self.matching(directory_id, filter)?;
        self.target()
            .list::<_, StoredUser, Error>(&self.db, query, user::Column::Id, window)
            .await
    }

    async fn load(&self, directory_id: &str, id: &str) -> Result<StoredUser, Error> {
        StoredUser::find(&self.plan_cached, directory_id, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Rewrites a user from what `change` makes of the stored document,
    /// retrying when a concurrent write got there first. With
    /// `expected_version`, a write that would not apply to that exact
    /// version fails instead. `Cost::Heavy` parses the stored document,
    /// runs `change` and prepares the write on the CPU pool: a PATCH costs
    /// what the stored document costs, which its request does not bound.
    async fn update_with(
        &self,
        directory_id: &str,
        id: &str,
        expected_version: Option<i64>,
        cost: Cost,
        change: impl Fn(&Map<String, Value>) -> Result<Normalized, Error> + Send + Sync + 'static,
    ) -> Result<StoredUser, Error> {
        let change = std::sync::Arc::new(change);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.load(directory_id, id).await?;
            if let Some(expected) = expected_version.filter(|v| *v != current.version) {
                return Err(stale_version(expected, current.version));
            }
            // The CPU pool's job takes the row and hands it back: the row
            // holds the whole document, too large to copy.
            let apply = {
                let change = change.clone();
                move || (changed(&current, &*change), current)
            };
            let (outcome, current) = if cost == Cost::Heavy {
                self.cpu.run(apply).await?
            } else {
                apply()
            };
            let (before, normalized) = outcome?;
            let password_hash = match normalized.password {
                Some(password) => Some(password::hash(&self.cpu, password).await?),
                None => current.password_hash.clone(),
            };
            let (backend, now) = (self.db.get_database_backend(), (self.clock)());
            let prepare = move || prepare_update(backend, current, &before, normalized.doc, password_hash, now);
            let prepared = if cost == Cost::Heavy {
                self.cpu.run(prepare).await?
            } else {
                prepare()
            };
            if let Some(written) = self.write_update(prepared).await? {
                if let Some(revocation) = written.revocation {
                    self.revocations.deliver_claimed(revocation).await;
                }
                return Ok(written.user);
            }
        }
        Err(ScimError::new(409, None, "the user is being changed concurrently; retry the request").into())
    }

    /// Inserts a new user and its USER_CREATED event, atomically. On
    /// PostgreSQL in one statement (the user's INSERT in a `WITH`, the
    /// event's as the statement itself): one round trip instead of BEGIN,
    /// two INSERTs and COMMIT, which cost creates a quarter of their
    /// throughput (docs/benchmarks.md). Without the request's deadline: two
    /// inserts of new rows wait on nothing but a concurrent insert of the
    /// same userName, and the connection's statement timeout bounds that.
    async fn insert_with_event(&self, model: &user::Model) -> Result<(), DbErr> {
        let created = event(EventType::UserCreated, model, Vec::new());
        let insert = user::Entity::insert(user::ActiveModel::from(model.clone()).reset_all());
        if self.db.get_database_backend() == DbBackend::Postgres {
            let user = CommonTableExpression::new()
                .query(insert.into_query())
                .table_name(Alias::new("created_user"))
                .to_owned();
            let statement = self
                .outbox
                .insert(&[created])?
                .with(WithClause::new().cte(user).to_owned());
            self.db.execute(&statement).await?;
            return Ok(());
        }
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        insert.exec_without_returning(&txn).await?;
        self.outbox.record(&txn, vec![created]).await?;
        txn.commit().await
    }

    /// Stores `prepared` if the row is still at the version it was prepared
    /// from; `None` if it is not. A write that deactivates the user stores
    /// the revocation of the user's sessions with it, and returns it to
    /// deliver.
    async fn write_update(&self, prepared: PreparedUpdate) -> Result<Option<Written>, Error> {
        let PreparedUpdate {
            updated,
            deactivated,
            event,
            statement,
        } = prepared;
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining()).await?;
        let result = txn.execute_raw(statement).await;
        // Returning early drops `txn`, which rolls it back.
        match result {
            Ok(result) if result.rows_affected() == 1 => {}
            Ok(_) => return Ok(None),
            Err(err) if idmesh_store::is_unique_violation(&err) => return Err(taken(&updated.user_name)),
            Err(err) => return Err(err.into()),
        }
        let revocation = if deactivated {
            let revocation = self
                .revocations
                .record(&txn, &updated.directory_id, &updated.id, USER_DEACTIVATED)
                .await?;
            Some(revocation)
        } else {
            None
        };
        self.outbox.record(&txn, vec![event]).await?;
        txn.commit().await?;
        self.outbox.written();
        if deactivated {
            tracing::info!(directory_id = %updated.directory_id, user_id = %updated.id, "user deactivated; revoking their sessions");
        }
        Ok(Some(Written {
            user: updated,
            revocation,
        }))
    }
}

/// A rewrite of a user, ready to store: the row as it will be (its
/// document serialised for the answer), whether it deactivates the user,
/// its event, and the UPDATE that stores it, with the document and its
/// folded copy already serialised. Preparing costs what the document
/// costs, so a heavy write prepares on the CPU pool, not on an async
/// worker where the process's other requests would wait behind it
/// (docs/benchmarks.md).
struct PreparedUpdate {
    updated: StoredUser,
    deactivated: bool,
    event: Event,
    statement: Statement,
}

/// The stored document of `current`, and what `change` makes of it.
fn changed(
    current: &StoredUser,
    change: impl Fn(&Map<String, Value>) -> Result<Normalized, Error>,
) -> Result<(Map<String, Value>, Normalized), Error> {
    let before = current.document()?;
    let normalized = change(&before)?;
    Ok((before, normalized))
}

/// The rewrite of `current`, whose document is `before`, into `doc` (see
/// [`PreparedUpdate`]), at `now`.
fn prepare_update(
    backend: DbBackend,
    current: StoredUser,
    before: &Map<String, Value>,
    doc: Map<String, Value>,
    password_hash: Option<String>,
    now: time::OffsetDateTime,
) -> PreparedUpdate {
    let indexed = Indexed::of(&doc);
    let changed = idmesh_outbox::changed_attributes(before, &doc);
    let resource_json = document::to_json(&doc);
    let (was_active, read_version) = (current.active, current.version);
    let updated = user::Model {
        id: current.id,
        directory_id: current.directory_id,
        user_name: indexed.user_name,
        user_name_folded: indexed.user_name_folded,
        external_id: indexed.external_id,
        active: indexed.active,
        display_name: indexed.display_name,
        resource_folded: folded(&doc),
        resource: Value::Object(doc),
        password_hash,
        version: read_version + 1,
        created: current.created,
        last_modified: now,
    };
    PreparedUpdate {
        deactivated: was_active && !updated.active,
        event: event(update_type(was_active, updated.active), &updated, changed),
        statement: update_statement(backend, &updated, resource_json.clone(), read_version),
        updated: StoredUser::written(updated, resource_json),
    }
}

/// The UPDATE that writes `updated`, whose document serialises to
/// `resource_json`, over its row if the row is still at `read_version`.
/// The JSON columns are bound as the text they are stored as: bound as
/// JSON values, the driver would serialise them while it sends the
/// statement, on an async worker.
fn update_statement(backend: DbBackend, updated: &user::Model, resource_json: String, read_version: i64) -> Statement {
    // Every field named, so that a column added to the model without a
    // place here does not compile.
    let user::Model {
        id,
        directory_id,
        created: _,
        user_name,
        user_name_folded,
        external_id,
        active,
        display_name,
        resource: _,
        resource_folded,
        password_hash,
        version,
        last_modified,
    } = updated;
    let json = |text: String| -> Expr {
        match backend {
            DbBackend::Postgres => Expr::cust_with_values("CAST($1 AS jsonb)", [text]),
            _ => Expr::val(text),
        }
    };
    let update = Query::update()
        .table(user::Entity)
        .values([
            (user::Column::UserName, Expr::val(user_name.as_str())),
            (user::Column::UserNameFolded, Expr::val(user_name_folded.as_str())),
            (user::Column::ExternalId, Expr::val(external_id.clone())),
            (user::Column::Active, Expr::val(*active)),
            (user::Column::DisplayName, Expr::val(display_name.clone())),
            (user::Column::Resource, json(resource_json)),
            (user::Column::ResourceFolded, json(resource_folded.to_string())),
            (user::Column::PasswordHash, Expr::val(password_hash.clone())),
            (user::Column::Version, Expr::val(*version)),
            (user::Column::LastModified, Expr::val(*last_modified)),
        ])
        .and_where(user::Column::Id.eq(id.as_str()))
        .and_where(user::Column::DirectoryId.eq(directory_id.as_str()))
        .and_where(user::Column::Version.eq(read_version))
        .to_owned();
    backend.build(&update)
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(&self, request: Request<CreateUserRequest>) -> Result<Response<User>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let normalized = self.normalize_new(self.request_body(&request.resource_json)?)?;
        let password_hash = match normalized.password {
            Some(password) => Some(password::hash(&self.cpu, password).await?),
            None => None,
        };
        let indexed = Indexed::of(&normalized.doc);
        let now = (self.clock)();
        let model = user::Model {
            id: uuid::Uuid::now_v7().to_string(),
            directory_id: request.directory_id,
            user_name: indexed.user_name,
            user_name_folded: indexed.user_name_folded,
            external_id: indexed.external_id,
            active: indexed.active,
            display_name: indexed.display_name,
            resource_folded: folded(&normalized.doc),
            resource: Value::Object(normalized.doc),
            password_hash,
            version: 1,
            created: now,
            last_modified: now,
        };
        match self.insert_with_event(&model).await {
            Ok(()) => self.outbox.written(),
            Err(err) if idmesh_store::is_unique_violation(&err) => return Err(taken(&model.user_name).into()),
            Err(err) => return Err(Error::from(err).into()),
        }
        tracing::info!(directory_id = %model.directory_id, user_id = %model.id, "user created");
        Ok(Response::new(StoredUser::from(model).into_proto()))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let user = self.load(&request.directory_id, &request.id).await?;
        Ok(Response::new(user.into_proto()))
    }

    async fn replace_user(&self, request: Request<ReplaceUserRequest>) -> Result<Response<User>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let body = self.request_body(&request.resource_json)?;
        let limits = self.limits;
        let user = self
            .update_with(
                &request.directory_id,
                &request.id,
                request.expected_version,
                Cost::Light,
                move |_| normalize_user(body.clone(), &limits),
            )
            .await?;
        tracing::info!(directory_id = %user.directory_id, user_id = %user.id, version = user.version, "user replaced");
        Ok(Response::new(user.into_proto()))
    }

    async fn patch_user(&self, request: Request<PatchUserRequest>) -> Result<Response<User>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let operations = idmesh_api::patch::from_proto(request.operations).map_err(Error::from)?;
        self.limits.check_patch(&operations).map_err(Error::from)?;
        let limits = self.limits;
        let user = self
            .update_with(
                &request.directory_id,
                &request.id,
                request.expected_version,
                Cost::Heavy,
                move |doc| {
                    let patched = scim::patch::apply(doc, &operations, &USER_RESOURCE)?;
                    normalize_user(Value::Object(patched), &limits)
                },
            )
            .await?;
        tracing::info!(directory_id = %user.directory_id, user_id = %user.id, version = user.version, "user patched");
        Ok(Response::new(user.into_proto()))
    }

    async fn delete_user(&self, request: Request<DeleteUserRequest>) -> Result<Response<DeleteUserResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let mut condition = Condition::all()
            .add(user::Column::Id.eq(&request.id))
            .add(user::Column::DirectoryId.eq(&request.directory_id));
        if let Some(version) = request.expected_version {
            condition = condition.add(user::Column::Version.eq(version));
        }
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining())
            .await
            .map_err(Error::from)?;
        let deleted = user::Entity::delete_many()
            .filter(condition)
            .exec_with_returning(&txn)
            .await
            .map_err(Error::from)?;
        let Some(deleted) = deleted.into_iter().next() else {
            txn.rollback().await.map_err(Error::from)?;
            // Either there is no such user, or it is not at the expected version.
            let current = self.load(&request.directory_id, &request.id).await?;
            let expected = request.expected_version.ok_or_else(|| not_found(&request.id))?;
            return Err(stale_version(expected, current.version).into());
        };
        let revocation = self
            .revocations
            .record(&txn, &request.directory_id, &request.id, USER_DELETED)
            .await
            .map_err(Error::from)?;
        let gone = Event {
            resource_json: String::new(),
            version: deleted.version + 1,
            time: Some(timestamp::to_proto((self.clock)())),
            ..event(EventType::UserDeleted, &deleted, Vec::new())
        };
        self.outbox.record(&txn, vec![gone]).await.map_err(Error::from)?;
        txn.commit().await.map_err(Error::from)?;
        self.outbox.written();
        tracing::info!(directory_id = %request.directory_id, user_id = %request.id, "user deleted; revoking their sessions");
        self.revocations.deliver_claimed(revocation).await;
        Ok(Response::new(DeleteUserResponse {}))
    }

    async fn list_users(&self, request: Request<ListUsersRequest>) -> Result<Response<ListUsersResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let filter = parse_filter(&request.filter)?;
        let (sort, page) = (request.sort.unwrap_or_default(), request.page.unwrap_or_default());
        let window = Window {
            sort_by: &sort.sort_by,
            descending: sort.descending,
            start_index: page.start_index,
            count: page.count,
            cursor: page.cursor.as_deref(),
        };
        let listed = self.list(&request.directory_id, filter.as_ref(), window).await?;
        Ok(Response::new(ListUsersResponse {
            users: listed.rows.into_iter().map(StoredUser::into_proto).collect(),
            total_results: i64::try_from(listed.total).unwrap_or(i64::MAX),
            next_cursor: listed.next_cursor,
            previous_cursor: listed.previous_cursor,
        }))
    }

    async fn lookup_users(
        &self,
        request: Request<LookupUsersRequest>,
    ) -> Result<Response<LookupUsersResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        if request.ids.len() > MAX_LOOKUP_IDS {
            return Err(Error::from(ScimError::invalid_value(format!(
                "at most {MAX_LOOKUP_IDS} ids per lookup, not {}",
                request.ids.len()
            )))
            .into());
        }
        let mut users = Vec::with_capacity(request.ids.len());
        for ids in request.ids.chunks(LOOKUP_CHUNK) {
            let found: Vec<(String, String, Option<String>)> = user::Entity::find()
                .select_only()
                .columns([user::Column::Id, user::Column::UserName, user::Column::DisplayName])
                .filter(user::Column::DirectoryId.eq(&request.directory_id))
                .filter(user::Column::Id.is_in(ids.iter().cloned()))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(Error::from)?;
            users.extend(found.into_iter().map(|(id, user_name, display_name)| UserSummary {
                id,
                user_name,
                display_name: display_name.unwrap_or_default(),
            }));
        }
        Ok(Response::new(LookupUsersResponse { users }))
    }

    async fn get_revocation_backlog(
        &self,
        _request: Request<GetRevocationBacklogRequest>,
    ) -> Result<Response<GetRevocationBacklogResponse>, Status> {
        let backlog = self.revocations.backlog().await.map_err(Error::from)?;
        Ok(Response::new(GetRevocationBacklogResponse {
            pending: i64::try_from(backlog.pending).unwrap_or(i64::MAX),
            oldest: backlog.oldest.map(timestamp::to_proto),
        }))
    }
}
