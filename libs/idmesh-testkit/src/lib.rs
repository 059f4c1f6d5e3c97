//! What idmesh's tests share, below the level of a whole mesh: a scratch
//! database of each test's own on PostgreSQL or SQLite, the macro that runs
//! one test body on both, Redis test keys that are cleaned up, loopback
//! addresses and gRPC channels, and PostgreSQL and Redis servers of a
//! test's own that it may stop and start again.
//!
//! Service crates dev-depend on this crate, so it depends on no service
//! crate; the mesh launcher and the SCIM client live in the end-to-end crate
//! (`tests/`), which may.

mod database;
mod net;
mod process;
mod redis;
mod servers;

pub use database::{Backend, ScratchDatabase};
pub use net::{channel, unused_addr};
pub use process::once_per_process;
pub use redis::{delete_keys, redis_cluster_url, redis_url};
pub use servers::{PrivatePostgres, PrivateRedis};

/// Installs the tests' `tracing` subscriber; calling it again is harmless.
pub fn init_telemetry() {
    idmesh_runtime::telemetry::init();
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
