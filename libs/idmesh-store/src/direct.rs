//! Reads on the hottest paths, straight through sqlx on the pool that
//! [`crate::connect`] opened.
//!
//! sea-orm wraps each statement's future in its span, its `#[instrument]`
//! and a boxed trait future, moving a future of about 15 KB at each step:
//! callgrind counts about 100,000 instructions per statement there, against
//! about 12,000 in sqlx itself (docs/benchmarks.md). For the one or two
//! statements of a GET that is a tenth of the request, so those statements
//! are written out here once per backend and run through sqlx directly. The
//! connection's settings, its limits and the errors a caller sees (a
//! [`DbErr`], the pool's timeout recognised by [`crate::is_transient`]) are
//! the same as through sea-orm.

use sea_orm::sqlx;
use sea_orm::{ConnAcquireErr, DatabaseConnection, DbBackend, DbErr, FromQueryResult, QueryResult, RuntimeErr};
use tracing::Instrument;

/// One statement written for each backend, with the same parameters in the
/// same order (`$1, $2…` on PostgreSQL, `?` on SQLite).
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    /// What traces call it, e.g. `SELECT users`.
    pub name: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
}

/// The rows `sql` selects with `params`, each decoded as `T` by the
/// names of its columns, as sea-orm decodes them. All of them: the
/// statement bounds its rows itself (a primary key, a `LIMIT`).
pub async fn fetch_all<T: FromQueryResult>(
    db: &DatabaseConnection,
    sql: &Sql,
    params: &[&str],
) -> Result<Vec<T>, DbErr> {
    let backend = db.get_database_backend();
    let span = tracing::info_span!(
        "db.query",
        otel.name = sql.name,
        otel.kind = "client",
        db.system = system_name(backend),
        db.operation = sql.postgres.split_whitespace().next().unwrap_or_default(),
    );
    let fetched = async {
        match backend {
            DbBackend::Postgres => {
                let mut query = sqlx::query(sql.postgres);
                for param in params {
                    query = query.bind(*param);
                }
                let rows = query.fetch_all(db.get_postgres_connection_pool()).await;
                rows.map(|rows| rows.into_iter().map(QueryResult::from).collect::<Vec<_>>())
            }
            DbBackend::Sqlite => {
                let mut query = sqlx::query(sql.sqlite);
                for param in params {
                    query = query.bind(*param);
                }
                let rows = query.fetch_all(db.get_sqlite_connection_pool()).await;
                rows.map(|rows| rows.into_iter().map(QueryResult::from).collect::<Vec<_>>())
            }
            other => Err(sqlx::Error::Configuration(
                format!("idmesh stores data in PostgreSQL or SQLite, not {other:?}").into(),
            )),
        }
    }
    .instrument(span)
    .await;
    fetched
        .map_err(db_err)?
        .iter()
        .map(|row| T::from_query_result(row, ""))
        .collect()
}

/// The OpenTelemetry `db.system` of `backend`.
fn system_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "postgresql",
        DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    }
}

/// The [`DbErr`] sea-orm would have answered for `err`: a pool that gave
/// no connection in time is a [`DbErr::ConnectionAcquire`].
fn db_err(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Query(RuntimeErr::SqlxError(other.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_out_of_connections_is_transient_as_through_sea_orm() {
        assert!(crate::is_transient(&db_err(sqlx::Error::PoolTimedOut)));
        assert!(!crate::is_transient(&db_err(sqlx::Error::ColumnNotFound("id".into()))));
    }
}
