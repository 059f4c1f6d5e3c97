//! PostgreSQL and Redis servers of a test's own, which the test may stop
//! and start again: the shared servers of the suite must never be
//! restarted, since every other test runs against them.
//!
//! Both are real server processes from the Debian packages that
//! `scripts/ensure-services` installs (`postgresql`, `redis-server`), on a
//! loopback port of their own, with their data in a temporary directory
//! removed when the value is dropped (which also stops the server).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::unused_addr;

/// How long a server may take to start or stop.
const STARTUP: Duration = Duration::from_secs(60);

/// Runs `command`, panicking with its output if it fails.
fn run(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A PostgreSQL cluster of the test's own (initdb, then pg_ctl), trusting
/// local connections as `postgres`, without fsync (the tests stop it, they
/// do not pull its power).
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: TempDir,
    port: u16,
    bin: PathBuf,
    /// initdb and the server refuse to run as root; then they run as the
    /// `postgres` user the Debian package creates.
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates a cluster and starts it; blocks until it accepts connections.
    pub fn start() -> PrivatePostgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let as_postgres = running_as_root();
        if as_postgres {
            run(
                {
                    let mut chown = Command::new("chown");
                    chown.arg("postgres:postgres").arg(dir.path());
                    chown
                },
                "chown the cluster's directory",
            );
        }
        let postgres = PrivatePostgres {
            port: unused_addr().port(),
            dir,
            bin,
            as_postgres,
        };
        let mut initdb = postgres.command("initdb");
        initdb
            .arg("-D")
            .arg(postgres.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        run(initdb, "initdb");
        postgres.start_again();
        postgres
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server (fast shutdown: open connections are closed, as in
    /// a restart or a failover); blocks until it has stopped.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts the stopped server on the same port and data; blocks until it
    /// accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            &STARTUP.as_secs().to_string(),
            "-o",
            &options,
            "-l",
            &log.display().to_string(),
        ]);
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).args(args);
        run(pg_ctl, "pg_ctl");
    }

    /// `program` of the PostgreSQL installation, as `postgres` when root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Immediate: nothing of it is kept. A server already stopped makes
        // pg_ctl fail, which is fine.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Where initdb and pg_ctl are: on the `PATH`, or in the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian keeps them there).
fn postgres_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL's initdb (scripts/ensure-services installs the postgresql package)")
}

fn running_as_root() -> bool {
    let output = run(
        {
            let mut id = Command::new("id");
            id.arg("-u");
            id
        },
        "id -u",
    );
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// A `redis-server` of the test's own, with an append-only file synced at
/// every write, so that a restart keeps what it had (as a production Redis
/// for sessions should).
#[derive(Debug)]
pub struct PrivateRedis {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts the server; blocks until it answers.
    pub fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            dir: tempfile::tempdir().expect("a temporary directory"),
            port: unused_addr().port(),
            child: None,
        };
        redis.start_again();
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server on the same port and data; blocks until it
    /// answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/ensure-services installs it)");
        self.child = Some(child);
        wait_until(STARTUP, "Redis answers", || redis_answers(self.port));
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_answers(port: u16) -> bool {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(500)))
        .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
        .is_ok()
}

/// Polls `condition` until it holds, for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
