//! Logging and tracing setup, shared by every binary and test.

use tracing_subscriber::EnvFilter;

/// Directives added to whatever `RUST_LOG` says: sqlx logs every statement
/// at INFO, which drowns everything else.
const QUIET_DEPENDENCIES: &[&str] = &[
    "sqlx=warn",
    "sea_orm_migration=warn",
    "h2=warn",
    "hyper=warn",
    "tower=warn",
];

/// Installs the global `tracing` subscriber: `RUST_LOG` (default `info`) plus
/// [`QUIET_DEPENDENCIES`], human-readable lines on stderr.
///
/// Calling it again (as every test does) is harmless.
pub fn init() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in QUIET_DEPENDENCIES {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    // Err only means a subscriber is already installed, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Why the Prometheus endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint on {addr}: {source}")]
pub struct MetricsError {
    addr: std::net::SocketAddr,
    source: metrics_exporter_prometheus::BuildError,
}

/// Serves the process's metrics (those recorded with the `metrics` crate)
/// in the Prometheus text format at `http://{addr}/metrics`, for scraping.
/// A process installs it once; without it, recording metrics costs nothing.
pub fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), MetricsError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|source| MetricsError { addr, source })
}
