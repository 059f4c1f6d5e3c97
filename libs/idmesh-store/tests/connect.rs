//! connect() against the real servers.

use idmesh_testkit::{Backend, ScratchDatabase};
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn services_starting_together_create_a_missing_postgres_database_once() {
    // Not created yet: connect() creates it.
    let database = ScratchDatabase::new(Backend::Postgres);
    let url = database.url().to_owned();
    let mut connects = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = url.clone();
        connects.spawn(async move { idmesh_store::connect(&url).await });
    }
    while let Some(joined) = connects.join_next().await {
        let pool = joined.expect("joined").expect("every connect succeeds");
        pool.execute_unprepared("SELECT 1").await.expect("the database answers");
        pool.close().await.expect("pool closes");
    }
}

#[tokio::test]
async fn sqlite_files_and_their_directories_are_created() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("nested/deeper/idmesh.db");
    let db = idmesh_store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("SQLite opens");
    db.execute_unprepared("CREATE TABLE t (x INTEGER)")
        .await
        .expect("writable");
    assert!(path.exists());
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_a_reason() {
    let err = idmesh_store::connect("mysql://localhost/x")
        .await
        .expect_err("MySQL is not supported");
    assert!(err.to_string().contains("postgres://"), "{err}");
}
