//! The end-to-end test harness: starts the mesh in-process on ephemeral
//! ports, against real PostgreSQL or SQLite, and talks to it over real HTTP
//! and gRPC. Every test creates its own directory, so tests share one
//! PostgreSQL database without seeing each other's data.

use std::net::SocketAddr;

use idmesh::{MeshConfig, Target};
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_proto::v1::{CreateDirectoryRequest, IssueTokenRequest};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The PostgreSQL the tests use, unless `IDMESH_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/idmesh_test";

/// Which database the mesh under test stores into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A running mesh; dropping it shuts it down.
#[derive(Debug)]
pub struct TestMesh {
    pub http_addr: SocketAddr,
    pub directory_addr: SocketAddr,
    pub user_addr: SocketAddr,
    pub group_addr: SocketAddr,
    /// Where user-service reaches session-service: the mesh's own, or the
    /// address the test configured when the mesh runs without one.
    pub session_addr: SocketAddr,
    shutdown: CancellationToken,
    _data_dir: tempfile::TempDir,
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestMesh {
    /// Starts every service on 127.0.0.1 with ephemeral ports.
    pub async fn start(backend: Backend) -> TestMesh {
        TestMesh::start_with(backend, &Target::ALL, |_| {}).await
    }

    /// Starts `targets` on 127.0.0.1 with ephemeral ports, with what
    /// `configure` changes in the configuration (a Redis URL, or where
    /// session-service is when the mesh runs without one). The gateway needs
    /// directory-service and user-service among the targets.
    pub async fn start_with(backend: Backend, targets: &[Target], configure: impl FnOnce(&mut MeshConfig)) -> TestMesh {
        idmesh_runtime::telemetry::init();
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let database_url = match backend {
            Backend::Postgres => {
                std::env::var("IDMESH_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
            }
            Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("idmesh.db").display()),
        };
        let shutdown = CancellationToken::new();
        let mut config = MeshConfig::loopback(database_url);
        configure(&mut config);
        let configured_session_addr: Option<SocketAddr> = config.session_addr.parse().ok();
        let mesh = idmesh::launch(targets, config, shutdown.clone())
            .await
            .expect("the mesh starts");
        let session_addr = mesh.session_addr.or(configured_session_addr);
        let addrs = (
            mesh.http_addr,
            mesh.directory_addr,
            mesh.user_addr,
            mesh.group_addr,
            session_addr,
        );
        tokio::spawn(async move {
            if let Err(err) = mesh.wait().await {
                panic!("a service of the mesh failed: {err:#}");
            }
        });
        let (Some(http_addr), Some(directory_addr), Some(user_addr), Some(group_addr), Some(session_addr)) = addrs
        else {
            panic!("every target is bound, or session-service's address configured: {addrs:?}");
        };
        TestMesh {
            http_addr,
            directory_addr,
            user_addr,
            group_addr,
            session_addr,
            shutdown,
            _data_dir: data_dir,
        }
    }

    /// A gRPC client of directory-service.
    pub fn directories(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(channel(self.directory_addr))
    }

    /// A gRPC client of user-service.
    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(channel(self.user_addr))
    }

    /// A gRPC client of group-service.
    pub fn groups(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(channel(self.group_addr))
    }

    /// A gRPC client of the session-service that user-service revokes
    /// sessions in.
    pub fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(channel(self.session_addr))
    }

    /// A fresh directory with a token, and a SCIM client for it.
    pub async fn new_directory(&self) -> ScimClient {
        let mut directories = self.directories();
        let name = format!("test-{}", uuid::Uuid::new_v4());
        let directory = directories
            .create_directory(CreateDirectoryRequest { name })
            .await
            .expect("CreateDirectory")
            .into_inner();
        let issued = directories
            .issue_token(IssueTokenRequest {
                directory_id: directory.id.clone(),
                description: "test".to_owned(),
                expires_at: None,
            })
            .await
            .expect("IssueToken")
            .into_inner();
        ScimClient {
            http: reqwest::Client::new(),
            base_url: format!("http://{}/scim/v2/{}", self.http_addr, directory.id),
            directory_id: directory.id,
            token: Some(issued.secret),
        }
    }
}

fn channel(addr: SocketAddr) -> Channel {
    idmesh_runtime::grpc::lazy_channel(&addr.to_string()).expect("a valid address")
}

/// A SCIM client bound to one directory's base URL. Every call states the
/// status it expects, and fails the test with the body when it differs.
#[derive(Debug, Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    pub base_url: String,
    pub directory_id: String,
    /// The bearer token sent; `None` sends no Authorization header.
    pub token: Option<String>,
}

/// What the server answered.
#[derive(Debug)]
pub struct ScimResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl ScimResponse {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl ScimClient {
    /// The same directory, authenticating with `token` instead.
    pub fn with_token(&self, token: Option<&str>) -> ScimClient {
        ScimClient {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Sends raw bytes as `application/scim+json` to `path` (relative to the
    /// directory's base URL) and checks the status.
    pub async fn send_raw(&self, method: Method, path: &str, body: Option<Vec<u8>>, expect: u16) -> ScimResponse {
        self.exchange(method, path, &[], body, expect).await
    }

    /// One request with extra headers and a raw body; checks the status.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        expect: u16,
    ) -> ScimResponse {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header("accept", "application/scim+json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert_eq!(status, expect, "{method} {path} answered {status}: {body:#}");
        ScimResponse { status, headers, body }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, expect: u16) -> ScimResponse {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
        self.send_raw(method, path, bytes, expect).await
    }

    pub async fn get(&self, path: &str, expect: u16) -> ScimResponse {
        self.send(Method::GET, path, None, expect).await
    }

    pub async fn post(&self, path: &str, body: Value, expect: u16) -> ScimResponse {
        self.send(Method::POST, path, Some(body), expect).await
    }

    pub async fn put(&self, path: &str, body: Value, expect: u16) -> ScimResponse {
        self.send(Method::PUT, path, Some(body), expect).await
    }

    pub async fn patch(&self, path: &str, body: Value, expect: u16) -> ScimResponse {
        self.send(Method::PATCH, path, Some(body), expect).await
    }

    pub async fn delete(&self, path: &str, expect: u16) -> ScimResponse {
        self.send(Method::DELETE, path, None, expect).await
    }

    /// Creates a minimal user and returns its SCIM resource.
    pub async fn create_user(&self, user_name: &str) -> Value {
        self.post("/Users", user(user_name), 201).await.body
    }

    /// Creates a group with these members (ids of users or groups) and
    /// returns its SCIM resource.
    pub async fn create_group(&self, display_name: &str, members: &[&str]) -> Value {
        self.post("/Groups", group(display_name, members), 201).await.body
    }

    /// The users a filter finds (one page of up to 100).
    pub async fn filter_users(&self, filter: &str) -> Value {
        let query = format!("/Users?filter={}", encode(filter));
        self.get(&query, 200).await.body
    }
}

/// A minimal SCIM User body, as Okta sends it.
pub fn user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "active": true
    })
}

/// A SCIM Group body with these members (ids of users or groups).
pub fn group(display_name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
        "members": members
    })
}

/// A SCIM PatchOp body.
pub fn patch_op(operations: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    })
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => encoded.push(char::from(byte)),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Runs an async test body once against PostgreSQL and once against SQLite:
/// `both_backends!(name, |mesh| async move { ... })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn postgres() {
                let mesh = $crate::TestMesh::start($crate::Backend::Postgres).await;
                ($body)(mesh).await;
            }

            #[tokio::test]
            async fn sqlite() {
                let mesh = $crate::TestMesh::start($crate::Backend::Sqlite).await;
                ($body)(mesh).await;
            }
        }
    };
}

impl ScimClient {
    /// Sends `method` to `path` with extra request headers (`If-Match`,
    /// `If-None-Match`, …) and checks the status, like [`ScimClient::send`].
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
        expect: u16,
    ) -> ScimResponse {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
        self.exchange(method, path, headers, bytes, expect).await
    }
}
