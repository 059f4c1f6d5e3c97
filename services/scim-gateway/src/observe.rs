//! What the gateway records about each HTTP request, in one middleware
//! installed after routing (so that it knows the route template): a span
//! that continues the caller's trace (an IdP or an ingress may send a W3C
//! `traceparent`) and is the parent of every gRPC call made for the
//! request, and Prometheus metrics per route. Routes are labelled by their
//! template, `/scim/v2/{directory_id}/Users/{id}`, never by the raw path,
//! which would make a series per user, and unknown methods are `other`.
//! The probes are neither traced nor counted.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;
use tracing::Instrument;

/// Counter: responses, by `route` (the template), `method`, `status` (the
/// code, `201`) and `status_class` (`2xx`).
pub const HTTP_REQUESTS_METRIC: &str = "idmesh_http_requests_total";
/// Histogram: how long requests took until their response began, in
/// seconds, by `route` and `method`.
pub const HTTP_DURATION_METRIC: &str = "idmesh_http_request_duration_seconds";

/// The route label of a request no route matched: scanners' paths must not
/// become label values.
const UNMATCHED: &str = "unmatched";

/// Paths that Kubernetes probes every few seconds.
const PROBES: &[&str] = &["/healthz", "/readyz"];

/// The methods a label may name; any other (HTTP allows methods of one's
/// own invention) is `other`, so that a client cannot mint series.
const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

fn method_label(method: &Method) -> &'static str {
    METHODS
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Traces and measures `request` (see the module's documentation).
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    if PROBES.contains(&route.as_str()) {
        return next.run(request).await;
    }
    let method = method_label(request.method());
    let span = tracing::info_span!(
        "http.request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    idmesh_runtime::telemetry::context::continue_trace(&span, request.headers());
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| tracing::debug!(status = status.as_u16(), latency = ?elapsed, "request finished"));
    let class = format!("{}xx", status.as_u16() / 100);
    metrics::counter!(
        HTTP_REQUESTS_METRIC,
        "route" => route.clone(),
        "method" => method,
        "status" => status.as_str().to_owned(),
        "status_class" => class,
    )
    .increment(1);
    metrics::histogram!(HTTP_DURATION_METRIC, "route" => route, "method" => method).record(elapsed.as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_a_clients_invention_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(b"PROPFIND").expect("a valid method");
        assert_eq!(method_label(&invented), "other");
    }
}
