//! The end-to-end harness: starts the mesh in-process on ephemeral ports, on
//! a scratch PostgreSQL database or SQLite file of the test's own (from
//! `idmesh-testkit`), and talks to it over real HTTP and gRPC: raw SCIM
//! ([`ScimClient`]), typed SCIM ([`ScimClient::users`],
//! [`ScimClient::groups`]) and the services' gRPC clients.

mod client;
mod resources;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use idmesh::{MeshConfig, Target};
use idmesh_proto::v1::api_key_service_client::ApiKeyServiceClient;
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::event_service_client::EventServiceClient;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::role_mapping_service_client::RoleMappingServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_proto::v1::webhook_service_client::WebhookServiceClient;
use idmesh_proto::v1::{CreateDirectoryRequest, CreateSessionRequest, IssueTokenRequest, ListEventsRequest, Session};
use idmesh_runtime::auth::{AuthChannel, Credential};
use idmesh_testkit::channel;
use tokio_util::sync::CancellationToken;

pub use client::{ScimClient, ScimResponse, encode, group, patch_op, user};
#[doc(hidden)]
pub use idmesh_testkit;
pub use idmesh_testkit::{Backend, ScratchDatabase};
pub use resources::{Group, ListResponse, Member, NewGroup, NewUser, User};

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
    /// role-mapping-service, when the mesh runs it.
    pub role_addr: Option<SocketAddr>,
    /// events-service, when the mesh runs it.
    pub event_addr: Option<SocketAddr>,
    /// The bootstrap admin key directory-service installed: every scope, no
    /// directory limit. The clients below call with it.
    pub admin_key: String,
    shutdown: CancellationToken,
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An events-service started by [`TestMesh::start_events_service`].
#[derive(Debug)]
pub struct EventsService {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl EventsService {
    /// Stops it as SIGTERM would, and waits until it has stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.running
            .await
            .expect("joined")
            .expect("events-service stops cleanly");
    }
}

impl TestMesh {
    /// Starts every service on 127.0.0.1 with ephemeral ports, storing into
    /// `database`, which must outlive the mesh.
    pub async fn start(database: &ScratchDatabase) -> TestMesh {
        TestMesh::start_with(database, &Target::ALL, |_| {}).await
    }

    /// Starts `targets` on 127.0.0.1 with ephemeral ports, with what
    /// `configure` changes in the configuration (a Redis URL, or where
    /// session-service is when the mesh runs without one). The gateway needs
    /// directory-service and user-service among the targets.
    pub async fn start_with(
        database: &ScratchDatabase,
        targets: &[Target],
        configure: impl FnOnce(&mut MeshConfig),
    ) -> TestMesh {
        idmesh_testkit::init_telemetry();
        let shutdown = CancellationToken::new();
        let admin_key = idmesh::generate_api_key().expect("randomness");
        let mut config = MeshConfig::loopback(database.url().to_owned());
        config.bootstrap_admin_key = Some(admin_key.clone());
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
        let (role_addr, event_addr) = (mesh.role_addr, mesh.event_addr);
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
            role_addr,
            event_addr,
            admin_key,
            shutdown,
        }
    }

    /// The mesh without events-service, and where it stores: for tests
    /// that start events-service themselves ([`TestMesh::start_events_service`]).
    pub async fn without_events_service(database: &ScratchDatabase) -> (TestMesh, String) {
        let targets: Vec<Target> = Target::ALL.into_iter().filter(|t| *t != Target::Events).collect();
        let mesh = TestMesh::start_with(database, &targets, |_| {}).await;
        (mesh, database.url().to_owned())
    }

    /// The whole mesh, and where it stores: for a second events-service.
    pub async fn with_database_url(database: &ScratchDatabase) -> (TestMesh, String) {
        (TestMesh::start(database).await, database.url().to_owned())
    }

    /// An events-service of its own on `database_url`, as another process
    /// would run it: it calls this mesh's services with the admin key.
    pub async fn start_events_service(&self, database_url: &str) -> EventsService {
        let mut config = MeshConfig::loopback(database_url.to_owned());
        config.api_key = Some(self.admin_key.clone());
        config.directory_addr = self.directory_addr.to_string();
        config.user_addr = self.user_addr.to_string();
        config.group_addr = self.group_addr.to_string();
        let shutdown = CancellationToken::new();
        let started = idmesh::launch(&[Target::Events], config, shutdown.clone())
            .await
            .expect("events-service starts");
        EventsService {
            addr: started.event_addr.expect("events-service is bound"),
            shutdown,
            running: tokio::spawn(started.wait()),
        }
    }

    /// A channel to `addr` calling with `key`.
    pub fn channel_as(&self, addr: SocketAddr, key: &str) -> AuthChannel {
        AuthChannel::new(channel(addr), Credential::new(key).expect("a printable key"))
    }

    fn admin_channel(&self, addr: SocketAddr) -> AuthChannel {
        self.channel_as(addr, &self.admin_key)
    }

    /// A gRPC client of the API keys at directory-service.
    pub fn api_keys(&self) -> ApiKeyServiceClient<AuthChannel> {
        idmesh_runtime::with_message_limits!(ApiKeyServiceClient::new(self.admin_channel(self.directory_addr)))
    }

    /// A gRPC client of directory-service.
    pub fn directories(&self) -> DirectoryServiceClient<AuthChannel> {
        idmesh_runtime::with_message_limits!(DirectoryServiceClient::new(self.admin_channel(self.directory_addr)))
    }

    /// A gRPC client of user-service.
    pub fn users(&self) -> UserServiceClient<AuthChannel> {
        idmesh_runtime::with_message_limits!(UserServiceClient::new(self.admin_channel(self.user_addr)))
    }

    /// A gRPC client of group-service.
    pub fn groups(&self) -> GroupServiceClient<AuthChannel> {
        idmesh_runtime::with_message_limits!(GroupServiceClient::new(self.admin_channel(self.group_addr)))
    }

    /// A gRPC client of role-mapping-service.
    pub fn roles(&self) -> RoleMappingServiceClient<AuthChannel> {
        let addr = self.role_addr.expect("the mesh runs role-mapping-service");
        idmesh_runtime::with_message_limits!(RoleMappingServiceClient::new(self.admin_channel(addr)))
    }

    /// A gRPC client of events-service.
    pub fn events(&self) -> EventServiceClient<AuthChannel> {
        let addr = self.event_addr.expect("the mesh runs events-service");
        idmesh_runtime::with_message_limits!(EventServiceClient::new(self.admin_channel(addr)))
    }

    /// WebhookService, served by events-service.
    pub fn webhooks(&self) -> WebhookServiceClient<AuthChannel> {
        let addr = self.event_addr.expect("the mesh runs events-service");
        idmesh_runtime::with_message_limits!(WebhookServiceClient::new(self.admin_channel(addr)))
    }

    /// A gRPC client of the session-service that user-service revokes
    /// sessions in.
    pub fn sessions(&self) -> SessionServiceClient<AuthChannel> {
        idmesh_runtime::with_message_limits!(SessionServiceClient::new(self.admin_channel(self.session_addr)))
    }

    /// A session for `user_id` of the directory, valid for `ttl`, as the
    /// platform makes one when the user signs in.
    pub async fn sign_in(&self, directory_id: &str, user_id: &str, ttl: Duration) -> Session {
        let ttl = prost_types::Duration {
            seconds: i64::try_from(ttl.as_secs()).expect("a TTL in range"),
            nanos: 0,
        };
        self.sessions()
            .create_session(CreateSessionRequest {
                directory_id: directory_id.to_owned(),
                user_id: user_id.to_owned(),
                ttl: Some(ttl),
                attributes: Default::default(),
            })
            .await
            .expect("CreateSession")
            .into_inner()
    }

    /// Waits until events-service has logged `count` events of the
    /// directory: the services' outboxes drain after their writes commit.
    pub async fn until_logged(&self, directory_id: &str, count: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let latest = self
                .events()
                .list_events(ListEventsRequest {
                    directory_id: directory_id.to_owned(),
                    page_size: 1,
                    ..Default::default()
                })
                .await
                .expect("ListEvents")
                .into_inner()
                .latest_sequence;
            if latest >= count {
                return;
            }
            assert!(Instant::now() < deadline, "only {latest} of {count} events logged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
        ScimClient::new(
            format!("http://{}/scim/v2/{}", self.http_addr, directory.id),
            directory.id,
            issued.secret,
        )
    }
}

/// Runs an async test body once against a whole mesh on PostgreSQL and once
/// on SQLite, each on a database of its own:
/// `both_backends!(name, |mesh| async move { ... })`, or with a mesh started
/// differently, `both_backends!(name, start, |mesh| async move { ... })`
/// where `start` is an async function from `&ScratchDatabase` to the mesh.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        $crate::idmesh_testkit::on_both_backends!($name, $crate::TestMesh::start, $body);
    };
    ($name:ident, $start:expr, $body:expr) => {
        $crate::idmesh_testkit::on_both_backends!($name, $start, $body);
    };
}
