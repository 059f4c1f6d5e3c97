//! directory-service: directories (tenants), their bearer tokens, and
//! resolving a token to its directory for the SCIM gateway.

mod entity;
mod migration;
mod secret;
mod service;

use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use service::DirectoryApi;

/// How directory-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
}

/// Why directory-service stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("directory-service store: {0}")]
    Store(#[from] idmesh_store::StoreError),
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
        Readiness::new(move || idmesh_store::is_reachable(db.clone()))
    };
    let api = DirectoryApi::new(db, idmesh_runtime::clock::system());
    let server = idmesh_proto::v1::directory_service_server::DirectoryServiceServer::new(api);
    let routes = tonic::service::Routes::new(server);
    tracing::info!(addr = ?listener.local_addr().ok(), "directory-service listening");
    idmesh_runtime::grpc::serve_with_readiness(listener, routes, &[DirectoryApi::SERVICE_NAME], readiness, shutdown)
        .await?;
    Ok(())
}
