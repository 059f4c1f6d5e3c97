//! What idmesh storage code shares. Each service keeps its own entities and
//! migrations; this crate gives them one way to connect to PostgreSQL or
//! SQLite, one migration runner, the SCIM filter → SQL translation and the
//! list pipeline (filter, count, sort, page) every List call runs.

mod connect;
pub mod direct;
pub mod filter;
pub mod list;
mod migrate;
pub mod nodelay;
mod pool;
mod transient;

pub use connect::{
    ACQUIRE_TIMEOUT, PING_AFTER_IDLE, PLAN_CACHE_MODE, PLAN_CACHED_CONNECTIONS, STATEMENT_TIMEOUT, connect,
    connect_plan_cached,
};
pub use migrate::migrate;
pub use pool::{POOL_CONNECTIONS_METRIC, POOL_MAX_CONNECTIONS_METRIC, record_pool_usage};
pub use transient::is_transient;

/// Why the store could not be opened or prepared.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: expected postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    #[error("SQLite URL: synchronous={0:?} is neither full nor normal")]
    SqliteSynchronous(String),
    #[error("cannot create the directory for the SQLite file {path:?}: {source}")]
    SqliteDirectory { path: String, source: std::io::Error },
    #[error(transparent)]
    Database(#[from] sea_orm::DbErr),
}

/// Whether the database answers right now: what a service's health reports.
/// Takes the pool by value (a cheap clone) so that the check is a `'static`
/// future a health watcher can run on its own.
pub async fn is_reachable(db: sea_orm::DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// Begins a transaction that will write: on SQLite it takes the write lock at
/// `BEGIN` (`BEGIN IMMEDIATE`). A deferred transaction that reads first and
/// writes later fails at once with "database is locked" when another
/// connection wrote in between, instead of waiting its turn.
///
/// With `deadline` (the time the request has left), PostgreSQL cancels any
/// statement or lock wait of the transaction that would outlast it, with an
/// error [`is_transient`] recognises. Without one, the connection's own
/// limits apply ([`connect`]).
pub async fn begin_write(
    db: &sea_orm::DatabaseConnection,
    deadline: Option<std::time::Duration>,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db.begin_with_options(options).await?;
    if let Some(left) = deadline
        && db.get_database_backend() == DbBackend::Postgres
    {
        // One round trip for both; at least 1 ms, since 0 means "no limit".
        let millis = left.as_millis().max(1);
        txn.execute_unprepared(&format!(
            "SET LOCAL statement_timeout = {millis}; SET LOCAL lock_timeout = {millis}"
        ))
        .await?;
    }
    Ok(txn)
}

/// Whether a database error is a unique-constraint violation, which services
/// answer as SCIM 409 `uniqueness`.
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}
