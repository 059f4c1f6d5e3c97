//! session-service: sessions of directory users, their revocation, and a
//! watch stream that tells internal services the moment a user or a session
//! is revoked.
//!
//! Sessions live in Redis (one node or a cluster) so that every replica
//! sees every revocation; without a Redis URL they live in the process, for
//! `idmesh dev` and other single-process installs.

mod model;
mod service;
mod store;

use std::sync::Arc;

use idmesh_runtime::auth::ServiceIdentity;
use idmesh_runtime::clock::Clock;
use idmesh_runtime::grpc::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use service::SessionApi;
use store::SessionStore;
use store::memory::MemoryStore;
use store::redis::RedisStore;

/// The key prefix used unless configured otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "idmesh";
/// About how many revocations the log keeps for watchers to resume from.
pub const DEFAULT_REVOCATION_LOG_LEN: usize = 100_000;
pub use model::DEFAULT_MAX_SESSIONS_PER_USER;
/// Counter: sessions evicted because their user reached the session limit
/// (Prometheus, when the process serves metrics).
pub const EVICTIONS_METRIC: &str = "idmesh_session_evictions_total";
/// Gauge: 1 while the session store (Redis, or the in-process store, which
/// always answers) answers the readiness check, 0 while it does not.
pub const STORE_UP_METRIC: &str = "idmesh_session_store_up";

/// How long the readiness check waits for the store: less than the check's
/// own bound, so that a Redis that hangs is recorded as down before the
/// check gives up on it.
const STORE_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// How session-service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `redis://host:port` for one Redis node, or
    /// `redis+cluster://host:port,host:port,…` for a Redis Cluster (the
    /// nodes are seeds: the rest of the cluster is discovered). `None` keeps
    /// sessions in this process only.
    pub redis_url: Option<String>,
    /// Prepended to every Redis key, so that several installs (or test
    /// runs) can share one Redis.
    pub key_prefix: String,
    /// About how many revocations the log keeps; a watcher away for longer
    /// than that many revocations must resynchronise.
    pub revocation_log_len: usize,
    /// How many live sessions one user may have. Creating one more evicts
    /// (revokes, with the reason "session limit reached") the user's
    /// sessions that expire first; at least 1.
    pub max_sessions_per_user: usize,
    /// session-service's own key (apikeys:authenticate) and where callers'
    /// keys are resolved.
    pub identity: ServiceIdentity,
}

impl Config {
    /// The defaults, with sessions in Redis at `redis_url` or, without one,
    /// in the process, resolving callers as `identity`.
    pub fn new(redis_url: Option<String>, identity: ServiceIdentity) -> Config {
        Config {
            identity,
            redis_url,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            revocation_log_len: DEFAULT_REVOCATION_LOG_LEN,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
        }
    }
}

/// Why session-service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("session-service: invalid Redis URL: {0}")]
    RedisUrl(redis::RedisError),
    #[error("session-service gRPC: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
}

/// Serves the gRPC API on `listener` until `shutdown` is cancelled.
///
/// Redis need not be up yet: until it is, calls answer UNAVAILABLE and
/// `grpc.health.v1` reports NOT_SERVING.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    serve_with_clock(listener, config, idmesh_runtime::clock::system(), shutdown).await
}

/// [`serve`], telling time by `clock`: how tests expire sessions without
/// waiting.
pub async fn serve_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Clock,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    match &config.redis_url {
        Some(url) => {
            let store = RedisStore::open(
                url,
                &config.key_prefix,
                config.revocation_log_len,
                config.max_sessions_per_user,
            )
            .map_err(ServeError::RedisUrl)?;
            run(listener, store, &config, clock, shutdown).await
        }
        None => {
            tracing::warn!(
                "session-service keeps sessions in this process: other processes do not see its \
                 revocations and a restart forgets them; set a Redis URL (IDMESH_REDIS_URL) to run \
                 more than one process"
            );
            let store = MemoryStore::new(config.revocation_log_len, config.max_sessions_per_user, clock());
            run(listener, store, &config, clock, shutdown).await
        }
    }
}

async fn run<S: SessionStore>(
    listener: TcpListener,
    store: S,
    config: &Config,
    clock: Clock,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let auth = config.identity.authenticator()?;
    let store = Arc::new(store);
    let readiness = {
        let store = Arc::clone(&store);
        Readiness::new(move || {
            let store = Arc::clone(&store);
            async move {
                let up = tokio::time::timeout(STORE_CHECK_TIMEOUT, store.is_reachable())
                    .await
                    .unwrap_or(false);
                metrics::gauge!(STORE_UP_METRIC).set(if up { 1.0 } else { 0.0 });
                up
            }
        })
    };
    let api = SessionApi::new(store, clock, shutdown.clone());
    let server =
        idmesh_runtime::with_message_limits!(idmesh_proto::v1::session_service_server::SessionServiceServer::new(api));
    let routes = tonic::service::Routes::new(server);
    tracing::info!(addr = ?listener.local_addr().ok(), "session-service listening");
    idmesh_runtime::grpc::serve_with_readiness(
        listener,
        routes,
        &[SessionApi::<S>::SERVICE_NAME],
        auth,
        readiness,
        shutdown,
    )
    .await?;
    Ok(())
}
