//! The `idmesh` binary as people run it: `idmesh dev` from the README, and
//! the admin commands against a running directory-service.

use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use idmesh::{MeshConfig, Target};
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{CheckSessionRequest, CreateSessionRequest, SessionStatus};
use idmesh_testkit::{Backend, ScratchDatabase, redis_url, unused_addr};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const IDMESH: &str = env!("CARGO_BIN_EXE_idmesh");

/// The variables that would point a command at another mesh than the
/// test's own.
const IDMESH_VARIABLES: [&str; 11] = [
    "IDMESH_CONFIG",
    "IDMESH_DATA_DIR",
    "IDMESH_DIRECTORY_ADDR",
    "IDMESH_ROLE_ADDR",
    "IDMESH_EVENT_ADDR",
    "IDMESH_PUBLIC_URL",
    "IDMESH_HTTP_ADDR",
    "IDMESH_API_KEY",
    "IDMESH_API_KEY_FILE",
    "IDMESH_BOOTSTRAP_ADMIN_KEY",
    "IDMESH_BOOTSTRAP_ADMIN_KEY_FILE",
];

/// `idmesh` with none of [`IDMESH_VARIABLES`] inherited from the test run.
fn idmesh() -> Command {
    let mut command = Command::new(IDMESH);
    for variable in IDMESH_VARIABLES {
        command.env_remove(variable);
    }
    command
}

/// `idmesh dev` with its data in `data_dir`, on its default internal ports
/// (picked by the kernel) and an ephemeral HTTP port.
fn start_dev(data_dir: &std::path::Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = idmesh()
        .args(["dev", "--data-dir"])
        .arg(data_dir)
        .args(["--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("idmesh dev starts");
    let lines = read_lines(child.stdout.take().expect("piped stdout"));
    (child, lines)
}

/// [`start_dev`] with `args` and the variables `env` added, and its log
/// lines (stderr) as well.
fn start_dev_logging(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = idmesh()
        .args(["dev", "--data-dir"])
        .arg(data_dir)
        .args(["--http-addr", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("idmesh dev starts");
    let lines = read_lines(child.stdout.take().expect("piped stdout"));
    let logs = read_lines(child.stderr.take().expect("piped stderr"));
    (child, lines, logs)
}

/// The lines of `output`, read on a thread of their own.
fn read_lines(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(60))
        .expect("idmesh dev prints a line")
}

fn value_after<'a>(line: &'a str, label: &str) -> &'a str {
    line.strip_prefix(label)
        .unwrap_or_else(|| panic!("expected {label:?}, got {line:?}"))
        .trim()
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("idmesh exits");
    assert!(exit.success(), "idmesh exits cleanly on SIGTERM: {exit}");
}

#[tokio::test]
async fn idmesh_dev_prints_a_working_scim_url_and_token_then_stops_on_sigterm() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let (child, lines) = start_dev(data_dir.path());
    let base_url = value_after(&next_line(&lines), "SCIM base URL:").to_owned();
    let token = value_after(&next_line(&lines), "Bearer token:").to_owned();
    let api_key = value_after(&next_line(&lines), "API key:").to_owned();
    assert!(api_key.starts_with("idmk_"));
    let key_file = data_dir.path().join("api-key");
    assert_eq!(
        std::fs::metadata(&key_file).expect("the key file").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&key_file).expect("readable").trim(), api_key);

    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base_url}/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(json!({"userName": "dev@example.com"}).to_string())
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(created.status().as_u16(), 201);
    stop(child);

    // A second start reuses the data: same directory, no new token.
    let (child, lines) = start_dev(data_dir.path());
    let again = value_after(&next_line(&lines), "SCIM base URL:").to_owned();
    assert_eq!(again.rsplit('/').next(), base_url.rsplit('/').next());
    assert!(!next_line(&lines).starts_with("Bearer token:"));
    assert_eq!(
        value_after(&next_line(&lines), "API key:"),
        api_key,
        "the same admin key"
    );
    stop(child);
}

// Multi-threaded: the admin commands run as blocking child processes while
// the mesh serves them from this test's runtime.
/// Runs `idmesh` with `args`, returning its exit code, stdout and stderr.
fn run_idmesh(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = idmesh()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("idmesh runs");
    (
        output.status.code().expect("an exit code"),
        String::from_utf8(output.stdout).expect("UTF-8 output"),
        String::from_utf8(output.stderr).expect("UTF-8 output"),
    )
}

// Multi-threaded: the admin command runs as a blocking child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_create_without_addresses_finds_the_running_dev_and_prints_a_working_url() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let (child, lines) = start_dev(data_dir.path());
    let first_url = value_after(&next_line(&lines), "SCIM base URL:").to_owned();
    let dev_authority = first_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("an http URL")
        .to_owned();

    let data_dir_arg = data_dir.path().to_str().expect("a UTF-8 path");
    let (code, stdout, stderr) = run_idmesh(
        &[
            "directory",
            "create",
            "--name",
            "Found",
            "--json",
            "--data-dir",
            data_dir_arg,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).expect("JSON output");
    let (base_url, token) = (
        created["scim_base_url"].as_str().expect("scim_base_url"),
        created["token"].as_str().expect("token"),
    );
    assert!(
        base_url.starts_with(&format!("http://{dev_authority}/scim/v2/")),
        "{base_url} is on the port dev bound, {dev_authority}"
    );
    let listed = reqwest::Client::new()
        .get(format!("{base_url}/Users"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(listed.status().as_u16(), 200);

    // An explicit address still wins over the dev state file.
    let (code, _, stderr) = run_idmesh(
        &[
            "directory",
            "list",
            "--data-dir",
            data_dir_arg,
            "--directory-addr",
            "127.0.0.1:1",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");

    stop(child);
    assert!(
        !data_dir.path().join("dev.json").exists(),
        "a clean stop removes the state file"
    );
}

#[test]
fn an_invalid_public_url_stops_serve_with_exit_code_64_naming_the_key() {
    let (code, _, stderr) = run_idmesh(&["serve", "--targets", "gateway", "--public-url", "not a url"], &[]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("public_url"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn an_unknown_key_in_the_config_file_stops_serve_with_exit_code_64() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("idmesh.toml");
    std::fs::write(&file, "databse_url = \"postgres://db/idmesh\"\n").expect("written");
    let file = file.to_str().expect("a UTF-8 path");
    let (code, _, stderr) = run_idmesh(&["serve", "--targets", "gateway", "--config", file], &[]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("databse_url") && stderr.contains("line 1"), "{stderr}");

    let missing = dir.path().join("missing.toml");
    let (code, _, stderr) = run_idmesh(
        &["serve", "--targets", "gateway"],
        &[("IDMESH_CONFIG", missing.to_str().expect("a UTF-8 path"))],
    );
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn config_print_layers_file_environment_and_flags_and_masks_passwords() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("idmesh.toml");
    std::fs::write(
        &file,
        r#"
database_url = "postgres://app:s3cret@db.internal:5432/idmesh"
redis_url = "redis://:hunter2@cache:6379"
public_url = "https://file.example.com"
http_addr = "127.0.0.1:9000"
group_patch_member_limit = 500
"#,
    )
    .expect("written");
    let file = file.to_str().expect("a UTF-8 path");
    let (code, stdout, stderr) = run_idmesh(
        &["config", "print", "--config", file, "--group-patch-member-limit", "7"],
        &[
            ("IDMESH_PUBLIC_URL", "https://env.example.com"),
            ("IDMESH_GROUP_PATCH_MEMBER_LIMIT", "9"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("s3cret") && !stdout.contains("hunter2"), "{stdout}");
    for line in [
        r#"database_url = "postgres://app:***@db.internal:5432/idmesh""#,
        r#"redis_url = "redis://:***@cache:6379""#,
        r#"public_url = "https://env.example.com""#,
        r#"http_addr = "127.0.0.1:9000""#,
        r#"group_patch_member_limit = 7"#,
        r#"directory_listen_addr = "0.0.0.0:50051""#,
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} in:\n{stdout}");
    }

    let (code, stdout, stderr) = run_idmesh(&["config", "print", "--dev"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.lines().any(|l| l == r#"directory_listen_addr = "127.0.0.1:0""#),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_create_json_gives_a_token_the_gateway_accepts() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let admin_key = idmesh::generate_api_key().expect("randomness");
    let mut config = MeshConfig::loopback(database.url().to_owned());
    config.bootstrap_admin_key = Some(admin_key.clone());
    let shutdown = CancellationToken::new();
    let mesh = idmesh::launch(&Target::ALL, config, shutdown.clone())
        .await
        .expect("the mesh starts");
    let (http_addr, directory_addr) = (
        mesh.http_addr.expect("gateway"),
        mesh.directory_addr.expect("directories"),
    );
    let running = tokio::spawn(mesh.wait());

    let run = |args: &[&str]| {
        let output = idmesh()
            .args(args)
            .args(["--directory-addr", &directory_addr.to_string()])
            .args(["--public-url", &format!("http://{http_addr}")])
            .env("IDMESH_API_KEY", &admin_key)
            .output()
            .expect("idmesh runs");
        assert!(
            output.status.success(),
            "idmesh {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    };
    let created: Value =
        serde_json::from_str(&run(&["directory", "create", "--name", "Acme", "--json"])).expect("JSON output");
    let (id, base_url, token) = (
        created["id"].as_str().expect("id"),
        created["scim_base_url"].as_str().expect("scim_base_url"),
        created["token"].as_str().expect("token"),
    );
    assert_eq!(base_url, format!("http://{http_addr}/scim/v2/{id}"));

    let listed = reqwest::Client::new()
        .get(format!("{base_url}/Users"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(listed.status().as_u16(), 200);

    let directories: Value = serde_json::from_str(&run(&["directory", "list", "--json"])).expect("JSON output");
    assert_eq!(directories[0]["id"], json!(id));
    let issued: Value = serde_json::from_str(&run(&["token", "issue", "--directory", id, "--json"])).expect("JSON");
    let token_id = issued["id"].as_str().expect("token id");
    assert!(run(&["token", "revoke", "--directory", id, "--token", token_id]).contains(token_id));
    let tokens: Value = serde_json::from_str(&run(&["token", "list", "--directory", id, "--json"])).expect("JSON");
    assert_eq!(tokens.as_array().map(Vec::len), Some(2));

    let key: Value = serde_json::from_str(&run(&[
        "apikey",
        "create",
        "--name",
        "billing",
        "--scope",
        "sessions:check",
        "revocations:watch",
        "--directory",
        id,
        "--expires-in-days",
        "30",
        "--json",
    ]))
    .expect("JSON");
    assert!(key["api_key"].as_str().expect("the key").starts_with("idmk_"));
    assert_eq!(key["scopes"], json!(["sessions:check", "revocations:watch"]));
    assert_eq!(key["directory_ids"], json!([id]));
    let key_id = key["id"].as_str().expect("key id");
    let listed = run(&["apikey", "list"]);
    assert!(listed.contains(key_id) && listed.contains("billing"), "{listed}");
    assert!(
        !listed.contains(key["api_key"].as_str().expect("the key")),
        "never a secret"
    );
    assert!(run(&["apikey", "revoke", "--id", key_id]).contains(key_id));
    let keys: Value = serde_json::from_str(&run(&["apikey", "list", "--json"])).expect("JSON");
    let revoked = keys
        .as_array()
        .expect("a list")
        .iter()
        .find(|k| k["id"] == json!(key_id))
        .expect("listed");
    assert!(revoked["revoked_at"].is_string());

    let (code, _, stderr) = run_idmesh(
        &[
            "apikey",
            "create",
            "--name",
            "x",
            "--scope",
            "users:delete",
            "--directory-addr",
            &directory_addr.to_string(),
        ],
        &[("IDMESH_API_KEY", &admin_key)],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("users:delete"), "names the unknown scope: {stderr}");

    shutdown.cancel();
    running.await.expect("joined").expect("the mesh stops cleanly");
}

/// Every target in this test process on SQLite, and what the admin
/// commands need to reach it: the bootstrap admin key and the connection
/// flags (directory-service, role-mapping-service, events-service and the
/// public URL).
struct AdminMesh {
    admin_key: String,
    connection: Vec<String>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    _database: ScratchDatabase,
}

impl AdminMesh {
    async fn start() -> AdminMesh {
        let database = ScratchDatabase::new(Backend::Sqlite);
        let admin_key = idmesh::generate_api_key().expect("randomness");
        let mut config = MeshConfig::loopback(database.url().to_owned());
        config.bootstrap_admin_key = Some(admin_key.clone());
        let shutdown = CancellationToken::new();
        let mesh = idmesh::launch(&Target::ALL, config, shutdown.clone())
            .await
            .expect("the mesh starts");
        let connection = vec![
            "--directory-addr".to_owned(),
            mesh.directory_addr.expect("directories").to_string(),
            "--role-addr".to_owned(),
            mesh.role_addr.expect("roles").to_string(),
            "--event-addr".to_owned(),
            mesh.event_addr.expect("events").to_string(),
            "--public-url".to_owned(),
            format!("http://{}", mesh.http_addr.expect("gateway")),
        ];
        AdminMesh {
            admin_key,
            connection,
            shutdown,
            running: tokio::spawn(mesh.wait()),
            _database: database,
        }
    }

    /// `idmesh` with the connection flags and the admin key.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = idmesh();
        command
            .args(args)
            .args(&self.connection)
            .env("IDMESH_API_KEY", &self.admin_key);
        command
    }

    /// Runs `idmesh` with `args` to its end.
    fn attempt(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("idmesh runs")
    }

    /// Runs `idmesh` with `args`, which must succeed; its standard output.
    fn run(&self, args: &[&str]) -> String {
        let output = self.attempt(args);
        assert!(
            output.status.success(),
            "idmesh {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.expect("joined").expect("the mesh stops cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_mapping_and_profile_commands_drive_role_mapping_service() {
    let mesh = AdminMesh::start().await;
    let run = |args: &[&str]| mesh.run(args);

    let created: Value =
        serde_json::from_str(&run(&["directory", "create", "--name", "Acme", "--json"])).expect("JSON output");
    let (directory, base_url, token) = (
        created["id"].as_str().expect("id"),
        created["scim_base_url"].as_str().expect("scim_base_url"),
        created["token"].as_str().expect("token"),
    );
    let scim = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        scim.post(format!("{base_url}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let user: Value = post("/Users", json!({"userName": "ada@example.com", "displayName": "Ada"}))
        .await
        .expect("the gateway answers")
        .json()
        .await
        .expect("JSON");
    let user_id = user["id"].as_str().expect("a user id");
    let group: Value = post(
        "/Groups",
        json!({"displayName": "Admins", "members": [{"value": user_id}]}),
    )
    .await
    .expect("the gateway answers")
    .json()
    .await
    .expect("JSON");
    let group_id = group["id"].as_str().expect("a group id");

    run(&["role", "create", "--key", "admin", "--name", "Administrator"]);
    run(&["role", "create", "--key", "member"]);
    let roles: Value = serde_json::from_str(&run(&["role", "list", "--json"])).expect("JSON");
    assert_eq!(
        roles,
        json!([
            {"key": "admin", "name": "Administrator", "description": ""},
            {"key": "member", "name": "member", "description": ""}
        ])
    );

    let rule = format!("{group_id}=admin@1");
    let set: Value = serde_json::from_str(&run(&[
        "mapping",
        "set",
        "--directory",
        directory,
        "--mode",
        "single",
        "--group-rule",
        &rule,
        "--revoke-sessions-on-role-removal",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(set["version"], json!(1));
    assert_eq!(set["revoke_sessions_on_role_removal"], json!(true));
    let shown: Value =
        serde_json::from_str(&run(&["mapping", "show", "--directory", directory, "--json"])).expect("JSON");
    assert_eq!(
        shown["rules"],
        json!([{"group_id": group_id, "roles": ["admin"], "precedence": 1}])
    );
    assert_eq!(shown["mode"], json!("single"));
    assert_eq!(shown["revoke_sessions_on_role_removal"], json!(true));

    // A proposed mapping from a file: the admin rule goes, member is the default.
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(
        file.path(),
        json!({"mode": "multiple", "default_role": "member", "rules": []}).to_string(),
    )
    .expect("written");
    let path = file.path().to_str().expect("a UTF-8 path");
    let preview: Value = serde_json::from_str(&run(&[
        "mapping",
        "preview",
        "--directory",
        directory,
        "--file",
        path,
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(
        preview,
        json!([{"user_id": user_id, "user_name": "ada@example.com", "gained": ["member"], "lost": ["admin"]}])
    );

    let profile: Value =
        serde_json::from_str(&run(&["profile", "show", "--directory", directory, "--user", user_id])).expect("JSON");
    assert_eq!(profile["roles"], json!(["admin"]), "the preview applied nothing");
    assert_eq!(profile["active"], json!(true));

    let refused = mesh.attempt(&["role", "delete", "--key", "admin"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is used by the role mappings") && stderr.contains(directory),
        "{stderr}"
    );
    run(&["mapping", "set", "--directory", directory, "--file", path]);
    run(&["role", "delete", "--key", "admin"]);
    let profile: Value =
        serde_json::from_str(&run(&["profile", "show", "--directory", directory, "--user", user_id])).expect("JSON");
    assert_eq!(profile["roles"], json!(["member"]));

    mesh.stop().await;
}

/// The next JSON line `idmesh events tail` printed.
fn next_event(lines: &mpsc::Receiver<String>) -> Value {
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("events tail prints an event");
    serde_json::from_str(&line).unwrap_or_else(|err| panic!("not a JSON line: {line:?}: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_prints_each_event_as_a_json_line_from_a_sequence_or_from_now() {
    let mesh = AdminMesh::start().await;
    let created = mesh
        .command(&["directory", "create", "--name", "Acme", "--json"])
        .output()
        .expect("idmesh runs");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let created: Value = serde_json::from_slice(&created.stdout).expect("JSON output");
    let (directory, base_url, token) = (
        created["id"].as_str().expect("id").to_owned(),
        created["scim_base_url"].as_str().expect("scim_base_url").to_owned(),
        created["token"].as_str().expect("token").to_owned(),
    );
    let scim = reqwest::Client::new();
    let create_user = |user_name: String| {
        scim.post(format!("{base_url}/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(json!({"userName": user_name}).to_string())
            .send()
    };
    let tail = |extra: &[&str]| {
        let mut child = mesh
            .command(&["events", "tail", "--directory", &directory])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("events tail starts");
        let lines = read_lines(child.stdout.take().expect("piped stdout"));
        (child, lines)
    };

    let first = create_user("first@example.com".to_owned())
        .await
        .expect("the gateway answers");
    assert_eq!(first.status().as_u16(), 201);
    let (mut from_start, lines) = tail(&["--from", "0"]);
    let event = next_event(&lines);
    assert_eq!(
        (
            event["sequence"].as_i64(),
            event["type"].as_str(),
            event["directory_id"].as_str()
        ),
        (Some(1), Some("token.issued"), Some(directory.as_str())),
        "`directory create` issued the directory's first token"
    );
    let event = next_event(&lines);
    assert_eq!(
        (event["sequence"].as_i64(), event["type"].as_str()),
        (Some(2), Some("user.created"))
    );
    assert_eq!(event["resource"]["userName"], "first@example.com");
    create_user("second@example.com".to_owned())
        .await
        .expect("the gateway answers");
    let event = next_event(&lines);
    assert_eq!(event["sequence"], 3, "a live event follows");
    assert_eq!(event["resource"]["userName"], "second@example.com");
    from_start.kill().expect("tail stops");
    from_start.wait().expect("tail exits");

    // Without --from, only what happens from now on: users keep coming
    // until the tail has started, and the first it prints is a new one.
    let (mut from_now, lines) = tail(&[]);
    let mut n = 0;
    let event = loop {
        n += 1;
        create_user(format!("later-{n}@example.com"))
            .await
            .expect("the gateway answers");
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(300)) {
            break serde_json::from_str::<Value>(&line).expect("a JSON line");
        }
        assert!(n < 100, "events tail printed nothing");
    };
    assert!(event["sequence"].as_i64().expect("a sequence") > 3, "{event}");
    assert!(
        event["resource"]["userName"]
            .as_str()
            .expect("a userName")
            .starts_with("later-")
    );
    from_now.kill().expect("tail stops");
    from_now.wait().expect("tail exits");

    let unknown = mesh
        .command(&["events", "tail", "--directory", &directory, "--type", "user.exploded"])
        .output()
        .expect("idmesh runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown event type"));

    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_commands_add_list_rotate_replay_and_remove_an_endpoint() {
    let mesh = AdminMesh::start().await;
    let run = |args: &[&str]| mesh.run(args);
    let created: Value =
        serde_json::from_str(&run(&["directory", "create", "--name", "Acme", "--json"])).expect("JSON output");
    let directory = created["id"].as_str().expect("id");

    // Nothing listens on port 9: every delivery fails and is recorded.
    let added: Value = serde_json::from_str(&run(&[
        "webhook",
        "add",
        "--url",
        "http://127.0.0.1:9/hook",
        "--directory",
        directory,
        "--type",
        "token.issued,token.revoked",
        "--json",
    ]))
    .expect("JSON output");
    let id = added["id"].as_str().expect("an id");
    assert!(added["secret"].as_str().expect("a secret").starts_with("whsec_"));
    assert_eq!(added["types"], json!(["token.issued", "token.revoked"]));

    // The directory's first event (its token) was logged before the
    // endpoint existed: replay it.
    let replayed = run(&["webhook", "replay", id, "--from", "1"]);
    assert!(replayed.contains(id), "{replayed}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let attempts = loop {
        let lines = run(&["webhook", "attempts", id]);
        if !lines.is_empty() {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "no attempt recorded");
        std::thread::sleep(Duration::from_millis(100));
    };
    let first: Value = serde_json::from_str(attempts.lines().last().expect("a line")).expect("a JSON line");
    assert_eq!(
        (
            first["sequence"].as_i64(),
            first["type"].as_str(),
            first["status_code"].as_i64()
        ),
        (Some(1), Some("token.issued"), Some(0))
    );
    assert!(!first["error"].as_str().expect("an error").is_empty(), "{first}");

    let listed: Value = serde_json::from_str(&run(&["webhook", "list", "--json"])).expect("JSON output");
    let progress = &listed[0]["progress"][0];
    assert_eq!(progress["directory_id"], directory);
    assert_eq!(progress["delivered_through"], 0);
    assert!(progress["failed_attempts"].as_i64().expect("a count") >= 1, "{listed}");
    let text = run(&["webhook", "list", "--directory", directory]);
    assert!(
        text.starts_with(id) && text.contains("http://127.0.0.1:9/hook"),
        "{text}"
    );

    let rotated = run(&["webhook", "rotate-secret", id, "--keep-previous-hours", "1"]);
    assert!(rotated.starts_with("Secret: whsec_"), "{rotated}");
    assert!(rotated.contains("signs too until"), "{rotated}");
    assert_ne!(
        rotated.lines().next(),
        Some(format!("Secret: {}", added["secret"].as_str().unwrap_or_default()).as_str())
    );

    assert!(run(&["webhook", "remove", id]).contains(id));
    assert_eq!(run(&["webhook", "list", "--json"]).trim(), "[]");
    let gone = mesh.attempt(&["webhook", "remove", id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));

    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_rate_limit_sets_and_clears_the_rate_the_gateway_applies() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let admin_key = idmesh::generate_api_key().expect("randomness");
    let mut config = MeshConfig::loopback(database.url().to_owned());
    config.bootstrap_admin_key = Some(admin_key.clone());
    // A default of 1 request a second with bursts of 2, and a new rate
    // applied within half a second rather than 10.
    config.traffic.default_rate.per_second = NonZeroU32::MIN;
    config.traffic.default_rate.burst = NonZeroU32::new(2).expect("not zero");
    config.token_cache_ttl = Duration::from_millis(500);
    let shutdown = CancellationToken::new();
    let mesh = idmesh::launch(&Target::ALL, config, shutdown.clone())
        .await
        .expect("the mesh starts");
    let (http_addr, directory_addr) = (
        mesh.http_addr.expect("gateway"),
        mesh.directory_addr.expect("directories"),
    );
    let running = tokio::spawn(mesh.wait());
    let connection = [
        "--directory-addr".to_owned(),
        directory_addr.to_string(),
        "--public-url".to_owned(),
        format!("http://{http_addr}"),
    ];
    let run = |args: &[&str]| {
        let mut args: Vec<&str> = args.to_vec();
        args.extend(connection.iter().map(String::as_str));
        let (code, stdout, stderr) = run_idmesh(&args, &[("IDMESH_API_KEY", &admin_key)]);
        assert_eq!(code, 0, "idmesh {args:?}: {stderr}");
        stdout
    };
    let created: Value =
        serde_json::from_str(&run(&["directory", "create", "--name", "Acme", "--json"])).expect("JSON output");
    let (id, base_url, token) = (
        created["id"].as_str().expect("id"),
        created["scim_base_url"].as_str().expect("scim_base_url"),
        created["token"].as_str().expect("token"),
    );
    assert!(
        run(&["directory", "list"]).contains("\tdefault"),
        "no rate of its own yet"
    );

    let set: Value = serde_json::from_str(&run(&[
        "directory",
        "rate-limit",
        id,
        "--per-second",
        "1000",
        "--burst",
        "1000",
        "--json",
    ]))
    .expect("JSON output");
    let own_rate = json!({"requests_per_second": 1000, "burst": 1000});
    assert_eq!(set["rate_limit"], own_rate);
    let listed: Value = serde_json::from_str(&run(&["directory", "list", "--json"])).expect("JSON output");
    assert_eq!(listed[0]["rate_limit"], own_rate);
    assert!(run(&["directory", "list"]).contains("1000/s burst 1000"));

    // The gateway resolves the token for the first time now, with the
    // directory's own burst: far more than the default's 2 go through.
    let http = reqwest::Client::new();
    let list_users = || async {
        http.get(format!("{base_url}/Users"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the gateway answers")
            .status()
            .as_u16()
    };
    for _ in 0..10 {
        assert_eq!(list_users().await, 200);
    }

    let cleared = run(&["directory", "rate-limit", id, "--default"]);
    assert!(cleared.contains("rate default"), "{cleared}");
    let listed: Value = serde_json::from_str(&run(&["directory", "list", "--json"])).expect("JSON output");
    assert_eq!(listed[0]["rate_limit"], Value::Null);
    // Within the token cache time the default applies again.
    let started = std::time::Instant::now();
    while list_users().await != 429 {
        assert!(started.elapsed() < Duration::from_secs(5), "no 429 after 5 seconds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (code, _, stderr) = run_idmesh(
        &[
            "directory",
            "rate-limit",
            "no-such-directory",
            "--per-second",
            "1",
            "--burst",
            "1",
            "--directory-addr",
            &directory_addr.to_string(),
        ],
        &[("IDMESH_API_KEY", &admin_key)],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("directory no-such-directory not found"), "{stderr}");

    shutdown.cancel();
    running.await.expect("joined").expect("the mesh stops cleanly");
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> String {
    unused_addr().to_string()
}

fn spawn_serve(args: &[&str], env: &[(&str, &str)]) -> Child {
    idmesh()
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("idmesh serve starts")
}

/// Runs `idmesh` until it succeeds (a service may still be starting) and
/// returns its stdout.
fn retry_idmesh(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        let (code, stdout, stderr) = run_idmesh(args, env);
        if code == 0 {
            return stdout;
        }
        last = stderr;
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("idmesh {args:?} kept failing: {last}");
}

// Multi-threaded: the admin commands run as blocking child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_in_its_own_process_calls_with_its_own_key_from_a_service_keys_dir() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let database_url = database.url().to_owned();
    // As the Helm chart mounts its Secret: one file per service, and the
    // hidden entries a Secret volume has beside them.
    let keys = tempfile::tempdir().expect("a temporary directory");
    for service in ["gateway", "users", "groups", "sessions", "events"] {
        let key = idmesh::generate_api_key().expect("randomness");
        std::fs::write(keys.path().join(service), format!("{key}\n")).expect("written");
    }
    std::fs::create_dir(keys.path().join("..data")).expect("a hidden directory");
    let key_file = |service: &str| keys.path().join(service).display().to_string();
    let admin_key = idmesh::generate_api_key().expect("randomness");
    let [directories, users, groups, sessions, events, http] = std::array::from_fn(|_| free_addr());
    let peers = [
        "--directory-addr",
        directories.as_str(),
        "--user-addr",
        users.as_str(),
        "--group-addr",
        groups.as_str(),
        "--session-addr",
        sessions.as_str(),
    ];
    let keys_dir = keys.path().display().to_string();
    let mut processes = vec![spawn_serve(
        &[
            "--targets",
            "directories",
            "--database-url",
            &database_url,
            "--directory-listen-addr",
            &directories,
            "--service-keys-dir",
            &keys_dir,
        ],
        &[("IDMESH_BOOTSTRAP_ADMIN_KEY", &admin_key)],
    )];
    for (target, listen_flag, listen_addr) in [
        ("users", "--user-listen-addr", &users),
        ("groups", "--group-listen-addr", &groups),
        ("sessions", "--session-listen-addr", &sessions),
        ("events", "--event-listen-addr", &events),
        ("gateway", "--http-addr", &http),
    ] {
        let mut args = vec![
            "--targets",
            target,
            "--database-url",
            &database_url,
            listen_flag,
            listen_addr,
        ];
        args.extend(peers);
        processes.push(spawn_serve(&args, &[("IDMESH_API_KEY_FILE", &key_file(target))]));
    }

    // directory-service installed each key with its service's scopes.
    let listed: Value = serde_json::from_str(&retry_idmesh(
        &["apikey", "list", "--json", "--directory-addr", &directories],
        &[("IDMESH_API_KEY", &admin_key)],
    ))
    .expect("JSON output");
    let scopes_of = |name: &str| -> Vec<String> {
        let key = listed
            .as_array()
            .expect("a list")
            .iter()
            .find(|key| key["name"] == name)
            .unwrap_or_else(|| panic!("no key named {name}: {listed}"));
        serde_json::from_value(key["scopes"].clone()).expect("scopes")
    };
    assert_eq!(
        scopes_of("idmesh:group-service"),
        ["apikeys:authenticate", "users:read"]
    );
    assert_eq!(
        scopes_of("idmesh:events-service"),
        ["apikeys:authenticate", "events:drain"]
    );

    // Each hop authenticates: the gateway at directory-service and
    // user-service, group-service at user-service, events-service at both.
    let created: Value = serde_json::from_str(&retry_idmesh(
        &[
            "directory",
            "create",
            "--name",
            "Split",
            "--json",
            "--directory-addr",
            &directories,
            "--public-url",
            &format!("http://{http}"),
        ],
        &[("IDMESH_API_KEY", &admin_key)],
    ))
    .expect("JSON output");
    let (directory_id, base_url, token) = (
        created["id"].as_str().expect("id"),
        created["scim_base_url"].as_str().expect("scim_base_url"),
        created["token"].as_str().expect("token"),
    );
    let http_client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http_client
            .post(format!("{base_url}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let mut user = None;
    for _ in 0..150 {
        let response = post("/Users", json!({"userName": "split@example.com"})).await;
        if let Ok(response) = response
            && response.status().as_u16() == 201
        {
            user = Some(response.json::<Value>().await.expect("JSON"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let user = user.expect("the gateway creates a user once every service is up");
    let user_id = user["id"].as_str().expect("an id");
    let group = post(
        "/Groups",
        json!({"displayName": "Split", "members": [{"value": user_id}]}),
    )
    .await
    .expect("the gateway answers");
    assert_eq!(
        group.status().as_u16(),
        201,
        "group-service looked the member up at user-service"
    );

    let mut tail = idmesh()
        .args(["events", "tail", "--directory", directory_id, "--from", "0"])
        .args(["--directory-addr", &directories, "--event-addr", &events])
        .env("IDMESH_API_KEY", &admin_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("events tail starts");
    let lines = read_lines(tail.stdout.take().expect("piped stdout"));
    let mut types: Vec<String> = (0..4)
        .map(|_| next_event(&lines)["type"].as_str().expect("a type").to_owned())
        .collect();
    // A token's events are ordered against no other service's (the drain
    // appends each pass's token batch first, whenever it was pulled), so
    // only the order of the user's and the group's events is asserted.
    let token = types.iter().position(|kind| kind == "token.issued");
    types.remove(token.expect("the directory's token was logged"));
    assert_eq!(types, ["user.created", "group.created", "member.added"]);
    tail.kill().expect("tail stops");
    tail.wait().expect("tail exits");

    for process in processes {
        stop(process);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_gateway_and_the_services_as_separate_processes() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let database_url = database.url().to_owned();
    let (directory_addr, user_addr, group_addr, http_addr) = (free_addr(), free_addr(), free_addr(), free_addr());
    let metrics_addr = free_addr();
    let admin_key = idmesh::generate_api_key().expect("randomness");
    let services = spawn_serve(
        &[
            "--metrics-addr",
            &metrics_addr,
            "--targets",
            "directories,users,groups",
            "--database-url",
            &database_url,
            "--directory-listen-addr",
            &directory_addr,
            "--user-listen-addr",
            &user_addr,
            "--group-listen-addr",
            &group_addr,
        ],
        &[("IDMESH_BOOTSTRAP_ADMIN_KEY", &admin_key)],
    );
    // The gateway calls with a key of its own, with only the scopes it uses.
    let mut gateway_key = None;
    for _ in 0..100 {
        let (code, stdout, _) = run_idmesh(
            &[
                "apikey",
                "create",
                "--name",
                "gateway",
                "--json",
                "--directory-addr",
                &directory_addr,
                "--scope",
                "scim-tokens:resolve",
                "users:read",
                "users:write",
                "groups:read",
                "groups:write",
            ],
            &[("IDMESH_API_KEY", &admin_key)],
        );
        if code == 0 {
            let created: Value = serde_json::from_str(&stdout).expect("JSON output");
            gateway_key = Some(created["api_key"].as_str().expect("the key").to_owned());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let gateway_key = gateway_key.expect("directory-service comes up");
    let gateway = spawn_serve(
        &[
            "--targets",
            "gateway",
            "--http-addr",
            &http_addr,
            "--directory-addr",
            &directory_addr,
            "--user-addr",
            &user_addr,
            "--group-addr",
            &group_addr,
        ],
        &[("IDMESH_API_KEY", &gateway_key)],
    );

    let mut created = None;
    for _ in 0..100 {
        let output = idmesh()
            .args(["directory", "create", "--name", "Split", "--json"])
            .args(["--directory-addr", &directory_addr])
            .env("IDMESH_API_KEY", &admin_key)
            .args(["--public-url", &format!("http://{http_addr}")])
            .output()
            .expect("idmesh runs");
        if output.status.success() {
            created = Some(serde_json::from_slice::<Value>(&output.stdout).expect("JSON output"));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let created = created.expect("directory-service comes up");
    let (base_url, token) = (
        created["scim_base_url"].as_str().expect("scim_base_url"),
        created["token"].as_str().expect("token"),
    );

    let http = reqwest::Client::new();
    let response = http
        .post(format!("{base_url}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(json!({"userName": "split@example.com"}).to_string())
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().expect("text").to_owned();
    let fetched = http
        .get(&location)
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(fetched.status().as_u16(), 200);

    let metrics = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("the services serve metrics")
        .text()
        .await
        .expect("the metrics text");
    assert!(
        metrics
            .lines()
            .any(|line| line == "idmesh_session_revocation_backlog 0"),
        "no revocation waits:\n{metrics}"
    );

    stop(gateway);
    stop(services);
}

/// A session of a new user through session-service at `addr`, retrying while
/// the service comes up.
async fn create_session(addr: &str, key: &str) -> String {
    let mut sessions = SessionServiceClient::new(authed(addr, key));
    let request = CreateSessionRequest {
        directory_id: "directory".into(),
        user_id: format!("user-{}", std::process::id()),
        ttl: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
        attributes: Default::default(),
    };
    for _ in 0..100 {
        match sessions.create_session(request.clone()).await {
            Ok(session) => return session.into_inner().id,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("session-service at {addr} does not come up");
}

/// A channel to `addr` calling with `key`.
fn authed(addr: &str, key: &str) -> idmesh_runtime::auth::AuthChannel {
    let credential = idmesh_runtime::auth::Credential::new(key).expect("a printable key");
    idmesh_runtime::grpc::authed_channel(addr, &credential).expect("a valid address")
}

async fn session_status(addr: &str, key: &str, session_id: &str) -> SessionStatus {
    SessionServiceClient::new(authed(addr, key))
        .check_session(CheckSessionRequest {
            session_id: session_id.to_owned(),
        })
        .await
        .expect("CheckSession succeeds")
        .into_inner()
        .status()
}

#[tokio::test]
async fn the_whole_mesh_keeps_sessions_in_process_without_a_redis_url() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let admin_key = idmesh::generate_api_key().expect("randomness");
    let mut config = MeshConfig::loopback(database.url().to_owned());
    config.bootstrap_admin_key = Some(admin_key.clone());
    let shutdown = CancellationToken::new();
    let mesh = idmesh::launch(&Target::ALL, config, shutdown.clone())
        .await
        .expect("the mesh starts");
    let addr = mesh.session_addr.expect("session-service").to_string();
    let running = tokio::spawn(mesh.wait());
    let session = create_session(&addr, &admin_key).await;
    assert_eq!(session_status(&addr, &admin_key, &session).await, SessionStatus::Valid);
    shutdown.cancel();
    running.await.expect("joined").expect("the mesh stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_redis_url_shares_sessions_between_processes() {
    let redis_url = redis_url();
    let database = ScratchDatabase::new(Backend::Sqlite);
    let (one, two, directory_addr) = (free_addr(), free_addr(), free_addr());
    let admin_key = idmesh::generate_api_key().expect("randomness");
    // Where both processes resolve their callers' keys.
    let directories = spawn_serve(
        &[
            "--targets",
            "directories",
            "--database-url",
            database.url(),
            "--directory-listen-addr",
            &directory_addr,
        ],
        &[("IDMESH_BOOTSTRAP_ADMIN_KEY", &admin_key)],
    );
    let serve_sessions = |addr: &str| {
        spawn_serve(
            &[
                "--targets",
                "sessions",
                "--session-listen-addr",
                addr,
                "--redis-url",
                &redis_url,
                "--directory-addr",
                &directory_addr,
            ],
            &[("IDMESH_API_KEY", &admin_key)],
        )
    };
    let (first, second) = (serve_sessions(&one), serve_sessions(&two));
    let session = create_session(&one, &admin_key).await;
    create_session(&two, &admin_key).await;
    assert_eq!(
        session_status(&two, &admin_key, &session).await,
        SessionStatus::Valid,
        "created through one process, valid through the other"
    );
    stop(first);
    stop(second);
    stop(directories);
}

/// A user created through the gateway at `base_url`, then deactivated by a
/// PATCH that continues the trace of `traceparent`; returns the user's id.
async fn deactivate_a_new_user(base_url: &str, token: &str, traceparent: &str) -> String {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base_url}/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(json!({"userName": "observed@example.com"}).to_string())
        .send()
        .await
        .expect("the gateway answers")
        .json()
        .await
        .expect("a JSON user");
    let id = created["id"].as_str().expect("an id").to_owned();
    let patched = http
        .patch(format!("{base_url}/Users/{id}"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .header("traceparent", traceparent)
        .body(json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}).to_string())
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(patched.status().as_u16(), 200);
    id
}

#[tokio::test]
async fn json_logs_carry_the_trace_id_of_the_request_into_every_service() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let (child, lines, logs) = start_dev_logging(data_dir.path(), &["--log-format", "json"], &[]);
    let base_url = value_after(&next_line(&lines), "SCIM base URL:").to_owned();
    let token = value_after(&next_line(&lines), "Bearer token:").to_owned();
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    deactivate_a_new_user(&base_url, &token, &format!("00-{trace_id}-00f067aa0ba902b7-01")).await;

    // user-service logs the revocation it delivered for the PATCH: in
    // another task than the gateway's, reached over gRPC.
    let mut revoked = None;
    while let Ok(line) = logs.recv_timeout(Duration::from_secs(10)) {
        let entry: Value = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{line:?} is not JSON: {err}"));
        if entry["message"] == "user's sessions revoked" {
            revoked = Some(entry);
            break;
        }
    }
    let revoked = revoked.expect("user-service logs the revocation");
    assert_eq!(revoked["trace_id"], trace_id.as_str(), "{revoked}");
    assert_eq!(revoked["level"], "INFO");
    stop(child);
}

#[test]
fn text_logs_written_to_a_pipe_are_plain_text() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    // NO_COLOR empty does not ask for plain text: the pipe alone must.
    let (child, lines, logs) = start_dev_logging(data_dir.path(), &[], &[("NO_COLOR", "")]);
    next_line(&lines);
    let line = next_line(&logs);
    assert!(
        !line.contains('\u{1b}'),
        "a log line into a pipe carries terminal escapes: {line:?}"
    );
    assert!(line.contains(" INFO ") || line.contains(" WARN "), "{line:?}");
    stop(child);
}

#[tokio::test]
async fn metrics_name_routes_by_template_and_grpc_methods_and_never_an_id() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let metrics_addr = free_addr();
    let (child, lines, _logs) = start_dev_logging(data_dir.path(), &["--metrics-addr", &metrics_addr], &[]);
    let base_url = value_after(&next_line(&lines), "SCIM base URL:").to_owned();
    let token = value_after(&next_line(&lines), "Bearer token:").to_owned();
    let directory_id = base_url.rsplit('/').next().expect("a directory id").to_owned();
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let user_id = deactivate_a_new_user(&base_url, &token, &format!("00-{trace_id}-00f067aa0ba902b7-01")).await;
    let http = reqwest::Client::new();
    let missing = http
        .get(format!("{base_url}/Users/{}", uuid::Uuid::new_v4()))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(missing.status().as_u16(), 404);
    // /readyz also asks directory-service's grpc.health.v1.
    let gateway = base_url.split("/scim/").next().expect("the gateway's URL");
    for probe in ["healthz", "readyz"] {
        // /readyz may say 503 until a health check of directory-service
        // gets through.
        let mut status = 0;
        for _ in 0..50 {
            status = http
                .get(format!("{gateway}/{probe}"))
                .send()
                .await
                .expect("the gateway answers")
                .status()
                .as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 200, "/{probe}");
    }

    let metrics = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("idmesh dev serves metrics")
        .text()
        .await
        .expect("the metrics text");
    let series = |name: &str, labels: &[&str]| {
        metrics
            .lines()
            .any(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
    };
    let user_route = r#"route="/scim/v2/{directory_id}/Users/{id}""#;
    assert!(
        series(
            "idmesh_http_requests_total{",
            &[
                user_route,
                r#"method="PATCH""#,
                r#"status="200""#,
                r#"status_class="2xx""#
            ]
        ),
        "{metrics}"
    );
    assert!(
        series(
            "idmesh_http_requests_total{",
            &[user_route, r#"status="404""#, r#"status_class="4xx""#]
        ),
        "{metrics}"
    );
    assert!(
        series("idmesh_http_request_duration_seconds_bucket{", &[user_route, r#"le="#]),
        "{metrics}"
    );
    assert!(
        series(
            "idmesh_grpc_server_requests_total{",
            &[
                r#"service="idmesh.v1.UserService""#,
                r#"method="PatchUser""#,
                r#"code="Ok""#
            ]
        ),
        "{metrics}"
    );
    assert!(
        series(
            "idmesh_grpc_server_requests_total{",
            &[r#"method="RevokeUserSessions""#, r#"code="Ok""#]
        ),
        "{metrics}"
    );
    assert!(
        series(
            "idmesh_grpc_server_request_duration_seconds_bucket{",
            &[r#"method="PatchUser""#]
        ),
        "{metrics}"
    );
    assert!(
        series(
            "idmesh_db_pool_connections{",
            &[r#"service="user-service""#, r#"state="idle""#]
        ),
        "{metrics}"
    );
    assert!(
        series("idmesh_db_pool_max_connections{", &[r#"service="user-service""#]),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|line| line == "idmesh_session_store_up 1"),
        "{metrics}"
    );
    for service in ["user-service", "group-service", "directory-service"] {
        assert!(
            series("idmesh_event_outbox_pending{", &[&format!(r#"service="{service}""#)]),
            "{metrics}"
        );
        assert!(
            series(
                "idmesh_event_outbox_oldest_seconds{",
                &[&format!(r#"service="{service}""#)]
            ),
            "{metrics}"
        );
    }
    assert!(series("idmesh_events_logged_total", &[]), "{metrics}");
    assert!(
        !metrics.contains("healthz") && !metrics.contains("readyz") && !metrics.contains("grpc.health"),
        "probes are not counted:\n{metrics}"
    );
    assert!(
        !metrics.contains(&directory_id) && !metrics.contains(&user_id),
        "no raw id in a label:\n{metrics}"
    );
    stop(child);
}

/// An OTLP/gRPC receiver in the test process: the spans a collector would
/// get, each with its resource's `service.name`.
#[derive(Debug, Clone, Default)]
struct OtlpReceiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for OtlpReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.spans.lock().expect("not poisoned");
        for resource_spans in request.into_inner().resource_spans {
            let service_name = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                received.extend(scope_spans.spans.into_iter().map(|span| (service_name.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_otlp_endpoint_a_request_reaches_the_collector_as_one_trace() {
    let receiver = OtlpReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let (child, lines, _logs) = start_dev_logging(
        data_dir.path(),
        &["--otlp-endpoint", &endpoint],
        // Batches every 100 ms rather than every 5 s.
        &[
            ("OTEL_SERVICE_NAME", "idmesh-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let base_url = value_after(&next_line(&lines), "SCIM base URL:").to_owned();
    let token = value_after(&next_line(&lines), "Bearer token:").to_owned();
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    deactivate_a_new_user(&base_url, &token, &format!("00-{trace_id}-00f067aa0ba902b7-01")).await;

    let wanted = [
        "PATCH /scim/v2/{directory_id}/Users/{id}",
        "idmesh.v1.UserService/PatchUser",
        "idmesh.v1.SessionService/RevokeUserSessions",
    ];
    let mut names = Vec::new();
    for _ in 0..100 {
        names = receiver
            .spans
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(_, span)| {
                span.trace_id
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<String>()
                    == trace_id
            })
            .map(|(service, span)| format!("{service}: {}", span.name))
            .collect::<Vec<_>>();
        if wanted
            .iter()
            .all(|name| names.contains(&format!("idmesh-under-test: {name}")))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in wanted {
        assert!(
            names.contains(&format!("idmesh-under-test: {name}")),
            "{name} reaches the collector in the request's trace: {names:?}"
        );
    }
    stop(child);
    serving.abort();
}
