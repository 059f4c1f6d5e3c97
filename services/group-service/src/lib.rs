//! group-service: the groups of each directory and their members. A group
//! is a validated SCIM document (without members) plus the columns that
//! are queried or constrained (displayName, externalId); its members are
//! rows of their own, so that adding or removing members costs what is
//! changed whatever the group's size, and reading a group never reads its
//! members.
//!
//! Member ids are checked before anything is written: groups against this
//! service's own table, users by asking user-service (`LookupUsers`),
//! since no service reads another's tables.

mod entity;
mod error;
mod events;
mod filter;
mod lookup;
mod members;
mod migration;
mod service;
#[cfg(test)]
mod service_tests;

use idmesh_runtime::auth::ServiceIdentity;
use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use service::GroupApi;

/// How group-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Where user-service listens ("host:port" or "http://host:port"):
    /// new members that are not groups are looked up there.
    pub user_addr: String,
    /// group-service's own key (users:read, apikeys:authenticate) and where
    /// callers' keys are resolved.
    pub identity: ServiceIdentity,
    /// What one request may ask: document size and depth, PATCH
    /// operations, members named.
    pub limits: scim::Limits,
}

/// Why group-service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("group-service store: {0}")]
    Store(#[from] idmesh_store::StoreError),
    #[error("group-service gRPC: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
}

/// Connects to the database, applies migrations and serves the gRPC API on
/// `listener` until `shutdown` is cancelled, reporting NOT_SERVING on
/// `grpc.health.v1` while the database does not answer.
///
/// user-service need not be up yet: adding a user as a member waits for it
/// (and answers UNAVAILABLE while it is down).
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let db = idmesh_store::connect(&config.database_url).await?;
    idmesh_store::migrate::<migration::Migrator>(&db).await?;
    let users = config.identity.channel(&config.user_addr)?;
    let auth = config.identity.authenticator()?;
    let readiness = {
        let db = db.clone();
        Readiness::new(move || {
            idmesh_store::record_pool_usage(&db, "group-service");
            idmesh_store::is_reachable(db.clone())
        })
    };
    let plan_cached = idmesh_store::connect_plan_cached(&config.database_url, &db).await?;
    let api = GroupApi::new(db.clone(), users, idmesh_runtime::clock::system())
        .with_limits(config.limits)
        .with_plan_cached(plan_cached);
    let measuring = shutdown.child_token();
    let outbox = idmesh_outbox::OutboxApi::server(db, api.outbox(), "group-service", measuring.clone());
    let server =
        idmesh_runtime::with_message_limits!(idmesh_proto::v1::group_service_server::GroupServiceServer::new(api));
    let routes = tonic::service::Routes::new(server).add_service(outbox);
    tracing::info!(addr = ?listener.local_addr().ok(), user_addr = %config.user_addr, "group-service listening");
    let served = idmesh_runtime::grpc::serve_with_readiness(
        listener,
        routes,
        &[GroupApi::SERVICE_NAME, idmesh_outbox::OutboxApi::SERVICE_NAME],
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
