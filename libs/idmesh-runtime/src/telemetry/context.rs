//! W3C trace context across process boundaries: a server continues the
//! trace of the `traceparent` (and `tracestate`) it receives, a client
//! sends the current span's. The gateway does both with HTTP headers,
//! every gRPC server and channel of the runtime with gRPC metadata (which
//! travels as HTTP/2 headers too).

use opentelemetry::propagation::{Extractor, Injector};
use tonic::codegen::http::{HeaderMap, HeaderName, HeaderValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` continue the trace that `headers` carry, if they carry one;
/// otherwise `span` starts a trace of its own. Call it before the span is
/// first entered.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(headers)));
    // Err only when the span is disabled (no subscriber wants it): nothing to continue.
    let _ = span.set_parent(parent);
}

/// Adds the current span's trace context to `headers`, for the next hop.
pub fn inject_current(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeadersMut(headers));
    });
}

/// The current span's `traceparent`, to store with work that another task
/// finishes later ([`continue_stored_trace`]); `None` outside a trace.
pub fn current_traceparent() -> Option<String> {
    let mut headers = HeaderMap::new();
    inject_current(&mut headers);
    headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Makes `span` continue the trace of a stored `traceparent` (from
/// [`current_traceparent`]); without one, `span` starts a trace of its own.
pub fn continue_stored_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let mut headers = HeaderMap::new();
    if let Some(value) = traceparent.and_then(|value| HeaderValue::from_str(value).ok()) {
        headers.insert(TRACEPARENT, value);
    }
    continue_trace(span, &headers);
}

/// The W3C header that names a trace and the caller's span in it.
const TRACEPARENT: &str = "traceparent";

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}
