//! What idmesh's tests share, below the level of a whole mesh: a scratch
//! database of each test's own on PostgreSQL or SQLite, the macro that runs
//! one test body on both, Redis test keys that are cleaned up, loopback
//! addresses and gRPC channels, PostgreSQL and Redis servers of a test's
//! own that it may stop and start again, the generic plan PostgreSQL keeps
//! for a statement, and the tests' `tracing` subscriber, which keeps
//! sampled spans in memory.
//!
//! Service crates dev-depend on this crate, so it depends on no service
//! crate; the mesh launcher and the SCIM client live in the end-to-end crate
//! (`tests/`), which may.

mod database;
mod net;
mod plan;
mod process;
mod redis;
mod servers;

use idmesh_runtime::telemetry::LogFormat;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

pub use database::{Backend, ScratchDatabase};
pub use net::{channel, unused_addr};
pub use opentelemetry_sdk::trace::SpanData;
pub use plan::postgres_generic_plan;
pub use process::once_per_process;
pub use redis::{delete_keys, redis_cluster_url, redis_url};
pub use servers::{PrivatePostgres, PrivateRedis};

/// The spans the tests' subscriber keeps ([`finished_spans`]).
static SPANS: std::sync::OnceLock<InMemorySpanExporter> = std::sync::OnceLock::new();

/// Installs the tests' `tracing` subscriber; calling it again is harmless.
///
/// Log lines are text. Spans are kept in memory, but only those of a trace
/// its first caller sampled: a test that sends a `traceparent` with the
/// sampled flag finds its spans in [`finished_spans`], and the rest of the
/// suite, sharing the process under `cargo test`, records none.
pub fn init_telemetry() {
    SPANS.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build();
        idmesh_runtime::telemetry::install(LogFormat::Text, provider);
        exporter
    });
}

/// The spans that have ended so far in sampled traces (see
/// [`init_telemetry`]), of every test in the process.
pub fn finished_spans() -> Vec<SpanData> {
    SPANS
        .get()
        .and_then(|exporter| exporter.get_finished_spans().ok())
        .unwrap_or_default()
}

/// Runs `body` on `fixture`. A function rather than a call in the macro,
/// so that the body's closure gets its parameter type from the fixture.
#[doc(hidden)]
pub async fn run<T, Fut>(fixture: T, body: impl FnOnce(T) -> Fut)
where
    Fut: std::future::Future<Output = ()>,
{
    body(fixture).await;
}

/// Runs one async test body once on PostgreSQL and once on SQLite, each
/// time on a [`ScratchDatabase`] of its own that is dropped after the test,
/// also when it panics:
///
/// `on_both_backends!(name, start, |fixture| async move { … })`
///
/// `start` is an async function from `&ScratchDatabase` to what the body
/// gets (a migrated connection, running services, a whole mesh). The
/// expansion is a module `name` with the tests `postgres` and `sqlite`; the
/// calling crate needs `tokio` as a dependency.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $start:expr, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::init_telemetry();
                let database = $crate::ScratchDatabase::new($crate::Backend::Postgres);
                let fixture = ($start)(&database).await;
                $crate::run(fixture, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::init_telemetry();
                let database = $crate::ScratchDatabase::new($crate::Backend::Sqlite);
                let fixture = ($start)(&database).await;
                $crate::run(fixture, $body).await;
            }
        }
    };
}
