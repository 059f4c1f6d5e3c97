//! gRPC server bootstrap and client channels.
//!
//! Every service is served the same way: its own services plus
//! `grpc.health.v1` and server reflection (v1 and v1alpha, since grpcurl 1.8
//! speaks only v1alpha), on a listener the caller bound (port 0 in tests),
//! until a cancellation token fires. Health reports what a readiness check
//! says: a service whose database or Redis is unreachable is NOT_SERVING, so
//! Kubernetes stops routing to it without restarting it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::ServingStatus;

use crate::auth::layer::AuthLayer;
use crate::auth::{AuthChannel, Authenticator, Credential};
use crate::deadline::DeadlineLayer;
use crate::observe::ObserveLayer;

/// The largest gRPC message an idmesh client or server accepts.
///
/// tonic's default is 4 MiB received, which a page of large documents
/// passes; every idmesh client and server is set to this instead by
/// [`with_message_limits!`], so each side accepts the same. A receiver
/// refuses a larger message with OUT_OF_RANGE ("decoded message length too
/// large: found … bytes, the limit is: 16777216 bytes"), which reaches the
/// sender as that status. Sending is not limited: tonic reports a caller's
/// own send-limit breach as a bare HTTP/2 reset, while the receiver's
/// refusal names the limit. The largest messages in normal use stay far
/// below: a document (`max_document_bytes`, at most 2 MiB), a list page
/// (4 MiB of documents plus one, see `idmesh_store::list::PAGE_BYTES`),
/// 5,000 members.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// A generated tonic client or server that accepts messages of up to
/// [`MAX_MESSAGE_BYTES`]: `with_message_limits!(UserServiceClient::new(channel))`.
#[macro_export]
macro_rules! with_message_limits {
    ($client_or_server:expr) => {
        $client_or_server.max_decoding_message_size($crate::grpc::MAX_MESSAGE_BYTES)
    };
}

/// The standard health service every server runs.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// How long in-flight calls get to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`serve`] asks a [`Readiness`] check unless told otherwise:
/// often enough that a probe sees an outage within seconds, rarely enough
/// that the check costs nothing.
pub const READINESS_INTERVAL: Duration = Duration::from_secs(2);

/// How long one readiness check may take; a check that has not answered by
/// then counts as not ready (an unreachable database host can hang for the
/// whole connect timeout).
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

type Check = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Whether a server's dependencies (its database, Redis) answer: checked once
/// at start and then every [`interval`](Readiness::with_interval), and
/// reported on `grpc.health.v1` as SERVING or NOT_SERVING.
#[derive(Clone)]
pub struct Readiness {
    check: Check,
    interval: Duration,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Ready as long as the process runs: for a server without dependencies.
    pub fn always() -> Readiness {
        Readiness::new(|| async { true })
    }

    /// Ready while `check` answers true within [`READINESS_TIMEOUT`].
    pub fn new<F, Fut>(check: F) -> Readiness
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Readiness {
            check: Arc::new(move || Box::pin(check())),
            interval: READINESS_INTERVAL,
        }
    }

    /// Checks every `interval` instead of every [`READINESS_INTERVAL`].
    pub fn with_interval(self, interval: Duration) -> Readiness {
        Readiness { interval, ..self }
    }

    async fn ready(&self) -> bool {
        tokio::time::timeout(READINESS_TIMEOUT, (self.check)())
            .await
            .unwrap_or(false)
    }
}

/// Why a gRPC server or channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("an API key must be printable ASCII")]
    Credential,
    #[error("invalid gRPC address {addr:?}: {source}")]
    Address {
        addr: String,
        source: tonic::transport::Error,
    },
}

/// Serves `routes` on `listener` until `shutdown` is cancelled, then drains
/// for at most [`DRAIN_TIMEOUT`].
///
/// Every call of `routes` goes through [`AuthLayer`]: its caller is
/// authenticated by `auth` and needs the method's scope; health and
/// reflection stay open. Every call but those is traced, continuing the
/// caller's trace, and counted ([`ObserveLayer`]).
///
/// `service_names` are the fully qualified names of the services in `routes`;
/// each is reported SERVING on the health service, as is the server as a
/// whole (the empty name), until shutdown begins. A server with dependencies
/// uses [`serve_with_readiness`].
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    auth: Authenticator,
    shutdown: CancellationToken,
) -> Result<(), GrpcError> {
    serve_with_readiness(listener, routes, service_names, auth, Readiness::always(), shutdown).await
}

/// [`serve`], reporting each of `service_names` and the server as a whole
/// SERVING while `readiness` says so and NOT_SERVING otherwise, and
/// NOT_SERVING from the moment shutdown begins.
pub async fn serve_with_readiness(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    auth: Authenticator,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), GrpcError> {
    // Advertise only what this process serves: every service's descriptors
    // are in the set, but a user-service process has no DirectoryService.
    let reflection = || {
        service_names.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(idmesh_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name(HEALTH_SERVICE),
            |builder, name| builder.with_service_name(*name),
        )
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let names: Vec<String> = service_names
        .iter()
        .map(|n| (*n).to_owned())
        .chain([String::new()])
        .collect();
    let report = move |status: ServingStatus| {
        let (reporter, names) = (health_reporter.clone(), names.clone());
        async move {
            for name in &names {
                reporter.set_service_status(name, status).await;
            }
        }
    };
    // The first answer is known before the first call is accepted.
    let mut ready = readiness.ready().await;
    report(serving_status(ready)).await;
    if !ready {
        tracing::warn!(services = ?service_names, "not ready: a dependency does not answer");
    }
    let services = format!("{service_names:?}");
    // The one writer of the health status after start: shutdown cannot race
    // a check that is still running and report SERVING again. It also stops
    // when this function returns early, with the server failed.
    let stop_watching = shutdown.child_token();
    let _stop_watching_on_return = stop_watching.clone().drop_guard();
    let watcher = {
        let shutdown = stop_watching;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(readiness.interval) => {}
                }
                let now = tokio::select! {
                    () = shutdown.cancelled() => break,
                    now = readiness.ready() => now,
                };
                if now != ready {
                    if now {
                        tracing::info!(%services, "ready again: dependencies answer");
                    } else {
                        tracing::warn!(%services, "not ready: a dependency does not answer");
                    }
                    ready = now;
                    report(serving_status(ready)).await;
                }
            }
            report(ServingStatus::NotServing).await;
        })
    };
    let stop_accepting = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            if let Err(err) = watcher.await {
                tracing::error!(%err, "the readiness watcher panicked");
            }
        }
    };
    let server = Server::builder()
        // Outermost first: the span and the metrics cover the whole call,
        // authentication included.
        .layer(ObserveLayer)
        .layer(DeadlineLayer)
        .layer(AuthLayer::new(auth))
        .add_routes(routes)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // Without TCP_NODELAY, small responses wait out delayed ACKs: 40 ms
        // on every call over loopback.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stop_accepting);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => Ok(result?),
        () = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
            tracing::warn!("gRPC calls still running after {DRAIN_TIMEOUT:?}; stopping anyway");
            Ok(())
        }
    }
}

fn serving_status(ready: bool) -> ServingStatus {
    if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// A channel to `addr` ("host:port" or a full "http://host:port" URI) that
/// connects on first use and reconnects by itself, so services can start in
/// any order.
pub fn lazy_channel(addr: &str) -> Result<Channel, GrpcError> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|source| GrpcError::Address {
        addr: addr.to_owned(),
        source,
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// [`lazy_channel`] that calls as `credential`.
pub fn authed_channel(addr: &str, credential: &Credential) -> Result<AuthChannel, GrpcError> {
    Ok(AuthChannel::new(lazy_channel(addr)?, credential.clone()))
}
