//! role-mapping-service: the platform's roles and each directory's
//! mappings to them (from groups, nested groups and the SCIM `roles`
//! attribute, single-role by precedence or multi-role by union, with a
//! default) and to the platform's profile fields (typed, from SCIM paths).
//!
//! It owns only its catalog and mappings. Users and memberships stay where
//! they are and are asked for over gRPC (user-service `GetUser` and
//! `ListUsers`, group-service `ListGroupsOfMember`) each time an answer is
//! computed, so answers follow SCIM changes at once and nothing has to be
//! kept in step.

mod entity;
mod error;
mod mapping;
mod membership;
mod migration;
mod profile;
mod service;
mod store;

use idmesh_runtime::auth::ServiceIdentity;
use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::{Error, ROLE_IN_USE};
pub use service::RoleApi;

/// How role-mapping-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Where user-service listens ("host:port" or "http://host:port").
    pub user_addr: String,
    /// Where group-service listens.
    pub group_addr: String,
    /// The service's own key (users:read, groups:read,
    /// apikeys:authenticate) and where callers' keys are resolved.
    pub identity: ServiceIdentity,
}

/// Why role-mapping-service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("role-mapping-service store: {0}")]
    Store(#[from] idmesh_store::StoreError),
    #[error("role-mapping-service gRPC: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
}

/// Connects to the database, applies migrations and serves the gRPC API on
/// `listener` until `shutdown` is cancelled, reporting NOT_SERVING on
/// `grpc.health.v1` while the database does not answer.
///
/// user-service and group-service need not be up yet: calls that need them
/// answer UNAVAILABLE until they are.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let db = idmesh_store::connect(&config.database_url).await?;
    idmesh_store::migrate::<migration::Migrator>(&db).await?;
    let users = config.identity.channel(&config.user_addr)?;
    let groups = config.identity.channel(&config.group_addr)?;
    let auth = config.identity.authenticator()?;
    let readiness = {
        let db = db.clone();
        Readiness::new(move || {
            idmesh_store::record_pool_usage(&db, "role-mapping-service");
            idmesh_store::is_reachable(db.clone())
        })
    };
    let api = RoleApi::new(db, users, groups, idmesh_runtime::clock::system());
    let server = idmesh_runtime::with_message_limits!(
        idmesh_proto::v1::role_mapping_service_server::RoleMappingServiceServer::new(api)
    );
    let routes = tonic::service::Routes::new(server);
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        user_addr = %config.user_addr,
        group_addr = %config.group_addr,
        "role-mapping-service listening"
    );
    idmesh_runtime::grpc::serve_with_readiness(listener, routes, &[RoleApi::SERVICE_NAME], auth, readiness, shutdown)
        .await?;
    Ok(())
}
