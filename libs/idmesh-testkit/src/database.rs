//! A database of the test's own: a fresh PostgreSQL database on the test
//! server, or a fresh SQLite file, removed when the test ends.
//!
//! Sharing one database is not enough for tests of the revocation outbox:
//! it spans directories, so one test's user-service would deliver another
//! test's stored revocations to its own session-service.

use sea_orm::ConnectionTrait;

/// The PostgreSQL the tests use, unless `IDMESH_TEST_DATABASE_URL` says
/// otherwise. Scratch databases are created on the same server; this one is
/// only connected to, to drop them.
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/idmesh_test";

/// Which database a test stores into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A database no other test uses; dropping it removes the database, also
/// when the test panics.
///
/// Nothing is created up front: `idmesh_store::connect` creates a missing
/// PostgreSQL database or SQLite file, as it does in production.
#[derive(Debug)]
pub struct ScratchDatabase {
    url: String,
    removal: Removal,
}

#[derive(Debug)]
enum Removal {
    /// The SQLite file goes with its temporary directory.
    Directory(#[expect(dead_code, reason = "held only to be deleted on drop")] tempfile::TempDir),
    /// The database `name`, dropped through a connection to `admin_url`.
    Postgres { admin_url: String, name: String },
}

impl ScratchDatabase {
    /// A fresh database on `backend`: on PostgreSQL a new database on the
    /// server of `IDMESH_TEST_DATABASE_URL`, on SQLite a file in a new
    /// temporary directory.
    pub fn new(backend: Backend) -> ScratchDatabase {
        match backend {
            Backend::Postgres => {
                let admin_url =
                    std::env::var("IDMESH_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
                let (server, _) = admin_url.rsplit_once('/').expect("a database URL");
                let name = format!("idmesh_scratch_{}", uuid::Uuid::now_v7().simple());
                ScratchDatabase {
                    url: format!("{server}/{name}"),
                    removal: Removal::Postgres { admin_url, name },
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                ScratchDatabase {
                    url: format!("sqlite://{}", dir.path().join("idmesh.db").display()),
                    removal: Removal::Directory(dir),
                }
            }
        }
    }

    /// The URL services connect to, as `IDMESH_DATABASE_URL` would give it.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Removal::Postgres { admin_url, name } = &self.removal else {
            return;
        };
        let admin_url = admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Drop cannot await, and the test's runtime may be the one that is
        // unwinding: the drop runs on a thread and a runtime of its own.
        // FORCE ends the connections of services still running.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let admin = idmesh_store::connect(&admin_url).await?;
                admin.execute_unprepared(&statement).await?;
                admin.close().await?;
                Ok::<(), idmesh_store::StoreError>(())
            })
        });
        match dropped.join() {
            Ok(Ok(())) => {}
            // A second panic while unwinding would abort the test process.
            Ok(Err(err)) if std::thread::panicking() => eprintln!("scratch database {name} stays: {err}"),
            Ok(Err(err)) => panic!("drop the scratch database {name}: {err}"),
            Err(_) => eprintln!("scratch database {name} stays: dropping it panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::*;

    /// Whether the test server has a database called `name`.
    async fn postgres_has(name: &str) -> bool {
        let admin_url =
            std::env::var("IDMESH_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let admin = idmesh_store::connect(&admin_url).await.expect("connect");
        let found = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [name.into()],
            ))
            .await
            .expect("query pg_database");
        admin.close().await.expect("close");
        found.is_some()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scratch_postgres_database_is_dropped_after_a_panicking_test_while_in_use() {
        let database = ScratchDatabase::new(Backend::Postgres);
        let name = database.url().rsplit_once('/').expect("a database URL").1.to_owned();
        let test = tokio::spawn(async move {
            let db = idmesh_store::connect(database.url()).await.expect("connect");
            db.execute_unprepared("CREATE TABLE t (x INTEGER)")
                .await
                .expect("writable");
            assert!(postgres_has(database.url().rsplit_once('/').expect("a URL").1).await);
            panic!("the test fails with the database open");
        });
        assert!(test.await.expect_err("the test panicked").is_panic());
        assert!(!postgres_has(&name).await, "{name} is dropped");
    }

    #[tokio::test]
    async fn a_scratch_sqlite_file_is_removed_with_its_directory() {
        let database = ScratchDatabase::new(Backend::Sqlite);
        let db = idmesh_store::connect(database.url()).await.expect("connect");
        db.execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .expect("writable");
        let path = std::path::PathBuf::from(database.url().trim_start_matches("sqlite://"));
        assert!(path.exists());
        drop(database);
        assert!(!path.exists(), "{} is removed", path.display());
    }
}
