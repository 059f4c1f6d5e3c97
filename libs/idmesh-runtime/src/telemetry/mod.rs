//! Logging, tracing and metrics setup, shared by every binary and test.
//!
//! One global `tracing` subscriber per process carries three layers:
//! OpenTelemetry (every span becomes an OpenTelemetry span, exported over
//! OTLP/gRPC when an endpoint is configured), the trace ids of the spans
//! ([`json::TraceIdsLayer`], which JSON log lines read; not with text
//! lines), and the log lines themselves, as text or as JSON. Trace
//! context crosses process boundaries as W3C `traceparent` headers
//! ([`context`]).

pub mod context;
mod json;

use std::io::IsTerminal;
use std::str::FromStr;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use json::{JsonLines, NoSpanFields};

/// Directives added to whatever `RUST_LOG` says, for log lines only (what
/// traces get is [`TRACE_FILTER`]'s): sqlx logs every statement at INFO,
/// which drowns everything else. sea-orm opens a span at INFO around every
/// statement, with the statement's text as a field; text lines wrote every
/// such field out as the span opened, whether or not a line was ever
/// logged inside it, which cost a create 4–8 % of its instructions
/// (docs/benchmarks.md). sea-orm logs nothing inside them.
const QUIET_DEPENDENCIES: &[&str] = &[
    "sqlx=warn",
    "sea_orm=warn",
    "sea_orm_migration=warn",
    "h2=warn",
    "hyper=warn",
    "tower=warn",
];

/// What spans go to OpenTelemetry, whatever `RUST_LOG` says about log
/// lines: INFO and above, without the transport libraries' own spans.
const TRACE_FILTER: &str = "info,h2=off,hyper=off,tower=off,sqlx=off";

/// The `service.name` of exported spans unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` name one.
const DEFAULT_SERVICE_NAME: &str = "idmesh";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, with the trace and span ids of the request
    /// it belongs to: for log pipelines (Kubernetes, Loki, Elasticsearch).
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format; use text or json")),
        }
    }
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// The process's tracer provider, kept so that [`Telemetry::shutdown`] can
/// send the spans still waiting in the batch before the process exits.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(%err, "could not flush the last spans");
        }
    }
}

/// Installs the global `tracing` subscriber: log lines on stderr in
/// `format`, filtered by `RUST_LOG` (default `info`) plus
/// [`QUIET_DEPENDENCIES`]; spans exported over OTLP/gRPC to `otlp_endpoint`
/// when there is one. The standard `OTEL_*` variables apply
/// (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, …).
///
/// Without an endpoint nothing is exported, and only the traces a caller
/// sampled are even recorded; trace ids still travel and appear in JSON log
/// lines, so a `traceparent` sent by an ingress ties the lines of every hop
/// together.
///
/// Must run inside the Tokio runtime (the exporter's gRPC client needs it).
/// Calling it again is harmless: the first subscriber stays.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let builder = SdkTracerProvider::builder().with_resource(resource());
    let provider = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|source| TelemetryError::Exporter {
                    endpoint: endpoint.to_owned(),
                    source,
                })?;
            // The sampler is the SDK's default, or what OTEL_TRACES_SAMPLER says.
            builder.with_batch_exporter(exporter).build()
        }
        // Nothing to export to: no trace of our own is sampled, while a
        // caller's decision still travels on to the next hop.
        None => builder
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build(),
    };
    install(format, provider.clone());
    Ok(Telemetry { provider })
}

/// Installs the global subscriber with `provider` as the source of spans:
/// what [`init`] does with the provider it builds, and what tests do with a
/// provider that exports into memory. Harmless when a subscriber is
/// already installed.
pub fn install(format: LogFormat, provider: SdkTracerProvider) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    // Text lines are coloured for a terminal only: written to a file or a
    // pipe (a container's log, `2>idmesh.log`), escape codes would be noise
    // in every line, and writing them cost 6-9 % of a POST's instructions
    // (docs/benchmarks.md). NO_COLOR (no-color.org) turns them off on a
    // terminal too.
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    // Err only means a subscriber is already installed, which is fine.
    let _ = subscriber(
        format,
        &provider,
        log_filter(),
        BoxMakeWriter::new(std::io::stderr),
        colours,
    )
    .try_init();
}

/// The layers [`install`] installs, writing log lines that `filter` lets
/// through to `writer`, text lines with terminal colours if `colours`.
fn subscriber(
    format: LogFormat,
    provider: &SdkTracerProvider,
    filter: EnvFilter,
    writer: BoxMakeWriter,
    colours: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static {
    // What the layer does by default on every entry and exit of a span,
    // that is on every poll of an instrumented future, is left out: it was
    // a third of the instructions of a GET (docs/benchmarks.md). Without
    // context activation a span's parent is the enclosing `tracing` span,
    // which is how idmesh's traces nest and travel (`context`); without
    // inactivity tracking spans carry no `busy_ns`/`idle_ns`; without
    // thread attributes no `thread.id`, meaningless for a task that moves
    // between worker threads.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("idmesh"))
        .with_context_activation(false)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(EnvFilter::new(TRACE_FILTER));
    // Only JSON lines carry trace ids, so only they need them copied, and
    // only for the spans that OpenTelemetry sees. The filter matters: a
    // layer without one enables every span and event of every library at
    // every level, h2's and hyper's included: 0.8 million instructions per
    // GET, more than half of what the rest of it costs (docs/benchmarks.md).
    let trace_ids = json::TraceIdsLayer::default().with_filter(EnvFilter::new(match format {
        LogFormat::Text => "off",
        LogFormat::Json => TRACE_FILTER,
    }));
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(colours)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(NoSpanFields)
            .event_format(JsonLines)
            .with_writer(writer)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(spans)
        .with(trace_ids)
        .with(lines.with_filter(filter))
}

/// `RUST_LOG` (default `info`) plus [`QUIET_DEPENDENCIES`].
fn log_filter() -> EnvFilter {
    quieted(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
}

/// `filter` plus [`QUIET_DEPENDENCIES`].
fn quieted(mut filter: EnvFilter) -> EnvFilter {
    for directive in QUIET_DEPENDENCIES {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// The resource of every exported span: what the `OTEL_*` variables say,
/// with [`DEFAULT_SERVICE_NAME`] instead of the SDK's `unknown_service`.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder().with_service_name(DEFAULT_SERVICE_NAME).build()
    }
}

/// Why the Prometheus endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint on {addr}: {source}")]
pub struct MetricsError {
    addr: std::net::SocketAddr,
    source: metrics_exporter_prometheus::BuildError,
}

/// The buckets of every latency histogram (`*_duration_seconds`): from a
/// cache hit (1 ms) to the gateway's default request deadline (20 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
];

/// Serves the process's metrics (those recorded with the `metrics` crate)
/// in the Prometheus text format at `http://{addr}/metrics`, for scraping.
/// A process installs it once; without it, recording metrics costs nothing.
pub fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), MetricsError> {
    let error = |source| MetricsError { addr, source };
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        // Histograms, not the exporter's default summaries: buckets add up
        // across replicas, quantiles do not.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_duration_seconds".to_owned()),
            LATENCY_BUCKETS,
        )
        .map_err(error)?
        .install()
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tonic::codegen::http::{HeaderMap, HeaderValue};

    use super::*;

    /// Log lines written into memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        /// A writer that appends to these lines.
        fn writer(&self) -> BoxMakeWriter {
            let lines = self.clone();
            BoxMakeWriter::new(move || lines.clone())
        }

        fn text(&self) -> String {
            let bytes = self.0.lock().expect("not poisoned").clone();
            String::from_utf8(bytes).expect("UTF-8")
        }

        fn parsed(&self) -> Vec<Value> {
            self.text()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{line:?} is not JSON: {err}")))
                .collect()
        }
    }

    #[test]
    fn json_lines_inside_a_request_carry_the_trace_id_it_continues() {
        let lines = Lines::default();
        let provider = SdkTracerProvider::builder().build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let subscriber = subscriber(
            LogFormat::Json,
            &provider,
            EnvFilter::new("info"),
            lines.writer(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before any request");
            let request = tracing::info_span!("http.request");
            let mut headers = HeaderMap::new();
            headers.insert(
                "traceparent",
                HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            );
            context::continue_trace(&request, &headers);
            request.in_scope(|| {
                tracing::info_span!("grpc.server").in_scope(|| tracing::info!(rows = 1, "user deactivated"));
            });
        });
        let lines = lines.parsed();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["message"], "before any request");
        assert!(lines[0].get("trace_id").is_none(), "no trace outside a request");
        let line = &lines[1];
        assert_eq!(line["message"], "user deactivated");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["rows"], 1);
        assert_eq!(line["spans"], serde_json::json!(["http.request", "grpc.server"]));
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["span_id"].as_str().map(str::len), Some(16));
    }

    #[test]
    fn text_lines_name_our_spans_fields_but_not_sea_orms_statements() {
        let lines = Lines::default();
        let provider = SdkTracerProvider::builder().build();
        let filter = quieted(EnvFilter::new("info"));
        let subscriber = subscriber(LogFormat::Text, &provider, filter, lines.writer(), false);
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("http.request", http.route = "/Users/{id}");
            request.in_scope(|| {
                let statement = tracing::info_span!(
                    target: "sea_orm::database::db_connection",
                    "sea_orm.execute",
                    db.statement = "UPDATE users SET active = false"
                );
                statement.in_scope(|| tracing::info!(rows = 1, "user deactivated"));
            });
        });
        let text = lines.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("http.request{http.route=\"/Users/{id}\"}") && text.contains("user deactivated rows=1"),
            "{text}"
        );
        assert!(
            !text.contains("sea_orm.execute") && !text.contains("UPDATE users"),
            "{text}"
        );
    }

    #[test]
    fn log_formats_read_back_from_their_names() {
        for format in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(format.as_str().parse(), Ok(format));
        }
        assert!("yaml".parse::<LogFormat>().is_err());
    }
}
