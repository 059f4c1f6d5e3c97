//! role-mapping-service: the platform's roles and each directory's
//! mappings to them (from groups, nested groups and the SCIM `roles`
//! attribute, single-role by precedence or multi-role by union, with a
//! default) and to the platform's profile fields (typed, from SCIM paths).
//!
//! It owns only its catalog and mappings. Users and memberships stay where
//! they are and are asked for over gRPC (user-service `GetUser` and
//! `ListUsers`, group-service `ListGroupsOfMember`) each time an answer is
//! computed, so answers follow SCIM changes at once and nothing has to be
//! kept in step. A caller that accepts an answer up to a minute old says
//! so and is answered from memory ([`recent`]). Beside the answers, the
//! [`follow`]er turns changes of users' roles into events of the change
//! stream and, where a mapping asks for it, into session revocations.

mod entity;
mod error;
mod follow;
mod mapping;
mod membership;
mod migration;
mod profile;
mod recent;
mod service;
mod store;

use idmesh_proto::v1::event_service_client::EventServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
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
    /// Where session-service listens: a user who loses a role loses their
    /// sessions there when the directory's mapping says so.
    pub session_addr: String,
    /// Where events-service listens: the change log that role changes are
    /// decided from. None: no role events and no revocations on role
    /// removal (answers are unaffected).
    pub event_addr: Option<String>,
    /// The service's own key (users:read, groups:read, events:read,
    /// sessions:write, apikeys:authenticate) and where callers' keys are
    /// resolved.
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

/// Connects to the database, applies migrations, follows the change log of
/// each directory with a role mapping (with an `event_addr`) and serves
/// the gRPC API, and the outbox of role events, on `listener` until
/// `shutdown` is cancelled, reporting NOT_SERVING on `grpc.health.v1`
/// while the database does not answer.
///
/// The services it calls need not be up yet: calls that need them answer
/// UNAVAILABLE, and the follower retries, until they are.
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
    let clock = idmesh_runtime::clock::system();
    let api = RoleApi::new(db.clone(), users, groups, clock.clone());
    let outbox = idmesh_outbox::Outbox::new(follow::OUTBOX_TABLE);
    let background = shutdown.child_token();
    if let Some(event_addr) = &config.event_addr {
        let follower = follow::Follower {
            db: db.clone(),
            api: api.clone(),
            events: idmesh_runtime::with_message_limits!(EventServiceClient::new(config.identity.channel(event_addr)?)),
            sessions: idmesh_runtime::with_message_limits!(SessionServiceClient::new(
                config.identity.channel(&config.session_addr)?
            )),
            outbox: outbox.clone(),
            clock,
        };
        tokio::spawn(follow::run(follower, background.clone()));
    }
    let server = idmesh_runtime::with_message_limits!(
        idmesh_proto::v1::role_mapping_service_server::RoleMappingServiceServer::new(api)
    );
    let outbox_server = idmesh_outbox::OutboxApi::server(db, outbox, "role-mapping-service", background.clone());
    let routes = tonic::service::Routes::new(server).add_service(outbox_server);
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        user_addr = %config.user_addr,
        group_addr = %config.group_addr,
        event_addr = config.event_addr.as_deref().unwrap_or("none: no role events"),
        "role-mapping-service listening"
    );
    let served = idmesh_runtime::grpc::serve_with_readiness(
        listener,
        routes,
        &[RoleApi::SERVICE_NAME, idmesh_outbox::OutboxApi::SERVICE_NAME],
        auth,
        readiness,
        shutdown,
    )
    .await;
    background.cancel();
    served?;
    Ok(())
}
