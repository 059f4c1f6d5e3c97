//! One `connect(url)` for both supported databases.

use std::time::Duration;

use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::sqlite::{SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

use crate::StoreError;

/// Serialises opening SQLite files within the process: switching a new file
/// to WAL needs it to itself, and in `idmesh dev` every service opens the same
/// file at once.
static SQLITE_OPEN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// SQLSTATE of "database does not exist".
const INVALID_CATALOG_NAME: &str = "3D000";

/// Opens a connection pool for `postgres://…` or `sqlite://…`.
///
/// SQLite files (and their directory) are created when missing and run in WAL
/// mode with a busy timeout, so the services of one process can share a file,
/// and with `synchronous=FULL`, so that a write is on disk when its commit
/// returns (see [`SQLITE_SYNCHRONOUS`]), and plan a statement once, whatever
/// its parameters (see [`plan_once_per_statement`]). `LIKE` is made
/// case-sensitive on SQLite, as it is on PostgreSQL, so a filter means the
/// same on both. A
/// PostgreSQL database that does not exist yet is created; its statements
/// and lock waits are limited to [`STATEMENT_TIMEOUT`], a connection is
/// waited for at most [`ACQUIRE_TIMEOUT`], and its socket runs with
/// `TCP_NODELAY` ([`crate::nodelay`]).
pub async fn connect(url: &str) -> Result<DatabaseConnection, StoreError> {
    if url.starts_with("sqlite:") {
        connect_sqlite(url).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        connect_postgres(url).await
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// The query parameter of a `sqlite://` URL that chooses how SQLite syncs
/// its write-ahead log: `full` (the default) or `normal`.
///
/// In WAL mode, `NORMAL` syncs only at checkpoints: a commit that returned
/// can be lost with the last transactions before a power loss or an
/// operating-system crash (not a crash of idmesh itself). An acknowledged
/// SCIM write, and the session revocation or event stored with it, must
/// not vanish, so the default is `FULL`, which syncs the log at every
/// commit. `normal` is for disposable data or storage that survives power
/// loss by itself (a battery-backed cache); `docs/benchmarks.md` has what
/// `full` costs.
pub const SQLITE_SYNCHRONOUS: &str = "synchronous";

/// The URL without the [`SQLITE_SYNCHRONOUS`] parameter, which sqlx does
/// not know, and the mode it asks for.
fn sqlite_synchronous(url: &str) -> Result<(String, SqliteSynchronous), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SqliteSynchronous::Full));
    };
    let mut synchronous = SqliteSynchronous::Full;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((SQLITE_SYNCHRONOUS, value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => SqliteSynchronous::Full,
                    "normal" => SqliteSynchronous::Normal,
                    _ => return Err(StoreError::SqliteSynchronous(value.to_owned())),
                };
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, synchronous))
}

async fn connect_sqlite(url: &str) -> Result<DatabaseConnection, StoreError> {
    let (url, synchronous) = sqlite_synchronous(url)?;
    let url = url.as_str();
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    let in_memory = path.is_empty() || path == ":memory:";
    let parent = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|_| !in_memory) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::SqliteDirectory {
            path: path.to_owned(),
            source,
        })?;
    }
    let url = if url.contains('?') {
        url.to_owned()
    } else {
        format!("{url}?mode=rwc")
    };
    let mut options = ConnectOptions::new(url);
    // A connection to a file has no server to lose it: sqlx's test of each
    // connection handed out (a round trip to its worker thread) finds nothing.
    options
        .sqlx_logging(false)
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .pragma("case_sensitive_like", "ON")
        });
    options.map_sqlx_sqlite_pool_opts(|pool| {
        pool.after_connect(|connection, _| Box::pin(plan_once_per_statement(connection)))
    });
    if in_memory {
        // Every connection to ":memory:" is a database of its own.
        options.max_connections(1);
    }
    let _guard = SQLITE_OPEN.lock().await;
    Ok(Database::connect(options).await?)
}

/// Turns on SQLite's query planner stability guarantee (QPSG) for
/// `connection`: a prepared statement keeps its plan whatever values are
/// bound to it.
///
/// Without it SQLite compiles the value bound to `LIMIT ?` into the
/// statement, so binding the next value expires the statement and the
/// next step parses and plans it again. sea-orm binds the limit of every
/// `.one()` and every page, so every read of a user, a group or a page
/// was prepared from scratch: three times per `GET /Users/{id}`, a fifth
/// of its instructions (docs/benchmarks.md). The one plan this gives up is
/// a `LIKE ?` walking an index by its bound prefix, so a `sw` filter also
/// states its prefix as a range, which the index answers (`filter.rs`).
async fn plan_once_per_statement(connection: &mut SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
    use std::ffi::c_int;

    use libsqlite3_sys::{SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK, sqlite3_db_config};

    let mut handle = connection.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut enabled: c_int = 0;
    // SAFETY: `db` is the open handle of this connection, which `handle`
    // keeps locked for the call; this option takes an int (1: on) and a
    // pointer to an int that receives the resulting state.
    #[allow(unsafe_code)]
    let rc = unsafe { sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_QPSG, 1 as c_int, &raw mut enabled) };
    if rc == SQLITE_OK && enabled == 1 {
        Ok(())
    } else {
        Err(sea_orm::sqlx::Error::Configuration(
            format!("SQLite refused SQLITE_DBCONFIG_ENABLE_QPSG (code {rc})").into(),
        ))
    }
}

async fn connect_postgres(url: &str) -> Result<DatabaseConnection, StoreError> {
    match Database::connect(postgres_options(url, Some(PLAN_CACHE_MODE))).await {
        Err(err) if sqlstate(&err).as_deref() == Some(INVALID_CATALOG_NAME) => {
            let created = create_postgres_database(url).await;
            match (
                Database::connect(postgres_options(url, Some(PLAN_CACHE_MODE))).await,
                created,
            ) {
                (Ok(db), _) => Ok(db),
                // Why the database could not be created says more.
                (Err(_), Err(create_err)) => Err(create_err),
                (Err(err), Ok(())) => Err(err.into()),
            }
        }
        result => Ok(result?),
    }
}

/// How long a PostgreSQL statement may run, and wait for a lock, when no
/// request deadline sets a shorter limit ([`crate::begin_write`]): a
/// backstop above the gateway's request deadline, so nothing a request
/// started outlives it by much.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request waits for a pooled connection before it is answered
/// as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How PostgreSQL plans the statements that sqlx prepares once per
/// connection: each execution with its own parameters, against the
/// table's size at that moment. By default, after five executions
/// PostgreSQL may keep one generic plan for the connection's life, made
/// from what the table looked like then. A pool opened on an empty
/// directory kept, for the `userName` lookup, a walk of the whole
/// directory in id order (`users_by_directory`, filtered on the name):
/// during an initial sync of 100,000 users each lookup took 90–170 ms
/// instead of 0.05 ms through the unique index (docs/benchmarks.md).
/// Autovacuum's `ANALYZE` would replace such a plan eventually; this
/// does not wait for it. The few statements whose generic plans are
/// tested run on [`connect_plan_cached`]'s pool instead.
pub const PLAN_CACHE_MODE: &str = "force_custom_plan";

/// How long a PostgreSQL connection may have waited in its pool before it
/// is pinged when it is handed out again.
///
/// sqlx pings a connection when it goes back to the pool, and by default
/// again when it is handed out: two round trips besides each statement's
/// own. The ping on release stays (sqlx always makes it). Handing out a
/// connection pinged less than this ago finds it alive unless the server
/// went away in between, which the statement then reports as an error
/// (answered 503, as any database failure) and the connection is closed;
/// one that waited longer, such as after a quiet night or a restart of
/// PostgreSQL, is pinged first and replaced if it is dead. Under load every
/// connection is reused within milliseconds, so none is pinged twice.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The most connections of the pool that [`connect_plan_cached`] opens.
pub const PLAN_CACHED_CONNECTIONS: u32 = 4;

/// A pool for the few statements whose generic plans are known right
/// whatever a table's size: on PostgreSQL a second pool on `url`, of at
/// most [`PLAN_CACHED_CONNECTIONS`], that keeps PostgreSQL's default plan
/// cache (`auto`), so that such a statement is planned a few times per
/// connection rather than at every execution; on SQLite `db` itself,
/// whose statements keep their plans anyway. Planning every execution
/// cost PostgreSQL half of its CPU for a GET of a user (docs/benchmarks.md).
///
/// Only statements whose generic plan a test has read on an empty,
/// never-analysed schema belong on it: one made while a table is nearly
/// empty is kept for the connection's life, and an ill-chosen one walks a
/// whole directory at each execution ([`PLAN_CACHE_MODE`]).
pub async fn connect_plan_cached(url: &str, db: &DatabaseConnection) -> Result<DatabaseConnection, StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(db.clone());
    }
    let mut options = postgres_options(url, None);
    options.max_connections(PLAN_CACHED_CONNECTIONS);
    Ok(Database::connect(options).await?)
}

/// The options of every PostgreSQL pool; `plan_cache_mode`, when given,
/// overrides PostgreSQL's default for its sessions. Each new connection's
/// socket gets `TCP_NODELAY` ([`crate::nodelay`]), a connection is pinged
/// when handed out only after [`PING_AFTER_IDLE`] in the pool, and a
/// connection given back to the pool gives back its buffers beyond 8 KiB.
fn postgres_options(url: &str, plan_cache_mode: Option<&'static str>) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    let timeout = STATEMENT_TIMEOUT.as_millis().to_string();
    options
        .sqlx_logging(false)
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire_if_idle_for(PING_AFTER_IDLE)
        .map_sqlx_postgres_opts(move |opts| {
            let opts = opts.options([
                ("statement_timeout", timeout.as_str()),
                ("lock_timeout", timeout.as_str()),
            ]);
            match plan_cache_mode {
                Some(mode) => opts.options([("plan_cache_mode", mode)]),
                None => opts,
            }
        })
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_connect(|_, _| {
                Box::pin(async {
                    crate::nodelay::set_where_missing();
                    Ok(())
                })
            })
            // A connection's buffers grow to the largest message it carried
            // and sqlx keeps them: after a burst of megabyte documents every
            // pooled connection held megabytes. Back to 8 KiB on release.
            .after_release(|connection, _| {
                Box::pin(async {
                    connection.shrink_buffers();
                    Ok(true)
                })
            })
        });
    options
}

/// Creates the database `url` names, through the server's `postgres` database.
/// When services start together, all but one lose the race to create it;
/// their error is moot once the database exists.
async fn create_postgres_database(url: &str) -> Result<(), StoreError> {
    let (server, rest) = url
        .rsplit_once('/')
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
    let (name, query) = match rest.split_once('?') {
        Some((name, query)) => (name, format!("?{query}")),
        None => (rest, String::new()),
    };
    tracing::info!(database = name, "creating missing PostgreSQL database");
    let admin = Database::connect(postgres_options(
        &format!("{server}/postgres{query}"),
        Some(PLAN_CACHE_MODE),
    ))
    .await?;
    let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    let result = admin.execute_unprepared(&create).await;
    admin.close().await?;
    result.map(drop).map_err(StoreError::from)
}

fn sqlstate(err: &DbErr) -> Option<String> {
    let sqlx_err = match err {
        DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)) | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) => e,
        _ => return None,
    };
    sqlx_err.as_database_error()?.code().map(|code| code.into_owned())
}
