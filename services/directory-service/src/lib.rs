//! directory-service: directories (tenants), their bearer tokens, and
//! resolving a token to its directory for the SCIM gateway; API keys, the
//! credentials of every gRPC caller, and resolving them for every service.

mod api_keys;
mod entity;
mod migration;
mod secret;
mod service;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use idmesh_proto::v1::api_key_service_server::ApiKeyServiceServer;
use idmesh_proto::v1::directory_service_server::DirectoryServiceServer;
use idmesh_runtime::auth::Authenticator;
use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use api_keys::{ApiKeyApi, BootstrapKey, MAX_DIRECTORIES, MAX_SCOPES};
pub use service::DirectoryApi;

/// A new API key (`idmk_` and 256 random bits in hex), for a key installed
/// at start.
pub fn generate_api_key() -> Result<String, getrandom::Error> {
    secret::generate_api_key()
}

/// How directory-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Keys installed at start: the bootstrap admin key, the keys of the
    /// services of an `idmesh dev`.
    pub bootstrap_keys: Vec<BootstrapKey>,
    /// How long a resolved caller's key is trusted without looking again:
    /// how long a revoked key may keep working.
    pub key_cache_ttl: Duration,
}

impl Config {
    /// The defaults, storing into `database_url`, installing no key.
    pub fn new(database_url: String) -> Config {
        Config {
            database_url,
            bootstrap_keys: Vec::new(),
            key_cache_ttl: idmesh_runtime::auth::resolve::DEFAULT_CACHE_TTL,
        }
    }
}

/// Why directory-service stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("directory-service store: {0}")]
    Store(#[from] idmesh_store::StoreError),
    #[error("directory-service cannot install its bootstrap API keys: {0}")]
    Install(sea_orm::DbErr),
    #[error("directory-service gRPC: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
}

/// Connects to the database, applies migrations and serves the gRPC API on
/// `listener` until `shutdown` is cancelled, reporting NOT_SERVING on
/// `grpc.health.v1` while the database does not answer.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let db = idmesh_store::connect(&config.database_url).await?;
    idmesh_store::migrate::<migration::Migrator>(&db).await?;
    let readiness = {
        let db = db.clone();
        Readiness::new(move || {
            idmesh_store::record_pool_usage(&db, "directory-service");
            idmesh_store::is_reachable(db.clone())
        })
    };
    let clock = idmesh_runtime::clock::system();
    let keys = ApiKeyApi::new(db.clone(), clock.clone());
    keys.install(&config.bootstrap_keys).await.map_err(Error::Install)?;
    let auth = Authenticator::new(keys.resolver(), config.key_cache_ttl, clock.clone());
    let api = DirectoryApi::new(db.clone(), clock);
    let measuring = shutdown.child_token();
    let outbox = idmesh_outbox::OutboxApi::server(db, api.outbox(), "directory-service", measuring.clone());
    let routes = tonic::service::Routes::new(idmesh_runtime::with_message_limits!(DirectoryServiceServer::new(api)))
        .add_service(idmesh_runtime::with_message_limits!(ApiKeyServiceServer::new(keys)))
        .add_service(outbox);
    tracing::info!(addr = ?listener.local_addr().ok(), "directory-service listening");
    let served = idmesh_runtime::grpc::serve_with_readiness(
        listener,
        routes,
        &[
            DirectoryApi::SERVICE_NAME,
            ApiKeyApi::SERVICE_NAME,
            idmesh_outbox::OutboxApi::SERVICE_NAME,
        ],
        auth,
        readiness,
        shutdown,
    )
    .await;
    // The gauges stop with the server, also when the server failed.
    measuring.cancel();
    served?;
    Ok(())
}
