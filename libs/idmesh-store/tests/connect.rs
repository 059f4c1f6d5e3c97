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

/// The first value of the one row `sql` answers on a connection of `db`.
async fn select_one<T: sea_orm::TryGetable>(db: &sea_orm::DatabaseConnection, sql: &str) -> T {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect(sql)
        .expect("a row");
    row.try_get_by_index(0).expect("a value")
}

/// What `PRAGMA synchronous` answers on a connection of `db`: 1 is NORMAL,
/// 2 is FULL.
async fn synchronous(db: &sea_orm::DatabaseConnection) -> i64 {
    select_one(db, "PRAGMA synchronous").await
}

#[tokio::test]
async fn sqlite_syncs_every_commit_unless_the_url_asks_for_normal() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("idmesh.db").display());
    let durable = idmesh_store::connect(&url).await.expect("SQLite opens");
    assert_eq!(synchronous(&durable).await, 2, "FULL by default");
    durable.close().await.expect("closes");
    let relaxed = idmesh_store::connect(&format!("{url}?synchronous=normal"))
        .await
        .expect("SQLite opens with synchronous=normal");
    assert_eq!(synchronous(&relaxed).await, 1, "NORMAL when asked");
    relaxed.close().await.expect("closes");
    let err = idmesh_store::connect(&format!("{url}?synchronous=off"))
        .await
        .expect_err("OFF is not offered");
    assert!(err.to_string().contains("synchronous"), "{err}");
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_a_reason() {
    let err = idmesh_store::connect("mysql://localhost/x")
        .await
        .expect_err("MySQL is not supported");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test]
async fn postgres_sessions_plan_each_execution_with_its_parameters() {
    // A generic plan kept from when a table was empty walks the whole
    // directory for each userName lookup once it is not (PLAN_CACHE_MODE).
    let database = ScratchDatabase::new(Backend::Postgres);
    let pool = idmesh_store::connect(database.url()).await.expect("connects");
    let row = pool
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_setting('plan_cache_mode') AS mode",
        ))
        .await
        .expect("a setting")
        .expect("one row");
    let mode: String = row.try_get("", "mode").expect("the mode");
    assert_eq!(mode, idmesh_store::PLAN_CACHE_MODE);
    assert_eq!(mode, "force_custom_plan");
}

#[tokio::test]
async fn sqlite_statements_keep_their_plan_whatever_is_bound_to_them() {
    // Had SQLite compiled the bound limit into the program (as an
    // `Integer 7` instruction), binding another value would expire the
    // statement and make each execution prepare it again.
    const NINE_ROWS_LIMITED: &str = "SELECT value FROM json_each('[1,2,3,4,5,6,7,8,9]') LIMIT ?";
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = idmesh_store::connect(&format!("sqlite://{}", dir.path().join("idmesh.db").display()))
        .await
        .expect("SQLite opens");
    let with_limit_7 =
        |sql: String| sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, [7.into()]);
    let program = db
        .query_all_raw(with_limit_7(format!("EXPLAIN {NINE_ROWS_LIMITED}")))
        .await
        .expect("the program");
    let instructions: Vec<(String, i64)> = program
        .iter()
        .map(|row| {
            (
                row.try_get("", "opcode").expect("an opcode"),
                row.try_get("", "p1").expect("p1"),
            )
        })
        .collect();
    assert!(
        !instructions.contains(&("Integer".to_owned(), 7)),
        "the bound limit is compiled in: {instructions:?}"
    );
    let limited = db
        .query_all_raw(with_limit_7(NINE_ROWS_LIMITED.to_owned()))
        .await
        .expect("rows");
    assert_eq!(limited.len(), 7, "the limit still applies");
}

#[tokio::test]
async fn the_plan_cached_pool_keeps_postgres_default_and_the_others_plan_each_execution() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let db = idmesh_store::connect(database.url()).await.expect("connects");
    let plan_cached = idmesh_store::connect_plan_cached(database.url(), &db)
        .await
        .expect("connects");
    const MODE: &str = "SELECT current_setting('plan_cache_mode')";
    assert_eq!(select_one::<String>(&db, MODE).await, idmesh_store::PLAN_CACHE_MODE);
    assert_eq!(select_one::<String>(&plan_cached, MODE).await, "auto");
}

/// sqlx 0.9.0 leaves Nagle's algorithm on; a statement binding more than
/// one TLS record then waited 40 ms for the server's delayed
/// acknowledgement (idmesh_store::nodelay).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn every_postgres_connection_runs_with_tcp_nodelay() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let db = idmesh_store::connect(database.url()).await.expect("connects");
    // Three statements at once, so that the pool opens three connections.
    const WAIT: &str = "SELECT 1 FROM pg_sleep(0.1)";
    let answers: (i32, i32, i32) = tokio::join!(select_one(&db, WAIT), select_one(&db, WAIT), select_one(&db, WAIT));
    assert_eq!(answers, (1, 1, 1));
    let sockets = idmesh_store::nodelay::tcp_sockets();
    assert!(
        sockets.len() >= 3,
        "the pool's connections are TCP sockets: {sockets:?}"
    );
    assert!(sockets.iter().all(|&(_, on)| on), "without TCP_NODELAY: {sockets:?}");
}

/// Waits until every connection of `pool` is back in it: sqlx gives a
/// connection back in a task of its own, after pinging it.
async fn all_returned(pool: &sea_orm::sqlx::PgPool) {
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while pool.num_idle() < pool.size() as usize {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the connections go back to the pool");
}

/// `url` in three: what comes before the server (scheme and user), the
/// server, and the database.
fn split_postgres_url(url: &str) -> (&str, &str, &str) {
    let (credentials, rest) = url.split_once('@').expect("user@server");
    let (server, database) = rest.split_once('/').expect("server/database");
    (credentials, server, database)
}

#[tokio::test]
async fn a_busy_postgres_connection_is_pinged_once_per_statement_and_an_idle_one_before_use_too() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let created = idmesh_store::connect(database.url())
        .await
        .expect("creates the database");
    created.close().await.expect("closes");
    let (credentials, server, name) = split_postgres_url(database.url());
    let relay = relay::SyncCounter::start(server.to_owned()).await;
    // Without TLS, so that the relay reads the protocol's messages.
    let db = idmesh_store::connect(&format!("{credentials}@{}/{name}?sslmode=disable", relay.addr))
        .await
        .expect("connects through the relay");
    let pool = db.get_postgres_connection_pool();
    const STATEMENT: &str = "SELECT 1";
    // The first execution also prepares the statement.
    assert_eq!(select_one::<i32>(&db, STATEMENT).await, 1);
    all_returned(pool).await;
    assert_eq!(pool.size(), 1, "one connection, reused");

    let before = relay.syncs();
    for _ in 0..10 {
        assert_eq!(select_one::<i32>(&db, STATEMENT).await, 1);
        all_returned(pool).await;
    }
    assert_eq!(
        relay.syncs() - before,
        20,
        "each statement's own Sync, and sqlx's ping when its connection goes back; none when it is handed out"
    );

    tokio::time::sleep(idmesh_store::PING_AFTER_IDLE + std::time::Duration::from_millis(100)).await;
    let before = relay.syncs();
    assert_eq!(select_one::<i32>(&db, STATEMENT).await, 1);
    all_returned(pool).await;
    assert_eq!(
        relay.syncs() - before,
        3,
        "a connection idle that long is pinged before it is used"
    );
}

#[tokio::test]
async fn sqlite_connections_are_handed_out_without_a_ping() {
    // A file has no server that could have dropped the connection; sqlx's
    // test would be a round trip to the connection's worker thread.
    let database = ScratchDatabase::new(Backend::Sqlite);
    let db = idmesh_store::connect(database.url()).await.expect("SQLite opens");
    assert!(!db.get_sqlite_connection_pool().options().get_test_before_acquire());
    assert_eq!(select_one::<i32>(&db, "SELECT 1").await, 1);
}

#[tokio::test]
async fn a_postgres_connection_that_died_in_the_pool_is_replaced_before_it_is_used() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let db = idmesh_store::connect(database.url()).await.expect("connects");
    const BACKEND: &str = "SELECT pg_backend_pid()";
    let first: i32 = select_one(&db, BACKEND).await;
    all_returned(db.get_postgres_connection_pool()).await;
    let admin = idmesh_store::connect(database.url()).await.expect("connects");
    let terminated: bool = select_one(&admin, &format!("SELECT pg_terminate_backend({first})")).await;
    assert!(terminated, "PostgreSQL ends the pooled connection's backend");

    tokio::time::sleep(idmesh_store::PING_AFTER_IDLE + std::time::Duration::from_millis(100)).await;
    let second: i32 = select_one(&db, BACKEND).await;
    assert_ne!(
        second, first,
        "a new connection answers, not an error from the dead one"
    );
}

/// A TCP relay between sqlx and PostgreSQL that keeps what clients send, to
/// count their Sync messages: each is a round trip, answered by the
/// server's ReadyForQuery.
mod relay {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    type Sent = Arc<Mutex<Vec<Vec<u8>>>>;

    pub struct SyncCounter {
        pub addr: std::net::SocketAddr,
        sent: Sent,
    }

    impl SyncCounter {
        /// Relays each connection made to [`SyncCounter::addr`] to `server`.
        pub async fn start(server: String) -> SyncCounter {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let addr = listener.local_addr().expect("its address");
            let sent = Sent::default();
            let connections = Arc::clone(&sent);
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let server = TcpStream::connect(&server).await.expect("PostgreSQL accepts");
                    let index = {
                        let mut sent = connections.lock().expect("unpoisoned");
                        sent.push(Vec::new());
                        sent.len() - 1
                    };
                    tokio::spawn(relay(client, server, Arc::clone(&connections), index));
                }
            });
            SyncCounter { addr, sent }
        }

        /// The Sync messages sent so far, over every connection.
        pub fn syncs(&self) -> usize {
            self.sent
                .lock()
                .expect("unpoisoned")
                .iter()
                .map(|bytes| syncs(bytes))
                .sum()
        }
    }

    async fn relay(client: TcpStream, server: TcpStream, sent: Sent, index: usize) {
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        let answers = tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
        let mut buffer = vec![0; 8192];
        while let Ok(read @ 1..) = from_client.read(&mut buffer).await {
            sent.lock().expect("unpoisoned")[index].extend_from_slice(&buffer[..read]);
            if to_server.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        answers.abort();
    }

    /// The Sync messages in what one client sent: first the startup message
    /// (its length, then the rest), then messages of a type byte and a
    /// length that counts itself but not the type.
    fn syncs(bytes: &[u8]) -> usize {
        let length = |at: usize| {
            let field = bytes.get(at..at + 4)?;
            Some(u32::from_be_bytes(field.try_into().expect("four bytes")) as usize)
        };
        let Some(mut at) = length(0) else {
            return 0;
        };
        let mut count = 0;
        while let (Some(&kind), Some(len)) = (bytes.get(at), length(at + 1)) {
            count += usize::from(kind == b'S');
            at += 1 + len;
        }
        count
    }
}
