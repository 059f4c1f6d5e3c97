//! Which database errors are the database's momentary trouble rather than a
//! bug or a bad request: a connection that could not be had or was lost, a
//! statement or lock wait that outlasted its deadline, a server shutting
//! down, a busy SQLite file. Services answer these as UNAVAILABLE, which
//! the gateway turns into 503 with `Retry-After`: the IdP retries later
//! instead of recording a failure.

use sea_orm::{DbErr, RuntimeErr};

/// SQLSTATE classes and codes PostgreSQL uses for momentary trouble.
const TRANSIENT_SQLSTATE_CLASSES: &[&str] = &[
    // connection exception
    "08", // insufficient resources (too many connections, out of memory or disk)
    "53",
];
const TRANSIENT_SQLSTATES: &[&str] = &[
    // query_canceled: statement_timeout, or the request's deadline
    "57014", // admin_shutdown, crash_shutdown, cannot_connect_now
    "57P01", "57P02", "57P03", // lock_not_available: lock_timeout
    "55P03", // serialization_failure, deadlock_detected: the retry succeeds
    "40001", "40P01",
];
/// SQLite result codes: SQLITE_BUSY and SQLITE_LOCKED (with their extended
/// codes, whose low byte is the primary code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Whether `err` is momentary trouble worth a retry later.
pub fn is_transient(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return false;
    };
    use sea_orm::sqlx::Error;
    match sqlx_err.as_ref() {
        Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed | Error::Protocol(_) => true,
        Error::Database(db_err) => db_err.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

fn transient_code(code: &str) -> bool {
    // SQLSTATEs are five characters; SQLite's codes are shorter numbers.
    if code.len() != 5
        && let Ok(sqlite) = code.parse::<i64>()
    {
        return matches!(sqlite & 0xff, SQLITE_BUSY | SQLITE_LOCKED);
    }
    TRANSIENT_SQLSTATES.contains(&code) || TRANSIENT_SQLSTATE_CLASSES.iter().any(|class| code.starts_with(class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_shutdowns_and_busy_files_are_transient() {
        for code in ["57014", "55P03", "57P01", "08006", "53300", "40001", "5", "517", "6"] {
            assert!(transient_code(code), "{code}");
        }
    }

    #[test]
    fn constraint_and_syntax_errors_are_not() {
        for code in ["23505", "42601", "22P02", "2067", "19", "1"] {
            assert!(!transient_code(code), "{code}");
        }
    }

    #[test]
    fn a_pool_timeout_is_transient_and_a_missing_row_is_not() {
        assert!(is_transient(&DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout
        )));
        assert!(!is_transient(&DbErr::RecordNotFound("user".to_owned())));
    }
}
