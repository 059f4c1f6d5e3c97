//! What a gRPC server records about each call it handles, in one tower
//! layer ([`ObserveLayer`], installed by [`crate::grpc::serve`] outside the
//! deadline and authentication layers): a `grpc.server` span that continues
//! the caller's trace, and Prometheus metrics per method. Health checks and
//! reflection are neither traced nor counted: probes would drown the rest.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tonic::Code;
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::auth::policy;
use crate::telemetry::context;

/// Counter: calls handled, by `service`, `method` and `code` (the gRPC
/// status code's name, `Ok`, `NotFound`, `Unavailable`, …).
pub const GRPC_REQUESTS_METRIC: &str = "idmesh_grpc_server_requests_total";
/// Histogram: how long calls took until their response began, in seconds,
/// by `service` and `method`.
pub const GRPC_DURATION_METRIC: &str = "idmesh_grpc_server_request_duration_seconds";

/// The label of a method that is not idmesh's: its path could be anything,
/// and a label per path would let any caller grow the metrics without bound.
const UNKNOWN: &str = "unknown";

/// Traces and measures every call of the services it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed { inner }
    }
}

/// A service behind [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for Observed<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if policy::is_open(path) {
            return Box::pin(self.inner.call(request));
        }
        let (service, method) = policy::policy(path)
            .and_then(|policy| policy.method.strip_prefix('/')?.split_once('/'))
            .unwrap_or((UNKNOWN, UNKNOWN));
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = format!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        context::continue_trace(&span, request.headers());
        let started = Instant::now();
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let result = call.await;
                let code = match &result {
                    Ok(response) => status_code(response.headers()),
                    Err(_) => Code::Unknown,
                };
                let span = tracing::Span::current();
                span.record("rpc.grpc.status_code", code as i32);
                if is_server_error(code) {
                    span.record("otel.status_code", "ERROR");
                }
                metrics::counter!(
                    GRPC_REQUESTS_METRIC,
                    "service" => service,
                    "method" => method,
                    "code" => format!("{code:?}"),
                )
                .increment(1);
                metrics::histogram!(GRPC_DURATION_METRIC, "service" => service, "method" => method)
                    .record(started.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

/// The call's status, as far as the response's headers tell: an error is
/// answered "trailers-only", with `grpc-status` among the headers; a
/// success sends it in the trailers, after the body, so a response without
/// it in its headers counts as OK. (A stream that fails after its first
/// message thus counts as OK too.)
fn status_code(headers: &http::HeaderMap) -> Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

/// Whether `code` says the server failed, rather than the caller asking
/// for something wrong or absent: those mark the span as an error.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
            | Code::DeadlineExceeded
            | Code::Unimplemented
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_without_a_status_header_is_ok() {
        assert_eq!(status_code(&http::HeaderMap::new()), Code::Ok);
    }

    #[test]
    fn a_trailers_only_response_names_its_status() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_code(&headers), Code::NotFound);
    }
}
