//! events-service: each directory's ordered change log.
//!
//! user-service, group-service and directory-service write an event into
//! their outbox in the same transaction as each change, and
//! role-mapping-service one for each change of a user's roles; this service
//! drains the outboxes ([`drain`], which also explains why the order holds),
//! numbers each directory's events 1, 2, 3, … with no gap ([`log`]), keeps
//! them for the retention period, serves them as `ListEvents` and
//! `WatchEvents`, and delivers them to [`webhooks`].

mod drain;
mod entity;
mod log;
mod migration;
mod service;
mod webhooks;

use std::time::Duration;

use idmesh_proto::v1::outbox_service_client::OutboxServiceClient;
use idmesh_runtime::auth::ServiceIdentity;
use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use service::{CURSOR_EXPIRED, EventApi, INVALID_CURSOR};
pub use webhooks::DEFAULT_RETRY_WINDOW as DEFAULT_WEBHOOK_RETRY_WINDOW;
pub use webhooks::api::WebhookApi;

/// How long events are kept unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long a watch stays silent before a heartbeat, unless configured
/// otherwise.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// How long a stopping events-service waits for its webhook deliveries to
/// give their cursors back.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How events-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Where user-service listens ("host:port" or "http://host:port").
    pub user_addr: String,
    /// Where group-service listens.
    pub group_addr: String,
    /// Where role-mapping-service listens; none: no role events.
    pub role_addr: Option<String>,
    /// The service's own key (events:drain, apikeys:authenticate) and where
    /// callers' keys are resolved.
    pub identity: ServiceIdentity,
    /// How long events are kept.
    pub retention: Duration,
    /// How long a watch stays silent before a heartbeat.
    pub heartbeat: Duration,
    /// How long a webhook delivery is retried before its endpoint is
    /// disabled.
    pub webhook_retry_window: Duration,
    /// Whether webhook endpoints may be on private networks (loopback,
    /// RFC 1918, link-local, …); otherwise only public addresses.
    pub webhook_allow_private_networks: bool,
}

/// Why events-service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("events-service store: {0}")]
    Store(#[from] idmesh_store::StoreError),
    #[error("events-service gRPC: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
    #[error("events-service webhook TLS configuration: {0}")]
    WebhookTls(#[from] rustls::Error),
}

/// Connects to the database, applies migrations, drains the outboxes of
/// user-service, group-service, directory-service and (with a `role_addr`)
/// role-mapping-service into the log, delivers
/// it to the webhooks, removes events (and delivery attempts) older than
/// the retention period, and serves the gRPC API on `listener` until
/// `shutdown` is cancelled.
///
/// user-, group- and directory-service need not be up yet: draining retries
/// until they are.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let db = idmesh_store::connect(&config.database_url).await?;
    idmesh_store::migrate::<migration::Migrator>(&db).await?;
    let auth = config.identity.authenticator()?;
    let log = log::Log::new(db.clone());
    let source = |name: &'static str, addr: &str| -> Result<drain::Source, ServeError> {
        Ok(drain::Source {
            name,
            client: OutboxServiceClient::new(config.identity.channel(addr)?),
        })
    };
    let sources = drain::Sources {
        users: source("user-service", &config.user_addr)?,
        groups: source("group-service", &config.group_addr)?,
        tokens: source("directory-service", &config.identity.directory_addr)?,
    };
    let store = webhooks::store::Store::new(db.clone());
    let deliverer = webhooks::deliver::Deliverer {
        store: store.clone(),
        log: log.clone(),
        client: webhooks::deliver::client(config.webhook_allow_private_networks)?,
        retry_window: config.webhook_retry_window,
        allow_private_networks: config.webhook_allow_private_networks,
    };
    let background = shutdown.child_token();
    tokio::spawn(drain::run(log.clone(), sources, background.clone()));
    if let Some(role_addr) = &config.role_addr {
        let roles = source("role-mapping-service", role_addr)?;
        tokio::spawn(drain::run_independent(log.clone(), roles, background.clone()));
    }
    let delivering = tokio::spawn(webhooks::deliver::run(deliverer, background.clone()));
    tokio::spawn(retain(log.clone(), store.clone(), config.retention, background.clone()));

    let readiness = {
        let db = db.clone();
        Readiness::new(move || {
            idmesh_store::record_pool_usage(&db, "events-service");
            idmesh_store::is_reachable(db.clone())
        })
    };
    let api = EventApi::new(log.clone(), config.heartbeat, shutdown.clone());
    let server =
        idmesh_runtime::with_message_limits!(idmesh_proto::v1::event_service_server::EventServiceServer::new(api));
    let webhook_server =
        idmesh_runtime::with_message_limits!(idmesh_proto::v1::webhook_service_server::WebhookServiceServer::new(
            WebhookApi::new(store, log, config.webhook_allow_private_networks)
        ));
    let routes = tonic::service::Routes::new(server).add_service(webhook_server);
    tracing::info!(
        addr = ?listener.local_addr().ok(),
        user_addr = %config.user_addr,
        group_addr = %config.group_addr,
        role_addr = config.role_addr.as_deref().unwrap_or("none: no role events"),
        retention = ?config.retention,
        "events-service listening"
    );
    let served = idmesh_runtime::grpc::serve_with_readiness(
        listener,
        routes,
        &[EventApi::SERVICE_NAME, WebhookApi::SERVICE_NAME],
        auth,
        readiness,
        shutdown,
    )
    .await;
    background.cancel();
    // Deliveries under way give their cursors back (a database write
    // each); a database that does not answer is not waited for long.
    if tokio::time::timeout(SHUTDOWN_GRACE, delivering).await.is_err() {
        tracing::warn!(
            "webhook deliveries did not stop within {SHUTDOWN_GRACE:?}; their cursors free up when their leases end"
        );
    }
    served?;
    Ok(())
}

/// Removes events and delivery attempts older than `retention`, looking a
/// few times per retention period and at least once a minute.
async fn retain(log: log::Log, webhooks: webhooks::store::Store, retention: Duration, shutdown: CancellationToken) {
    let every = (retention / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        let now = time::OffsetDateTime::now_utc();
        let horizon = now - retention;
        let cutoff_ms = i64::try_from(horizon.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        match log.prune(cutoff_ms).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "events older than the retention period removed"),
            Err(err) => tracing::warn!(error = %err, "could not remove old events; will try again"),
        }
        if let Err(err) = webhooks.prune_attempts(cutoff_ms).await {
            tracing::warn!(error = %err, "could not remove old webhook attempts; will try again");
        }
    }
}
