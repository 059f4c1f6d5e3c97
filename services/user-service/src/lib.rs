//! user-service: the users of each directory, stored as validated SCIM
//! documents with the attributes that are queried or constrained (userName,
//! externalId, active, displayName) in columns of their own.
//!
//! Deactivating or deleting a user revokes the user's sessions through
//! session-service, and never loses that revocation: it is stored with the
//! user change and retried until session-service confirms it. Deleting a
//! user removes it from every group through group-service, stored and
//! retried the same way.

mod entity;
mod error;
mod migration;
mod password;
#[cfg(test)]
mod pushdown_tests;
mod revocation;
#[cfg(test)]
mod revocation_tests;
mod service;
mod stored;

use idmesh_runtime::auth::ServiceIdentity;
use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::Error;
use revocation::Revocations;
use service::UserApi;

/// How user-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Where session-service listens ("host:port" or "http://host:port"):
    /// deactivating or deleting a user revokes their sessions there.
    pub session_addr: String,
    /// Where group-service listens: deleting a user removes it from every
    /// group there.
    pub group_addr: String,
    /// user-service's own key (sessions:write, groups:write,
    /// apikeys:authenticate) and where callers' keys are resolved.
    pub identity: ServiceIdentity,
    /// What one request may ask: document size and depth, PATCH
    /// operations, values per attribute.
    pub limits: scim::Limits,
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
/// `listener` until `shutdown` is cancelled, delivering stored session
/// revocations meanwhile. `grpc.health.v1` reports NOT_SERVING while the
/// database does not answer.
///
/// session-service need not be up yet: revocations wait for it.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let db = idmesh_store::connect(&config.database_url).await?;
    idmesh_store::migrate::<migration::Migrator>(&db).await?;
    let clock = idmesh_runtime::clock::system();
    let sessions = config.identity.channel(&config.session_addr)?;
    let groups = config.identity.channel(&config.group_addr)?;
    let auth = config.identity.authenticator()?;
    let revocations = Revocations::new(db.clone(), sessions, groups, clock.clone());
    let stop_delivering = shutdown.child_token();
    let deliverer = tokio::spawn(revocations.clone().run(stop_delivering.clone()));
    let readiness = {
        let db = db.clone();
        Readiness::new(move || {
            idmesh_store::record_pool_usage(&db, "user-service");
            idmesh_store::is_reachable(db.clone())
        })
    };
    let plan_cached = idmesh_store::connect_plan_cached(&config.database_url, &db).await?;
    let api = UserApi::new(db.clone(), clock, revocations)
        .with_limits(config.limits)
        .with_plan_cached(plan_cached);
    let outbox = idmesh_outbox::OutboxApi::server(db, api.outbox(), "user-service", stop_delivering.clone());
    let server =
        idmesh_runtime::with_message_limits!(idmesh_proto::v1::user_service_server::UserServiceServer::new(api));
    let routes = tonic::service::Routes::new(server).add_service(outbox);
    tracing::info!(addr = ?listener.local_addr().ok(), session_addr = %config.session_addr, group_addr = %config.group_addr, "user-service listening");
    let served = idmesh_runtime::grpc::serve_with_readiness(
        listener,
        routes,
        &[UserApi::SERVICE_NAME, idmesh_outbox::OutboxApi::SERVICE_NAME],
        auth,
        readiness,
        shutdown,
    )
    .await;
    // The deliverer stops with the server, also when the server failed.
    stop_delivering.cancel();
    if let Err(err) = deliverer.await {
        tracing::error!(error = %err, "the session revocation deliverer panicked");
    }
    served?;
    Ok(())
}
