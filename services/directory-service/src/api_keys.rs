//! The `idmesh.v1.ApiKeyService` gRPC API: the keys gRPC callers present,
//! their resolution for every service's auth layer, and the keys installed
//! at start (a bootstrap admin key, `idmesh dev`'s own services).

use std::collections::BTreeSet;

use idmesh_api::status::{internal, invalid_argument, not_found};
use idmesh_api::timestamp;
use idmesh_proto::v1::api_key_service_server::ApiKeyService;
use idmesh_proto::v1::{
    ApiKey, AuthenticateApiKeyRequest, AuthenticateApiKeyResponse, CreateApiKeyRequest, CreateApiKeyResponse,
    ListApiKeysRequest, ListApiKeysResponse, RevokeApiKeyRequest,
};
use idmesh_runtime::auth::resolve::{Resolution, principal_from_proto};
use idmesh_runtime::auth::{ResolveKey, Scope};
use idmesh_runtime::clock::Clock;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};
use tonic::{Request, Response, Status};

use crate::entity::{api_key, directory};
use crate::secret;
use crate::service::db_error;

/// Most scopes one key may carry (there are fewer scopes than that).
pub const MAX_SCOPES: usize = 32;
/// Most directories one key may be limited to.
pub const MAX_DIRECTORIES: usize = 64;
/// Longest key name, in bytes.
const MAX_NAME_LEN: usize = 200;

/// A key installed at start, upserted by its hash: the bootstrap admin key
/// of `idmesh serve`, the keys `idmesh dev` gives its own services. Other
/// live keys of the same name are revoked, so replacing the secret rotates
/// the key.
#[derive(Clone)]
pub struct BootstrapKey {
    pub name: String,
    pub secret: String,
    pub scopes: Vec<Scope>,
}

impl std::fmt::Debug for BootstrapKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The ApiKeyService implementation.
#[derive(Clone)]
pub struct ApiKeyApi {
    db: DatabaseConnection,
    clock: Clock,
}

impl std::fmt::Debug for ApiKeyApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyApi").finish_non_exhaustive()
    }
}

fn split(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_owned).collect()
}

fn to_proto(model: api_key::Model) -> ApiKey {
    ApiKey {
        id: model.id,
        name: model.name,
        scopes: split(&model.scopes),
        directory_ids: split(&model.directory_ids),
        created: Some(timestamp::to_proto(model.created)),
        expires_at: model.expires_at.map(timestamp::to_proto),
        revoked_at: model.revoked_at.map(timestamp::to_proto),
    }
}

fn scope_list(scopes: impl IntoIterator<Item = Scope>) -> String {
    let scopes: BTreeSet<Scope> = scopes.into_iter().collect();
    scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>().join(" ")
}

impl ApiKeyApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.ApiKeyService";

    pub fn new(db: DatabaseConnection, clock: Clock) -> Self {
        Self { db, clock }
    }

    /// Installs `keys`; see [`BootstrapKey`].
    pub async fn install(&self, keys: &[BootstrapKey]) -> Result<(), DbErr> {
        let now = (self.clock)();
        for key in keys {
            let hash = secret::hash(&key.secret);
            let existing = api_key::Entity::find()
                .filter(api_key::Column::SecretHash.eq(&hash))
                .one(&self.db)
                .await?;
            let model = match existing {
                Some(model) => {
                    let mut active = model.into_active_model();
                    active.name = Set(key.name.clone());
                    active.scopes = Set(scope_list(key.scopes.iter().copied()));
                    active.directory_ids = Set(String::new());
                    active.expires_at = Set(None);
                    active.revoked_at = Set(None);
                    active.update(&self.db).await?
                }
                None => {
                    api_key::ActiveModel {
                        id: Set(uuid::Uuid::now_v7().to_string()),
                        name: Set(key.name.clone()),
                        secret_hash: Set(hash.clone()),
                        scopes: Set(scope_list(key.scopes.iter().copied())),
                        directory_ids: Set(String::new()),
                        created: Set(now),
                        expires_at: Set(None),
                        revoked_at: Set(None),
                    }
                    .insert(&self.db)
                    .await?
                }
            };
            let replaced = api_key::Entity::update_many()
                .col_expr(api_key::Column::RevokedAt, now.into())
                .filter(api_key::Column::Name.eq(&key.name))
                .filter(api_key::Column::SecretHash.ne(&hash))
                .filter(api_key::Column::RevokedAt.is_null())
                .exec(&self.db)
                .await?;
            tracing::info!(key_id = %model.id, key_name = %model.name, replaced = replaced.rows_affected, "API key installed");
        }
        Ok(())
    }

    /// Resolves keys from this service's database: how directory-service
    /// authenticates its own callers.
    pub fn resolver(&self) -> LocalKeys {
        LocalKeys { api: self.clone() }
    }

    async fn find_live(&self, secret: &str) -> Result<Option<api_key::Model>, DbErr> {
        let now = (self.clock)();
        Ok(api_key::Entity::find()
            .filter(api_key::Column::SecretHash.eq(secret::hash(secret)))
            .one(&self.db)
            .await?
            .filter(|model| model.is_live(now)))
    }

    async fn validate_directories(&self, ids: Vec<String>) -> Result<BTreeSet<String>, Status> {
        if ids.len() > MAX_DIRECTORIES {
            return Err(invalid_argument(format!(
                "a key may be limited to at most {MAX_DIRECTORIES} directories"
            )));
        }
        let wanted: BTreeSet<String> = ids.into_iter().collect();
        if wanted.is_empty() {
            return Ok(wanted);
        }
        let found = directory::Entity::find()
            .filter(directory::Column::Id.is_in(wanted.iter().cloned()))
            .count(&self.db)
            .await
            .map_err(db_error)?;
        if found != wanted.len() as u64 {
            for id in &wanted {
                if directory::Entity::find_by_id(id)
                    .one(&self.db)
                    .await
                    .map_err(db_error)?
                    .is_none()
                {
                    return Err(invalid_argument(format!("directory {id:?} does not exist")));
                }
            }
        }
        Ok(wanted)
    }
}

#[tonic::async_trait]
impl ApiKeyService for ApiKeyApi {
    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let request = request.into_inner();
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid_argument(format!(
                "a key needs a name of 1 to {MAX_NAME_LEN} bytes"
            )));
        }
        if request.scopes.is_empty() || request.scopes.len() > MAX_SCOPES {
            return Err(invalid_argument(format!("a key needs 1 to {MAX_SCOPES} scopes")));
        }
        let scopes = request
            .scopes
            .iter()
            .map(|name| Scope::parse(name).ok_or_else(|| invalid_argument(format!("unknown scope {name:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let directories = self.validate_directories(request.directory_ids).await?;
        let now = (self.clock)();
        let expires_at = match &request.expires_at {
            None => None,
            Some(ts) => match timestamp::from_proto(ts) {
                Some(at) if at > now => Some(at),
                _ => return Err(invalid_argument("expires_at must be a time in the future")),
            },
        };
        let secret = secret::generate_api_key().map_err(|err| internal("no randomness for an API key", &err))?;
        let model = api_key::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            name: Set(name),
            secret_hash: Set(secret::hash(&secret)),
            scopes: Set(scope_list(scopes)),
            directory_ids: Set(directories.into_iter().collect::<Vec<_>>().join(" ")),
            created: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(db_error)?;
        tracing::info!(key_id = %model.id, key_name = %model.name, scopes = %model.scopes, "API key created");
        Ok(Response::new(CreateApiKeyResponse {
            api_key: Some(to_proto(model)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        _request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let keys = api_key::Entity::find()
            .order_by_asc(api_key::Column::Created)
            .order_by_asc(api_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(Response::new(ListApiKeysResponse {
            api_keys: keys.into_iter().map(to_proto).collect(),
        }))
    }

    async fn revoke_api_key(&self, request: Request<RevokeApiKeyRequest>) -> Result<Response<ApiKey>, Status> {
        let id = request.into_inner().id;
        let model = api_key::Entity::find_by_id(&id)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| not_found(format!("API key {id} not found")))?;
        if model.revoked_at.is_some() {
            return Ok(Response::new(to_proto(model)));
        }
        let mut active = model.into_active_model();
        active.revoked_at = Set(Some((self.clock)()));
        let model = active.update(&self.db).await.map_err(db_error)?;
        tracing::info!(key_id = %model.id, key_name = %model.name, "API key revoked");
        Ok(Response::new(to_proto(model)))
    }

    async fn authenticate_api_key(
        &self,
        request: Request<AuthenticateApiKeyRequest>,
    ) -> Result<Response<AuthenticateApiKeyResponse>, Status> {
        let model = self
            .find_live(&request.into_inner().secret)
            .await
            .map_err(db_error)?
            .ok_or_else(|| not_found("unknown, revoked or expired API key"))?;
        Ok(Response::new(AuthenticateApiKeyResponse {
            api_key: Some(to_proto(model)),
        }))
    }
}

/// Keys resolved from directory-service's own database.
#[derive(Debug)]
pub struct LocalKeys {
    api: ApiKeyApi,
}

impl ResolveKey for LocalKeys {
    fn resolve(&self, secret: &str) -> Resolution {
        let (api, secret) = (self.api.clone(), secret.to_owned());
        Box::pin(async move {
            match api.find_live(&secret).await {
                Ok(model) => Ok(model.map(|model| principal_from_proto(to_proto(model)))),
                Err(err) => {
                    tracing::warn!(%err, "cannot resolve an API key");
                    Err(Status::unavailable("cannot check the caller's API key; retry later"))
                }
            }
        })
    }
}
