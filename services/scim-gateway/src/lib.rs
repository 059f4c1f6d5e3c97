//! scim-gateway: the only component that speaks SCIM over HTTP. It
//! authenticates the IdP's bearer token, parses and renders SCIM, and turns
//! each request into gRPC calls on the services that own the data.

mod auth;
mod conditional;
mod discovery;
mod error;
mod projection;
mod response;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tower_http::trace::TraceLayer;

use crate::auth::TokenCache;

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// directory-service's gRPC address (`host:port` or `http://host:port`).
    pub directory_addr: String,
    /// user-service's gRPC address.
    pub user_addr: String,
    /// The externally visible base URL (`https://scim.example.com`), used for
    /// `meta.location` and `Location`. Without it, the request's Host header.
    pub public_url: Option<String>,
}

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("scim-gateway: {0}")]
    Grpc(#[from] idmesh_runtime::grpc::GrpcError),
    #[error("scim-gateway HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

/// What every request handler shares.
#[derive(Debug, Clone)]
struct AppState {
    directories: DirectoryServiceClient<Channel>,
    users: UserServiceClient<Channel>,
    tokens: Arc<TokenCache>,
    public_url: Option<Arc<str>>,
}

/// Serves SCIM on `listener` until `shutdown` is cancelled, then lets
/// in-flight requests finish.
pub async fn serve(listener: TcpListener, config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    let state = AppState {
        directories: DirectoryServiceClient::new(idmesh_runtime::grpc::lazy_channel(&config.directory_addr)?),
        users: UserServiceClient::new(idmesh_runtime::grpc::lazy_channel(&config.user_addr)?),
        tokens: Arc::new(TokenCache::new()),
        public_url: config.public_url.map(|url| Arc::from(url.trim_end_matches('/'))),
    };
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
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/.search", post(users::search))
        .route("/.search", post(users::search))
        .route(
            "/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_directory_token,
        ));
    Router::new()
        .nest("/scim/v2/{directory_id}", directory_routes)
        .fallback(error::unknown_endpoint)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
