//! Faults against real processes: user-service killed with SIGKILL in the
//! middle of a write load, Redis restarted, PostgreSQL restarted under load.
//! Redis and PostgreSQL are servers of each test's own
//! (`idmesh_testkit::{PrivateRedis, PrivatePostgres}`): the suite's shared
//! servers are never stopped. Here rather than in `tests/`, because only
//! this package's tests get the `idmesh` binary built for them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idmesh::{MeshConfig, Target};
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{
    CheckSessionRequest, CreateDirectoryRequest, CreateSessionRequest, IssueTokenRequest, SessionStatus,
};
use idmesh_runtime::auth::{AuthChannel, Credential};
use idmesh_testkit::{Backend, PrivatePostgres, PrivateRedis, ScratchDatabase, unused_addr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// How long a phase of a test may take before it fails.
const PHASE: Duration = Duration::from_secs(60);

/// A mesh of `targets` in this process, with a bootstrap admin key; stops
/// when the token is dropped.
async fn launch(targets: &[Target], configure: impl FnOnce(&mut MeshConfig)) -> (idmesh::Mesh, String) {
    idmesh_testkit::init_telemetry();
    let admin_key = idmesh::generate_api_key().expect("randomness");
    let mut config = MeshConfig::loopback(String::new());
    config.bootstrap_admin_key = Some(admin_key.clone());
    configure(&mut config);
    let mesh = idmesh::launch(targets, config, CancellationToken::new())
        .await
        .expect("the mesh starts");
    (mesh, admin_key)
}

fn admin_channel(addr: SocketAddr, key: &str) -> AuthChannel {
    AuthChannel::new(idmesh_testkit::channel(addr), Credential::new(key).expect("a key"))
}

/// A directory and a bearer token for it: (SCIM base URL, token).
async fn directory(http_addr: SocketAddr, directory_addr: SocketAddr, key: &str) -> (String, String) {
    let mut directories = DirectoryServiceClient::new(admin_channel(directory_addr, key));
    let directory = directories
        .create_directory(CreateDirectoryRequest {
            name: format!("faults-{}", uuid::Uuid::now_v7()),
        })
        .await
        .expect("CreateDirectory")
        .into_inner();
    let token = directories
        .issue_token(IssueTokenRequest {
            directory_id: directory.id.clone(),
            description: "faults".to_owned(),
            expires_at: None,
        })
        .await
        .expect("IssueToken")
        .into_inner()
        .secret;
    (format!("http://{http_addr}/scim/v2/{}", directory.id), token)
}

/// What one SCIM request of a load answered.
#[derive(Debug, Clone)]
struct Answer {
    user_name: String,
    status: u16,
    retry_after: bool,
}

/// Writers creating users through the gateway until stopped, each user
/// with a whole document, recording every answer.
struct Load {
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: CancellationToken,
    writers: tokio::task::JoinSet<()>,
}

/// The user a load creates as `user_name`: several attributes, so that a
/// half-written user would show.
fn new_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": user_name},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "title": "Engineer",
        "active": true
    })
}

impl Load {
    fn start(base: &str, token: &str, writers: usize) -> Load {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let mut set = tokio::task::JoinSet::new();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        for writer in 0..writers {
            let (answers, stop, http) = (Arc::clone(&answers), stop.clone(), http.clone());
            let (url, token) = (format!("{base}/Users"), token.to_owned());
            set.spawn(async move {
                for n in 0.. {
                    if stop.is_cancelled() {
                        return;
                    }
                    let user_name = format!("w{writer}-{n}@example.com");
                    let sent = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(new_user(&user_name).to_string())
                        .send()
                        .await;
                    let answer = match sent {
                        Ok(response) => Answer {
                            user_name,
                            status: response.status().as_u16(),
                            retry_after: response.headers().contains_key("retry-after"),
                        },
                        // The gateway itself never goes away in these tests.
                        Err(err) => panic!("the gateway did not answer: {err}"),
                    };
                    answers.lock().expect("answers").push(answer);
                }
            });
        }
        Load {
            answers,
            stop,
            writers: set,
        }
    }

    fn answers(&self) -> Vec<Answer> {
        self.answers.lock().expect("answers").clone()
    }

    /// Waits until `wanted` answers after the first `from` satisfy `is`.
    async fn until(&self, from: usize, wanted: usize, what: &str, is: impl Fn(&Answer) -> bool) -> usize {
        let deadline = Instant::now() + PHASE;
        loop {
            let answers = self.answers();
            if answers.iter().skip(from).filter(|a| is(a)).count() >= wanted {
                return answers.len();
            }
            assert!(Instant::now() < deadline, "no {wanted} answers {what} within {PHASE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(mut self) -> Vec<Answer> {
        self.stop.cancel();
        while let Some(joined) = self.writers.join_next().await {
            joined.expect("a writer ran to the end");
        }
        self.answers()
    }
}

fn success(answer: &Answer) -> bool {
    (200..300).contains(&answer.status)
}

/// `idmesh serve --targets users` as a child process.
struct UserService(Child);

impl UserService {
    /// Starts it on `listen` and waits until it serves.
    fn start(listen: SocketAddr, database_url: &str, peers: &idmesh::Mesh, key: &str) -> UserService {
        let addr = |addr: Option<SocketAddr>| addr.expect("a peer in the test's mesh").to_string();
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_idmesh"))
            .args(["serve", "--targets", "users"])
            .args(["--user-listen-addr", &listen.to_string()])
            .args(["--directory-addr", &addr(peers.directory_addr)])
            .args(["--session-addr", &addr(peers.session_addr)])
            .args(["--group-addr", &addr(peers.group_addr)])
            .args(["--database-url", database_url])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env("IDMESH_API_KEY", key)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("idmesh starts");
        let stderr = child.stderr.take().expect("piped");
        let (started, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut log = String::new();
            while let Some(Ok(line)) = lines.next() {
                log.push_str(&line);
                log.push('\n');
                if line.contains("user-service listening") {
                    let _ = started.send(Ok(()));
                    // Keep reading, so that the child never blocks on a full pipe.
                    lines.for_each(drop);
                    return;
                }
            }
            let _ = started.send(Err(log));
        });
        match listening.recv_timeout(PHASE) {
            Ok(Ok(())) => UserService(child),
            Ok(Err(log)) => panic!("user-service stopped before serving:\n{log}"),
            Err(_) => panic!("user-service did not serve within {PHASE:?}"),
        }
    }

    /// SIGKILL: no drain, no shutdown hook, whatever was in flight.
    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("the child is reaped");
    }
}

impl Drop for UserService {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The users of the directory named `user_name` (0 or 1).
async fn find(http: &reqwest::Client, base: &str, token: &str, user_name: &str) -> Vec<Value> {
    // userNames here are letters, digits, `-`, `@` and `.`: only the spaces
    // and quotes of the filter need escaping.
    let filter = format!("userName%20eq%20%22{user_name}%22");
    let response = http
        .get(format!("{base}/Users?filter={filter}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("a ListResponse");
    body["Resources"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_service_killed_mid_load_loses_no_acknowledged_write_and_half_applies_none() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let user_listen = unused_addr();
    let (mesh, key) = launch(
        &[Target::Directories, Target::Groups, Target::Sessions, Target::Gateway],
        |config| {
            config.database_url = database.url().to_owned();
            config.user_addr = user_listen.to_string();
        },
    )
    .await;
    let users = UserService::start(user_listen, database.url(), &mesh, &key);
    let http_addr = mesh.http_addr.expect("the gateway");
    let (base, token) = directory(http_addr, mesh.directory_addr.expect("directory-service"), &key).await;

    let load = Load::start(&base, &token, 4);
    let at_kill = load.until(0, 30, "acknowledged", success).await;
    users.kill();
    let after_kill = load
        .until(at_kill, 5, "refused while user-service is down", |a| !success(a))
        .await;
    let users = UserService::start(user_listen, database.url(), &mesh, &key);
    load.until(after_kill, 30, "acknowledged after the restart", success)
        .await;
    let answers = load.finish().await;

    let http = reqwest::Client::new();
    let mut refused = 0;
    for answer in &answers {
        let found = find(&http, &base, &token, &answer.user_name).await;
        if success(answer) {
            assert_eq!(found.len(), 1, "{answer:?} was acknowledged");
        } else {
            refused += 1;
            assert!(found.len() <= 1, "{answer:?}: {found:?}");
        }
        for user in &found {
            let expected = new_user(&answer.user_name);
            for attribute in ["userName", "name", "emails", "title", "active"] {
                assert_eq!(
                    user[attribute], expected[attribute],
                    "{answer:?}: {attribute} of {user}"
                );
            }
        }
    }
    assert!(refused >= 5, "the kill was felt: {refused} refused");
    drop(users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_restarted_session_checks_fail_closed_then_recover_without_restarting_the_mesh() {
    let mut redis = tokio::task::spawn_blocking(PrivateRedis::start)
        .await
        .expect("Redis starts");
    let database = ScratchDatabase::new(Backend::Sqlite);
    let (mesh, key) = launch(&[Target::Directories, Target::Sessions], |config| {
        config.database_url = database.url().to_owned();
        config.redis_url = Some(redis.url());
    })
    .await;
    let mut sessions = SessionServiceClient::new(admin_channel(mesh.session_addr.expect("session-service"), &key));
    let create = CreateSessionRequest {
        directory_id: "faults".to_owned(),
        user_id: "ada".to_owned(),
        ttl: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        attributes: Default::default(),
    };
    let check = |id: &str| CheckSessionRequest {
        session_id: id.to_owned(),
    };
    let session = sessions
        .create_session(create.clone())
        .await
        .expect("CreateSession")
        .into_inner();
    let valid = sessions.check_session(check(&session.id)).await.expect("CheckSession");
    assert_eq!(valid.into_inner().status(), SessionStatus::Valid);

    redis.stop();
    for _ in 0..5 {
        let refused = sessions
            .check_session(check(&session.id))
            .await
            .expect_err("no answer without Redis");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    }
    let refused = sessions.create_session(create.clone()).await.expect_err("no Redis");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    redis = tokio::task::spawn_blocking(move || {
        redis.start_again();
        redis
    })
    .await
    .expect("Redis starts again");
    let deadline = Instant::now() + PHASE;
    loop {
        match sessions.check_session(check(&session.id)).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().status(), SessionStatus::Valid, "kept by Redis");
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "fails closed: {status:?}"),
        }
        assert!(Instant::now() < deadline, "session-service did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = sessions
        .create_session(create)
        .await
        .expect("CreateSession after the restart")
        .into_inner();
    let valid = sessions.check_session(check(&later.id)).await.expect("CheckSession");
    assert_eq!(valid.into_inner().status(), SessionStatus::Valid);
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_restarted_under_load_requests_answer_503_with_retry_after_then_recover() {
    let postgres = Arc::new(
        tokio::task::spawn_blocking(PrivatePostgres::start)
            .await
            .expect("PostgreSQL starts"),
    );
    let (mesh, key) = launch(&Target::ALL, |config| {
        config.database_url = postgres.url("idmesh");
    })
    .await;
    let http_addr = mesh.http_addr.expect("the gateway");
    let (base, token) = directory(http_addr, mesh.directory_addr.expect("directory-service"), &key).await;

    let load = Load::start(&base, &token, 8);
    let at_stop = load.until(0, 20, "acknowledged", success).await;
    let stopping = Arc::clone(&postgres);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .expect("PostgreSQL stops");
    let after_stop = load
        .until(at_stop, 10, "refused while PostgreSQL is down", |a| !success(a))
        .await;
    let starting = Arc::clone(&postgres);
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .expect("PostgreSQL starts again");
    load.until(after_stop, 20, "acknowledged after the restart", success)
        .await;
    let answers = load.finish().await;

    let refused: Vec<&Answer> = answers.iter().filter(|a| !success(a)).collect();
    assert!(!refused.is_empty());
    for answer in refused {
        assert!(
            answer.status == 503 && answer.retry_after,
            "answered {} (Retry-After: {}) while PostgreSQL was down, not 503 with Retry-After",
            answer.status,
            answer.retry_after
        );
    }
}
