//! Health that tells the truth: the services' `grpc.health.v1` follows
//! their database, and the gateway's `/readyz` follows directory-service.
//! Real servers throughout; an outage is a TCP proxy the test stops.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use idmesh::{MeshConfig, Target};
use idmesh_testkit::{Backend, ScratchDatabase, unused_addr};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Long enough for several readiness checks, each bounded by its timeout.
fn deadline() -> Instant {
    Instant::now() + (idmesh_runtime::grpc::READINESS_INTERVAL + idmesh_runtime::grpc::READINESS_TIMEOUT) * 8
}

/// A TCP proxy to `upstream` on `addr`; stopping it closes its listener and
/// every connection through it, as a database outage would.
struct Proxy {
    addr: SocketAddr,
    upstream: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(addr: SocketAddr, upstream: &str) -> Proxy {
        // SO_REUSEADDR: restarting on the same port must not wait out the
        // closed connections' TIME_WAIT.
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(addr).expect("the proxy's port is free");
        let listener = socket.listen(64).expect("the proxy listens");
        let addr = listener.local_addr().expect("a bound address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(Proxy::run(listener, upstream.to_owned(), stop.clone()));
        Proxy {
            addr,
            upstream: upstream.to_owned(),
            stop,
            task,
        }
    }

    async fn run(listener: TcpListener, upstream: String, stop: CancellationToken) {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((mut client, _)) = accepted else { continue };
            let (upstream, stop) = (upstream.clone(), stop.clone());
            connections.spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                tokio::select! {
                    () = stop.cancelled() => {}
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                }
            });
        }
        // Dropping the sockets closes them: the pool's connections break.
        connections.shutdown().await;
    }

    /// Stops the proxy and waits until its port and connections are closed.
    async fn stop(self) -> (SocketAddr, String) {
        self.stop.cancel();
        self.task.await.expect("the proxy stops");
        (self.addr, self.upstream)
    }
}

/// What `grpc.health.v1` says of directory-service and of the server as a
/// whole (asked one after the other: a change can fall between), or `None`
/// while it does not answer.
async fn directory_health(addr: SocketAddr) -> Option<Vec<ServingStatus>> {
    let channel = idmesh_runtime::grpc::lazy_channel(&addr.to_string()).expect("a valid address");
    let mut client = HealthClient::new(channel);
    let mut statuses = Vec::new();
    for name in ["idmesh.v1.DirectoryService", ""] {
        let answer = client
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .ok()?;
        statuses.push(answer.into_inner().status());
    }
    Some(statuses)
}

async fn wait_for_health(addr: SocketAddr, wanted: ServingStatus) {
    let deadline = deadline();
    loop {
        let now = directory_health(addr).await;
        if now.as_deref() == Some(&[wanted, wanted]) {
            return;
        }
        assert!(Instant::now() < deadline, "health stays {now:?}, not {wanted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_service_is_not_serving_while_its_database_is_unreachable() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let mut through_proxy = url::Url::parse(database.url()).expect("a database URL");
    let upstream = format!(
        "{}:{}",
        through_proxy.host_str().expect("a database host"),
        through_proxy.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), &upstream).await;
    through_proxy.set_host(Some("127.0.0.1")).expect("a host");
    through_proxy.set_port(Some(proxy.addr.port())).expect("a port");

    let shutdown = CancellationToken::new();
    let mesh = idmesh::launch(
        &[Target::Directories],
        MeshConfig::loopback(through_proxy.to_string()),
        shutdown.clone(),
    )
    .await
    .expect("directory-service starts");
    let addr = mesh.directory_addr.expect("directory-service");
    let running = tokio::spawn(mesh.wait());

    wait_for_health(addr, ServingStatus::Serving).await;
    let (proxy_addr, upstream) = proxy.stop().await;
    wait_for_health(addr, ServingStatus::NotServing).await;
    let proxy = Proxy::start(proxy_addr, &upstream).await;
    wait_for_health(addr, ServingStatus::Serving).await;

    shutdown.cancel();
    running.await.expect("joined").expect("directory-service stops cleanly");
    proxy.stop().await;
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn the_gateway_is_live_and_ready_with_the_mesh_up() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let config = MeshConfig::loopback(database.url().to_owned());
    let shutdown = CancellationToken::new();
    let mesh = idmesh::launch(&Target::ALL, config, shutdown.clone())
        .await
        .expect("the mesh starts");
    let base = format!("http://{}", mesh.http_addr.expect("gateway"));
    let running = tokio::spawn(mesh.wait());

    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    let deadline = deadline();
    loop {
        let (status, body) = get(&format!("{base}/readyz")).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz stays {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    shutdown.cancel();
    running.await.expect("joined").expect("the mesh stops cleanly");
}

#[tokio::test]
async fn the_gateway_is_live_but_not_ready_without_directory_service() {
    let unused = unused_addr();
    let mut config = MeshConfig::loopback(String::new());
    config.directory_addr = unused.to_string();
    config.user_addr = unused.to_string();
    config.group_addr = unused.to_string();
    // Alone, the gateway calls as a configured key.
    config.api_key = Some(idmesh::generate_api_key().expect("randomness"));
    let shutdown = CancellationToken::new();
    let mesh = idmesh::launch(&[Target::Gateway], config, shutdown.clone())
        .await
        .expect("the gateway starts alone");
    let base = format!("http://{}", mesh.http_addr.expect("gateway"));
    let running = tokio::spawn(mesh.wait());

    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("directory_service"), "says what is not ready: {body}");

    shutdown.cancel();
    running.await.expect("joined").expect("the gateway stops cleanly");
}
