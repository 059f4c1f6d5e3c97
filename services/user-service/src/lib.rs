//! user-service: the users of each directory, stored as validated SCIM
//! documents with the attributes that are queried or constrained (userName,
//! externalId, active, displayName) in columns of their own.

mod entity;
mod error;
mod migration;
mod password;
#[cfg(test)]
mod pushdown_tests;
mod service;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use service::UserApi;

/// How user-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
}

/// Why user-service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("user-service store: {0}")]
    Store(#[from] idmesh_store::StoreError),
    #[error("user-service gRPC: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
}

/// Connects to the database, applies migrations and serves the gRPC API on
/// `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let db = idmesh_store::connect(&config.database_url).await?;
    idmesh_store::migrate::<migration::Migrator>(&db).await?;
    let api = UserApi::new(db, idmesh_runtime::clock::system());
    let server = idmesh_proto::v1::user_service_server::UserServiceServer::new(api);
    let routes = tonic::service::Routes::new(server);
    tracing::info!(addr = ?listener.local_addr().ok(), "user-service listening");
    idmesh_runtime::grpc::serve(listener, routes, &[UserApi::SERVICE_NAME], shutdown).await?;
    Ok(())
}
