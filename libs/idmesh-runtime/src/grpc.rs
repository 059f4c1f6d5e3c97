//! gRPC server bootstrap and client channels.
//!
//! Every service is served the same way: its own services plus
//! `grpc.health.v1` and server reflection (v1 and v1alpha, since grpcurl 1.8
//! speaks only v1alpha), on a listener the caller bound (port 0 in tests),
//! until a cancellation token fires.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::ServingStatus;

/// The standard health service every server runs.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// How long in-flight calls get to finish after shutdown is requested.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a gRPC server or channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("invalid gRPC address {addr:?}: {source}")]
    Address {
        addr: String,
        source: tonic::transport::Error,
    },
}

/// Serves `routes` on `listener` until `shutdown` is cancelled, then drains
/// for at most [`DRAIN_TIMEOUT`].
///
/// `service_names` are the fully qualified names of the services in `routes`;
/// each is reported SERVING on the health service, as is the server as a
/// whole (the empty name), until shutdown begins.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    shutdown: CancellationToken,
) -> Result<(), GrpcError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in service_names.iter().copied().chain([""]) {
        health_reporter.set_service_status(name, ServingStatus::Serving).await;
    }
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

    let stop_accepting = {
        let shutdown = shutdown.clone();
        let names: Vec<String> = service_names.iter().map(|n| (*n).to_owned()).collect();
        async move {
            shutdown.cancelled().await;
            for name in names.iter().map(String::as_str).chain([""]) {
                health_reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        }
    };
    let server = Server::builder()
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
