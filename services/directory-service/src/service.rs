//! The `idmesh.v1.DirectoryService` gRPC API.

use idmesh_api::status::{internal, invalid_argument};
use idmesh_api::timestamp;
use idmesh_outbox::Outbox;
use idmesh_proto::v1::directory_service_server::DirectoryService;
use idmesh_proto::v1::{
    CreateDirectoryRequest, Directory, Event, EventType, GetDirectoryRequest, IssueTokenRequest, IssueTokenResponse,
    ListDirectoriesRequest, ListDirectoriesResponse, ListTokensRequest, ListTokensResponse, RateLimit,
    ResolveTokenRequest, ResolveTokenResponse, RevokeTokenRequest, SetRateLimitRequest, Token,
};
use idmesh_runtime::auth;
use idmesh_runtime::clock::Clock;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use tonic::{Request, Response, Status};

use crate::entity::{directory, token};
use crate::secret;

/// Live tokens a directory may hold at once: enough to rotate without
/// downtime, few enough that forgotten tokens do not pile up.
pub const MAX_LIVE_TOKENS: u64 = 2;

/// The table of directory-service's outbox of events.
pub(crate) const OUTBOX_TABLE: &str = "directory_event_outbox";

/// The directory-service gRPC implementation.
#[derive(Clone)]
pub struct DirectoryApi {
    db: DatabaseConnection,
    clock: Clock,
    /// Where issuing and revoking a token record their events.
    outbox: Outbox,
}

impl std::fmt::Debug for DirectoryApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryApi").finish_non_exhaustive()
    }
}

impl DirectoryApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.DirectoryService";

    pub fn new(db: DatabaseConnection, clock: Clock) -> Self {
        Self {
            db,
            clock,
            outbox: Outbox::new(OUTBOX_TABLE),
        }
    }

    /// The outbox token events are recorded in, for the OutboxService that
    /// events-service drains it through.
    pub(crate) fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    async fn find_directory(&self, id: &str) -> Result<directory::Model, Status> {
        directory::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Status::not_found(format!("directory {id} not found")))
    }
}

/// A database error as a status: momentary trouble is UNAVAILABLE, the
/// rest an opaque INTERNAL.
pub(crate) fn db_error(err: DbErr) -> Status {
    if idmesh_store::is_transient(&err) {
        return idmesh_api::status::unavailable("directory-service", &err);
    }
    internal("directory-service database error", &err)
}

/// The largest rate a directory may be given: far beyond what one gateway
/// serves, small enough for the database's integer column.
const MAX_RATE: u32 = 1_000_000;

/// A rate as its two columns, each between 1 and [`MAX_RATE`].
fn checked_rate(rate: &RateLimit) -> Result<(i32, i32), Status> {
    let column = |value: u32, name: &str| {
        if value == 0 || value > MAX_RATE {
            return Err(invalid_argument(format!(
                "rate_limit.{name} must be between 1 and {MAX_RATE}"
            )));
        }
        i32::try_from(value).map_err(|_| invalid_argument(format!("rate_limit.{name} is too large")))
    };
    Ok((
        column(rate.requests_per_second, "requests_per_second")?,
        column(rate.burst, "burst")?,
    ))
}

fn directory_to_proto(model: directory::Model) -> Directory {
    Directory {
        rate_limit: model.rate_limit(),
        id: model.id,
        created: Some(timestamp::to_proto(model.created)),
        name: model.name,
    }
}

/// TOKEN_ISSUED or TOKEN_REVOKED for `model` as it stands after the change:
/// its metadata, never its secret.
fn token_event(event_type: EventType, model: &token::Model) -> Event {
    let text = |at: time::OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).ok();
    let resource = serde_json::json!({
        "id": model.id,
        "description": model.description,
        "created": text(model.created),
        "expires_at": model.expires_at.and_then(text),
        "revoked_at": model.revoked_at.and_then(text),
    });
    let (version, time) = match event_type {
        EventType::TokenRevoked => (2, model.revoked_at.unwrap_or(model.created)),
        _ => (1, model.created),
    };
    Event {
        directory_id: model.directory_id.clone(),
        time: Some(timestamp::to_proto(time)),
        r#type: event_type.into(),
        resource_type: "Token".to_owned(),
        resource_id: model.id.clone(),
        version,
        resource_json: resource.to_string(),
        ..Event::default()
    }
}

fn token_to_proto(model: token::Model) -> Token {
    Token {
        id: model.id,
        directory_id: model.directory_id,
        description: model.description,
        created: Some(timestamp::to_proto(model.created)),
        expires_at: model.expires_at.map(timestamp::to_proto),
        revoked_at: model.revoked_at.map(timestamp::to_proto),
    }
}

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    async fn create_directory(&self, request: Request<CreateDirectoryRequest>) -> Result<Response<Directory>, Status> {
        let name = request.into_inner().name.trim().to_owned();
        if name.is_empty() {
            return Err(Status::invalid_argument("a directory needs a name"));
        }
        let model = directory::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            name: Set(name),
            created: Set((self.clock)()),
            rate_limit_per_second: Set(None),
            rate_limit_burst: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(db_error)?;
        tracing::info!(directory_id = %model.id, name = %model.name, "directory created");
        Ok(Response::new(directory_to_proto(model)))
    }

    async fn get_directory(&self, request: Request<GetDirectoryRequest>) -> Result<Response<Directory>, Status> {
        auth::authorize(&request)?;
        let model = self.find_directory(&request.into_inner().id).await?;
        Ok(Response::new(directory_to_proto(model)))
    }

    async fn list_directories(
        &self,
        request: Request<ListDirectoriesRequest>,
    ) -> Result<Response<ListDirectoriesResponse>, Status> {
        let mut query = directory::Entity::find();
        if let Some(allowed) = &auth::caller(&request)?.directories {
            query = query.filter(directory::Column::Id.is_in(allowed.iter().cloned()));
        }
        let directories = query
            .order_by_asc(directory::Column::Created)
            .order_by_asc(directory::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(Response::new(ListDirectoriesResponse {
            directories: directories.into_iter().map(directory_to_proto).collect(),
        }))
    }

    async fn issue_token(&self, request: Request<IssueTokenRequest>) -> Result<Response<IssueTokenResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let now = (self.clock)();
        let expires_at = match &request.expires_at {
            None => None,
            Some(ts) => match timestamp::from_proto(ts) {
                Some(at) if at > now => Some(at),
                _ => return Err(Status::invalid_argument("expires_at must be a time in the future")),
            },
        };

        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining())
            .await
            .map_err(db_error)?;
        // Locking the directory row serialises concurrent issues on
        // PostgreSQL; SQLite serialises writers by itself.
        directory::Entity::find_by_id(&request.directory_id)
            .lock_exclusive()
            .one(&txn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Status::not_found(format!("directory {} not found", request.directory_id)))?;
        let live = token::Entity::find()
            .filter(token::Column::DirectoryId.eq(&request.directory_id))
            .filter(token::Column::RevokedAt.is_null())
            .filter(token::Column::ExpiresAt.is_null().or(token::Column::ExpiresAt.gt(now)))
            .count(&txn)
            .await
            .map_err(db_error)?;
        if live >= MAX_LIVE_TOKENS {
            return Err(Status::failed_precondition(format!(
                "directory {} already has {MAX_LIVE_TOKENS} live tokens; revoke one first",
                request.directory_id
            )));
        }
        let secret = secret::generate().map_err(|err| internal("no randomness for a token", &err))?;
        let model = token::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            directory_id: Set(request.directory_id),
            secret_hash: Set(secret::hash(&secret)),
            description: Set(request.description),
            created: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(db_error)?;
        self.outbox
            .record(&txn, vec![token_event(EventType::TokenIssued, &model)])
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.outbox.written();
        tracing::info!(directory_id = %model.directory_id, token_id = %model.id, "token issued");
        Ok(Response::new(IssueTokenResponse {
            token: Some(token_to_proto(model)),
            secret,
        }))
    }

    async fn revoke_token(&self, request: Request<RevokeTokenRequest>) -> Result<Response<Token>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let txn = idmesh_store::begin_write(&self.db, idmesh_runtime::deadline::remaining())
            .await
            .map_err(db_error)?;
        let model = token::Entity::find_by_id(&request.token_id)
            .filter(token::Column::DirectoryId.eq(&request.directory_id))
            .lock_exclusive()
            .one(&txn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "token {} not found in directory {}",
                    request.token_id, request.directory_id
                ))
            })?;
        if model.revoked_at.is_some() {
            return Ok(Response::new(token_to_proto(model)));
        }
        let mut active = model.into_active_model();
        active.revoked_at = Set(Some((self.clock)()));
        let model = active.update(&txn).await.map_err(db_error)?;
        self.outbox
            .record(&txn, vec![token_event(EventType::TokenRevoked, &model)])
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.outbox.written();
        tracing::info!(directory_id = %model.directory_id, token_id = %model.id, "token revoked");
        Ok(Response::new(token_to_proto(model)))
    }

    async fn list_tokens(&self, request: Request<ListTokensRequest>) -> Result<Response<ListTokensResponse>, Status> {
        auth::authorize(&request)?;
        let directory_id = request.into_inner().directory_id;
        self.find_directory(&directory_id).await?;
        let tokens = token::Entity::find()
            .filter(token::Column::DirectoryId.eq(directory_id))
            .order_by_asc(token::Column::Created)
            .order_by_asc(token::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(Response::new(ListTokensResponse {
            tokens: tokens.into_iter().map(token_to_proto).collect(),
        }))
    }

    async fn resolve_token(
        &self,
        request: Request<ResolveTokenRequest>,
    ) -> Result<Response<ResolveTokenResponse>, Status> {
        let hash = secret::hash(&request.into_inner().secret);
        let model = token::Entity::find()
            .filter(token::Column::SecretHash.eq(hash))
            .one(&self.db)
            .await
            .map_err(db_error)?
            .filter(|model| model.is_live((self.clock)()))
            .ok_or_else(|| Status::not_found("unknown, revoked or expired token"))?;
        let directory = self.find_directory(&model.directory_id).await?;
        Ok(Response::new(ResolveTokenResponse {
            directory_id: model.directory_id,
            token_id: model.id,
            rate_limit: directory.rate_limit(),
        }))
    }

    async fn set_rate_limit(&self, request: Request<SetRateLimitRequest>) -> Result<Response<Directory>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let rate = match request.rate_limit {
            Some(rate) => Some(checked_rate(&rate)?),
            None => None,
        };
        let mut directory: directory::ActiveModel = self.find_directory(&request.directory_id).await?.into();
        directory.rate_limit_per_second = Set(rate.map(|(per_second, _)| per_second));
        directory.rate_limit_burst = Set(rate.map(|(_, burst)| burst));
        let model = directory.update(&self.db).await.map_err(db_error)?;
        tracing::info!(directory_id = %model.id, rate = ?model.rate_limit(), "directory rate limit set");
        Ok(Response::new(directory_to_proto(model)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use idmesh_testkit::{Backend, ScratchDatabase};
    use time::{Duration, OffsetDateTime};

    use super::*;

    /// A directory-service on a fresh SQLite file, with a clock the test moves.
    async fn api_with_clock() -> (DirectoryApi, Arc<Mutex<OffsetDateTime>>, ScratchDatabase) {
        let database = ScratchDatabase::new(Backend::Sqlite);
        let db = idmesh_store::connect(database.url()).await.expect("SQLite opens");
        idmesh_store::migrate::<crate::migration::Migrator>(&db)
            .await
            .expect("migrations apply");
        let now = Arc::new(Mutex::new(time::macros::datetime!(2026-06-01 09:00 UTC)));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || *clock_now.lock().expect("clock lock"));
        (DirectoryApi::new(db, clock), now, database)
    }

    /// A request from a key with every scope, limited to no directory.
    fn as_admin<T>(message: T) -> Request<T> {
        auth::with_caller(
            Request::new(message),
            auth::Principal::with_every_scope("admin", "admin"),
        )
    }

    async fn issue(
        api: &DirectoryApi,
        directory_id: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<String, Status> {
        let request = IssueTokenRequest {
            directory_id: directory_id.to_owned(),
            description: String::new(),
            expires_at: expires_at.map(timestamp::to_proto),
        };
        Ok(api.issue_token(as_admin(request)).await?.into_inner().secret)
    }

    async fn create_directory(api: &DirectoryApi) -> Directory {
        let request = CreateDirectoryRequest {
            name: "Acme".to_owned(),
        };
        api.create_directory(as_admin(request))
            .await
            .expect("CreateDirectory")
            .into_inner()
    }

    #[tokio::test]
    async fn an_expired_token_stops_resolving_and_frees_its_slot() {
        let (api, now, _dir) = api_with_clock().await;
        let directory = create_directory(&api).await;
        let start = *now.lock().expect("clock lock");
        let short_lived = issue(&api, &directory.id, Some(start + Duration::hours(1)))
            .await
            .expect("a token");
        issue(&api, &directory.id, None).await.expect("a second token");
        let resolve = |secret: &str| {
            api.resolve_token(Request::new(ResolveTokenRequest {
                secret: secret.to_owned(),
            }))
        };

        let resolved = resolve(&short_lived).await.expect("a live token resolves").into_inner();
        assert_eq!(resolved.directory_id, directory.id);
        assert_eq!(
            issue(&api, &directory.id, None)
                .await
                .expect_err("two live tokens already")
                .code(),
            tonic::Code::FailedPrecondition
        );

        *now.lock().expect("clock lock") = start + Duration::hours(2);
        let expired = resolve(&short_lived)
            .await
            .expect_err("an expired token does not resolve");
        assert_eq!(expired.code(), tonic::Code::NotFound);
        issue(&api, &directory.id, None)
            .await
            .expect("the expired token no longer counts");
    }

    #[tokio::test]
    async fn expiry_must_be_in_the_future() {
        let (api, now, _dir) = api_with_clock().await;
        let directory = create_directory(&api).await;
        let past = *now.lock().expect("clock lock") - Duration::minutes(1);
        let err = issue(&api, &directory.id, Some(past))
            .await
            .expect_err("expiry in the past");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn tokens_of_unknown_directories_are_refused() {
        let (api, _now, _dir) = api_with_clock().await;
        let err = issue(&api, "no-such-directory", None).await.expect_err("no directory");
        assert_eq!(err.code(), tonic::Code::NotFound);
    }
}
