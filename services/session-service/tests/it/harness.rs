//! Starting session-service on an ephemeral port against a backend, with a
//! clock the test moves, and cleaning up its Redis keys afterwards.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_runtime::auth::AuthChannel;
use idmesh_testkit::{delete_keys, redis_cluster_url, redis_url};
use session_service::Config;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A channel to `addr` calling with the test directory-service's admin key.
pub fn admin_channel(addr: SocketAddr) -> AuthChannel {
    directory_service::testing::shared().channel(addr)
}

/// Where a service under test keeps its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    InProcess,
    Redis,
    RedisCluster,
}

impl Backend {
    pub fn redis_url(self) -> Option<String> {
        match self {
            Backend::InProcess => None,
            Backend::Redis => Some(redis_url()),
            Backend::RedisCluster => Some(redis_cluster_url()),
        }
    }

    /// A config of this backend with keys under a prefix of the test's own.
    pub fn config(self) -> Config {
        let mut config = Config::new(self.redis_url(), directory_service::testing::shared().identity());
        config.key_prefix = format!("idmesh-test-{}", uuid::Uuid::now_v7().simple());
        config
    }
}

/// A clock that stands still until the test moves it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// Starts at the real time, to the microsecond as the system clock.
    pub fn new() -> ManualClock {
        let now = OffsetDateTime::now_utc();
        ManualClock(Arc::new(Mutex::new(
            now.replace_microsecond(now.microsecond()).expect("a valid microsecond"),
        )))
    }

    pub fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock lock")
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }

    fn clock(&self) -> idmesh_runtime::clock::Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || *now.lock().expect("clock lock"))
    }
}

/// A running session-service; dropping it shuts it down and deletes its
/// Redis keys.
#[derive(Debug)]
pub struct TestService {
    pub addr: SocketAddr,
    pub config: Config,
    shutdown: CancellationToken,
    stopped: Option<tokio::task::JoinHandle<()>>,
}

impl TestService {
    /// Starts a service with `config`, telling time by `clock`.
    pub async fn start(config: Config, clock: &ManualClock) -> TestService {
        idmesh_testkit::init_telemetry();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let shutdown = CancellationToken::new();
        let serving = session_service::serve_with_clock(listener, config.clone(), clock.clock(), shutdown.clone());
        let stopped = tokio::spawn(async move {
            if let Err(err) = serving.await {
                panic!("session-service failed: {err}");
            }
        });
        TestService {
            addr,
            config,
            shutdown,
            stopped: Some(stopped),
        }
    }

    /// A client calling with the admin key.
    pub fn client(&self) -> SessionServiceClient<AuthChannel> {
        SessionServiceClient::new(admin_channel(self.addr))
    }

    /// Shuts the service down and waits until it has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(stopped) = self.stopped.take() {
            stopped.await.expect("session-service stops cleanly");
        }
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(url) = &self.config.redis_url {
            delete_keys(url, &self.config.key_prefix);
        }
    }
}

/// A random user of a random directory, so tests sharing one Redis never
/// touch each other's users.
pub fn new_user() -> (String, String) {
    (
        format!("dir-{}", uuid::Uuid::now_v7().simple()),
        format!("user-{}", uuid::Uuid::now_v7().simple()),
    )
}
