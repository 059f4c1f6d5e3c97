//! How busy a service's connection pool is, as Prometheus gauges: a pool
//! that is always fully in use makes requests wait for a connection (up to
//! [`crate::ACQUIRE_TIMEOUT`]) before they touch the database.

use sea_orm::{DatabaseBackend, DatabaseConnection};

/// Gauge: the pool's open connections, by `service` and `state` (`in_use`
/// or `idle`).
pub const POOL_CONNECTIONS_METRIC: &str = "idmesh_db_pool_connections";
/// Gauge: how many connections the pool may open, by `service`.
pub const POOL_MAX_CONNECTIONS_METRIC: &str = "idmesh_db_pool_max_connections";

/// Sets the pool gauges of `service` from `db`'s pool as it is now. The
/// services call it with every readiness check, so the gauges are as fresh
/// as their health.
pub fn record_pool_usage(db: &DatabaseConnection, service: &'static str) {
    let (open, idle, max) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        // connect() opens nothing else.
        _ => return,
    };
    let idle = u32::try_from(idle).unwrap_or(open);
    metrics::gauge!(POOL_CONNECTIONS_METRIC, "service" => service, "state" => "in_use")
        .set(f64::from(open.saturating_sub(idle)));
    metrics::gauge!(POOL_CONNECTIONS_METRIC, "service" => service, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(POOL_MAX_CONNECTIONS_METRIC, "service" => service).set(f64::from(max));
}
