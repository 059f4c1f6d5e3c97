//! A real session-service on a loopback port, in this process, on the
//! in-process store or on the Redis at 127.0.0.1:6379; stopped and
//! restarted on the same address to cut the client's watch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{CreateSessionRequest, RevokeSessionRequest, RevokeUserSessionsRequest};
use idmesh_runtime::auth::{AuthChannel, Credential};
use idmesh_session_client::{Options, SessionClient, UserRef};
use idmesh_testkit::{channel, delete_keys, redis_url};
use session_service::Config;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The admin key of the test process's directory-service.
pub fn admin() -> Credential {
    directory_service::testing::shared().admin()
}

/// Where the service under test keeps its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    InProcess,
    Redis,
}

impl Backend {
    /// A config with Redis keys under a prefix of the test's own.
    pub fn config(self) -> Config {
        let redis_url = match self {
            Backend::InProcess => None,
            Backend::Redis => Some(redis_url()),
        };
        let mut config = Config::new(redis_url, directory_service::testing::shared().identity());
        config.key_prefix = format!("idmesh-client-test-{}", uuid::Uuid::now_v7().simple());
        config
    }
}

/// A running session-service.
#[derive(Debug)]
pub struct Service {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    stopped: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts a service with `config` on a free port.
    pub async fn start(config: Config) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        Service::serve(listener, config)
    }

    /// Starts a service with `config` on `addr`, where one was stopped.
    pub async fn start_at(addr: SocketAddr, config: Config) -> Service {
        let listener = TcpListener::bind(addr).await.expect("the address is free again");
        Service::serve(listener, config)
    }

    fn serve(listener: TcpListener, config: Config) -> Service {
        idmesh_testkit::init_telemetry();
        let addr = listener.local_addr().expect("a bound address");
        let shutdown = CancellationToken::new();
        let serving = session_service::serve(listener, config, shutdown.clone());
        let stopped = tokio::spawn(async move {
            if let Err(err) = serving.await {
                panic!("session-service failed: {err}");
            }
        });
        Service {
            addr,
            shutdown,
            stopped: Some(stopped),
        }
    }

    /// A plain gRPC client of this service, for what the tests change.
    pub fn grpc(&self) -> SessionServiceClient<AuthChannel> {
        SessionServiceClient::new(AuthChannel::new(channel(self.addr), admin()))
    }

    /// A client with a local view, synced within 5 s.
    pub async fn synced_client(&self) -> SessionClient {
        let client = SessionClient::connect(&self.addr.to_string(), admin(), quick_options()).expect("a valid address");
        wait_synced(&client).await;
        client
    }

    /// Stops the service, ending its watches, and waits until it has.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(stopped) = self.stopped.take() {
            stopped.await.expect("session-service stops cleanly");
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Options that reconnect quickly, so tests do not wait on backoff.
pub fn quick_options() -> Options {
    Options {
        reconnect_delay: Duration::from_millis(20),
        max_reconnect_delay: Duration::from_millis(200),
        request_timeout: Duration::from_secs(1),
        ..Options::default()
    }
}

pub async fn wait_synced(client: &SessionClient) {
    tokio::time::timeout(Duration::from_secs(5), client.synced())
        .await
        .expect("the client's watch is synced within 5 s");
}

/// Waits until `condition` holds, checking every millisecond, and says how
/// long that took; panics after `within`.
pub async fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

/// Deletes the Redis keys of `config` when dropped, so that tests sharing
/// one Redis leave nothing behind (the revocation log has no TTL).
#[derive(Debug)]
pub struct RedisKeys(pub Config);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        if let Some(url) = &self.0.redis_url {
            delete_keys(url, &self.0.key_prefix);
        }
    }
}

/// A random user of a random directory.
pub fn new_user() -> UserRef {
    UserRef::new(
        format!("dir-{}", uuid::Uuid::now_v7().simple()),
        format!("user-{}", uuid::Uuid::now_v7().simple()),
    )
}

/// A new hour-long session of `user`; its id.
pub async fn create_session(grpc: &mut SessionServiceClient<AuthChannel>, user: &UserRef) -> String {
    grpc.create_session(CreateSessionRequest {
        directory_id: user.directory_id.clone(),
        user_id: user.user_id.clone(),
        ttl: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        attributes: HashMap::new(),
    })
    .await
    .expect("CreateSession succeeds")
    .into_inner()
    .id
}

pub async fn revoke_session(grpc: &mut SessionServiceClient<AuthChannel>, session_id: &str) {
    grpc.revoke_session(RevokeSessionRequest {
        session_id: session_id.to_owned(),
        reason: "signed out".into(),
    })
    .await
    .expect("RevokeSession succeeds");
}

pub async fn revoke_user(grpc: &mut SessionServiceClient<AuthChannel>, user: &UserRef) {
    grpc.revoke_user_sessions(RevokeUserSessionsRequest {
        directory_id: user.directory_id.clone(),
        user_id: user.user_id.clone(),
        reason: "deprovisioned".into(),
    })
    .await
    .expect("RevokeUserSessions succeeds");
}
