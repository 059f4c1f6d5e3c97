//! Replicas that start together migrate one fresh PostgreSQL database
//! without stepping on each other: each service migrates in one transaction
//! under a PostgreSQL advisory lock (idmesh_store::migrate). The Helm chart
//! relies on this instead of a migration Job (README, "Upgrades and
//! migrations"). The replicas are separate `idmesh serve` processes, as
//! pods are: within one process a mutex already serialises migrations.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use idmesh_testkit::{Backend, ScratchDatabase};

/// How many replicas start at once, as a first install or a rollout starts
/// a Deployment's pods.
const REPLICAS: usize = 4;

/// What each service logs once it has migrated and serves.
const LISTENING: [&str; 3] = [
    "directory-service listening",
    "user-service listening",
    "group-service listening",
];

/// A running `idmesh serve`, stopped when dropped (also when the test fails).
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a replica and a thread that reads its log: it sends `Ok` once the
/// three services listen, or the log if the process exits first.
fn replica(database_url: &str, data_dir: &std::path::Path, started: mpsc::Sender<Result<(), String>>) -> Replica {
    let any_port = "127.0.0.1:0";
    let mut child = Command::new(env!("CARGO_BIN_EXE_idmesh"))
        .args(["serve", "--targets", "directories,users,groups"])
        .args(["--data-dir".as_ref(), data_dir.as_os_str()])
        .args(["--directory-listen-addr", any_port, "--user-listen-addr", any_port])
        .args(["--group-listen-addr", any_port, "--http-addr", any_port])
        .env("IDMESH_DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("idmesh starts");
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut log = String::new();
        let mut waiting: Vec<&str> = LISTENING.to_vec();
        while let Some(Ok(line)) = lines.next() {
            waiting.retain(|message| !line.contains(message));
            log.push_str(&line);
            log.push('\n');
            if waiting.is_empty() {
                let _ = started.send(Ok(()));
                // Keep reading, so that the replica never blocks on a full pipe.
                lines.for_each(drop);
                return;
            }
        }
        let _ = started.send(Err(log));
    });
    Replica(child)
}

#[tokio::test]
async fn replicas_starting_together_on_a_fresh_database_all_migrate_and_serve() {
    let database = ScratchDatabase::new(Backend::Postgres);
    // Connecting once creates the empty database, so that the replicas race
    // only on migrating it.
    idmesh_store::connect(database.url())
        .await
        .expect("the scratch database");
    let database_url = database.url().to_owned();

    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let (started, starts) = mpsc::channel();
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|_| replica(&database_url, data_dir.path(), started.clone()))
        .collect();
    for _ in 0..REPLICAS {
        match starts.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(log)) => panic!("a replica stopped before serving:\n{log}"),
            Err(_) => panic!("a replica did not serve within a minute"),
        }
    }
    for replica in &mut replicas {
        assert!(
            replica.0.try_wait().expect("a status").is_none(),
            "every replica still runs"
        );
    }
    drop(replicas);
}
