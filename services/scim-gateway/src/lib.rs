//! scim-gateway: the only component that speaks SCIM over HTTP. It
//! authenticates the IdP's bearer token, parses and renders SCIM, and turns
//! each request into gRPC calls on the services that own the data.

mod auth;
mod bulk;
mod conditional;
mod discovery;
mod error;
mod groups;
mod health;
mod media_type;
mod members;
mod observe;
mod projection;
mod resources;
mod response;
mod search;
mod traffic;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_runtime::auth::{AuthChannel, Credential};
use idmesh_runtime::grpc::authed_channel;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

pub use crate::auth::DEFAULT_TOKEN_CACHE_TTL;
use crate::auth::TokenCache;
use crate::traffic::RateLimits;
pub use crate::traffic::{Rate, Traffic};

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// directory-service's gRPC address (`host:port` or `http://host:port`).
    pub directory_addr: String,
    /// user-service's gRPC address.
    pub user_addr: String,
    /// group-service's gRPC address.
    pub group_addr: String,
    /// Above this many members, a PATCH of a group that names neither
    /// `attributes` nor `excludedAttributes` answers 204 No Content instead
    /// of the group, so that a membership change never serialises a huge
    /// group ([`DEFAULT_GROUP_PATCH_MEMBER_LIMIT`] unless configured).
    pub group_patch_member_limit: u64,
    /// The externally visible base URL (`https://scim.example.com`), used for
    /// `meta.location` and `Location`. Without it, the request's Host header.
    pub public_url: Option<String>,
    /// The gateway's own key: scim-tokens:resolve, users:read, users:write,
    /// groups:read, groups:write, and nothing else (it cannot issue SCIM
    /// tokens).
    pub credential: Credential,
    /// How long a resolved bearer token is trusted without asking
    /// directory-service again: how long a revoked token keeps working, and
    /// how long a directory's new rate takes to apply
    /// ([`DEFAULT_TOKEN_CACHE_TTL`] unless configured).
    pub token_cache_ttl: std::time::Duration,
    /// Deadlines, concurrency and each directory's rate.
    pub traffic: Traffic,
    /// What one request may ask; the gateway enforces the body size and
    /// JSON depth, the services the rest.
    pub limits: scim::Limits,
}

/// The member count above which a group PATCH answers 204 by default:
/// 10,000 members render to about 1.5 MB, which IdPs read back on every
/// membership change if answered in full.
pub const DEFAULT_GROUP_PATCH_MEMBER_LIMIT: u64 = 10_000;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("scim-gateway: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
    #[error("scim-gateway HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

/// What every request handler shares, behind one `Arc`: axum clones the
/// state for every extractor and layer of every request, and a clone of
/// the fields themselves (four gRPC clients) cost about 25,000
/// instructions a request (callgrind, `scripts/callgrind-gateway`).
#[derive(Debug, Clone)]
struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug)]
struct Shared {
    directories: DirectoryServiceClient<AuthChannel>,
    /// directory-service's `grpc.health.v1`, for `/readyz`.
    directory_health: HealthClient<Channel>,
    users: UserServiceClient<AuthChannel>,
    groups: GroupServiceClient<AuthChannel>,
    tokens: Arc<TokenCache>,
    public_url: Option<Arc<str>>,
    group_patch_member_limit: u64,
    traffic: Traffic,
    limits: scim::Limits,
    rate_limits: Arc<RateLimits>,
    /// One permit per SCIM request that may run at once.
    in_flight: Arc<Semaphore>,
    /// One permit per byte of request body that may be in flight at once.
    body_bytes: Arc<Semaphore>,
}

/// Serves SCIM on `listener` until `shutdown` is cancelled, then lets
/// in-flight requests finish. `/healthz` and `/readyz` answer probes, without
/// a token. Every other request is traced and measured (see `observe`).
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let directory_channel = idmesh_runtime::grpc::lazy_channel(&config.directory_addr)?;
    let state = AppState(Arc::new(Shared {
        directories: idmesh_runtime::with_message_limits!(DirectoryServiceClient::new(AuthChannel::new(
            directory_channel.clone(),
            config.credential.clone(),
        ))),
        directory_health: HealthClient::new(directory_channel),
        users: idmesh_runtime::with_message_limits!(UserServiceClient::new(authed_channel(
            &config.user_addr,
            &config.credential
        )?)),
        groups: idmesh_runtime::with_message_limits!(GroupServiceClient::new(authed_channel(
            &config.group_addr,
            &config.credential
        )?)),
        tokens: Arc::new(TokenCache::new(config.token_cache_ttl)),
        public_url: config.public_url.map(|url| Arc::from(url.trim_end_matches('/'))),
        group_patch_member_limit: config.group_patch_member_limit,
        traffic: config.traffic,
        limits: config.limits,
        rate_limits: Arc::new(RateLimits::new()),
        in_flight: Arc::new(Semaphore::new(config.traffic.max_concurrent_requests)),
        body_bytes: Arc::new(Semaphore::new(config.traffic.max_body_bytes_in_flight)),
    }));
    tracing::info!(addr = ?listener.local_addr().ok(), "scim-gateway listening");
    // TCP_NODELAY: SCIM responses are small and must not wait for delayed ACKs.
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

fn router(state: AppState) -> Router {
    let directory_routes = Router::new()
        .merge(resources::routes::<users::Users>())
        .merge(resources::routes::<groups::Groups>())
        .route("/.search", post(search::search))
        .route(
            "/Bulk",
            post(bulk::bulk).layer(DefaultBodyLimit::max(
                usize::try_from(bulk::LIMITS.max_payload_size).unwrap_or(usize::MAX),
            )),
        )
        .route("/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .layer(DefaultBodyLimit::max(state.limits.max_document_bytes))
        // Outermost last: shed, then the deadline, then authentication,
        // then the directory's rate, then the body budget (see `traffic`).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            traffic::body_budget,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), traffic::rate_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_directory_token,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), traffic::deadline))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), traffic::shed));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/scim/v2/{directory_id}", directory_routes)
        .fallback(error::unknown_endpoint)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(media_type::negotiate))
        // A layer of the router, not around it: it runs after routing, so
        // it knows the route template.
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}
