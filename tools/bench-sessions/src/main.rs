//! Measures session-service and its client, for docs/benchmarks.md:
//!
//! 1. CheckSession throughput and latency over gRPC at a given concurrency,
//!    after the same load of `grpc.health.v1.Health/Check` on the same
//!    server: the same gRPC stack with no work behind it, the ceiling that
//!    any call to this server reaches on this machine;
//! 2. revoke → watcher-notified latency: how long from sending RevokeSession
//!    until a `WatchRevocations` stream delivers the revocation, one
//!    revocation at a time;
//! 3. how many checks a second the local view of `idmesh-session-client`
//!    answers, without the network.
//!
//! session-service runs in this process, on a runtime of its own, over
//! real gRPC on loopback and the Redis given, with the telemetry the chart
//! deploys (JSON log lines, a span per call) and the allocator of the
//! `idmesh` binary that runs it there (jemalloc); `scripts/bench-sessions`
//! builds this in release and runs it next to `redis-benchmark`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{CheckSessionRequest, CreateSessionRequest, RevokeSessionRequest, WatchRevocationsRequest};
use idmesh_runtime::auth::{AuthChannel, Credential, Scope, ServiceIdentity};
use idmesh_runtime::telemetry::LogFormat;
use idmesh_session_client::{Options, SessionClient};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The allocator `idmesh serve` runs session-service with
/// (services/idmesh/src/main.rs), so that its cost per call is measured.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How far apart the sessions one worker checks in turn are: a prime, so
/// that workers starting at neighbouring sessions do not walk the list in
/// step.
const STRIDE: usize = 7;

/// The name of session-service's threads, to tell their CPU time apart.
const SERVICE_THREAD: &str = "session-service";

#[derive(Debug, Parser)]
#[command(about = "Load-tests session-service and the local checks of idmesh-session-client")]
struct Args {
    /// The Redis session-service keeps sessions in.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Prefix of every Redis key the run creates (delete them afterwards).
    #[arg(long, default_value = "idmesh-bench")]
    key_prefix: String,
    /// Worker threads of session-service's runtime (the load generator has
    /// its own, as many as there are cores).
    #[arg(long, default_value_t = 2)]
    service_threads: usize,
    /// CheckSession calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the calls are spread over; as many as calls in
    /// flight by default, like redis-benchmark's clients.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of CheckSession load, after a second of warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Sessions created for the checks.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Revocations timed from RevokeSession to the watcher.
    #[arg(long, default_value_t = 1_000)]
    revocations: usize,
    /// Threads calling the local check at once.
    #[arg(long, default_value_t = 2)]
    local_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.revocations > args.sessions {
        bail!("--revocations must be at most --sessions: each revokes one session");
    }
    let service = start_service(&args)?;
    let load = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = load.block_on(run(&args, &service.addr, &service.credential));
    service.stop();
    result
}

/// session-service on a runtime of its own, as if in a process of its own.
struct Service {
    addr: String,
    /// The admin key its directory-service installed: the load calls with
    /// it, so CheckSession pays for key checking as in production.
    credential: Credential,
    /// directory-service's SQLite file, which resolves the key.
    _data: tempfile::TempDir,
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Service {
    fn stop(self) {
        self.shutdown.cancel();
        match self.thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("session-service: {err:#}"),
            Err(_) => eprintln!("session-service panicked"),
        }
    }
}

fn start_service(args: &Args) -> anyhow::Result<Service> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.service_threads)
        .thread_name(SERVICE_THREAD)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?.to_string();
    // The directory-service that resolves the key, beside it: asked once per
    // key every 10 seconds, it adds nothing measurable to the load.
    let data = tempfile::tempdir()?;
    let directory_listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let directory_addr = directory_listener.local_addr()?.to_string();
    let admin_key = directory_service::generate_api_key()?;
    let mut directory_config =
        directory_service::Config::new(format!("sqlite://{}", data.path().join("directory.db").display()));
    directory_config.bootstrap_keys.push(directory_service::BootstrapKey {
        name: "bench".to_owned(),
        secret: admin_key.clone(),
        scopes: Scope::ALL.to_vec(),
    });
    let credential = Credential::new(&admin_key)?;
    let identity = ServiceIdentity::new(directory_addr, credential.clone());
    let mut config = session_service::Config::new(Some(args.redis_url.clone()), identity);
    config.key_prefix = args.key_prefix.clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let telemetry = idmesh_runtime::telemetry::init(LogFormat::Json, None)?;
            let directories = tokio::spawn(directory_service::serve(
                directory_listener,
                directory_config,
                stop.clone(),
            ));
            session_service::serve(listener, config, stop)
                .await
                .context("serving")?;
            let served = directories.await?.context("directory-service");
            telemetry.shutdown();
            served
        })
    });
    Ok(Service {
        addr,
        credential,
        _data: data,
        shutdown,
        thread,
    })
}

async fn run(args: &Args, addr: &str, credential: &Credential) -> anyhow::Result<()> {
    let channels = (0..args.connections.max(1))
        .map(|_| channel(addr, credential))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sessions = create_sessions(&channels, args.sessions, args.concurrency).await?;
    println!("created {} sessions", sessions.len());

    let sessions = Arc::new(sessions);
    let mut redis = redis::Client::open(args.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    unary_load(Load::HealthCheck, args, &channels, &sessions, &mut redis).await?;
    unary_load(Load::CheckSession, args, &channels, &sessions, &mut redis).await?;
    local_checks(args, addr, credential, &sessions).await?;
    notification_latency(args, addr, credential, &sessions).await?;
    Ok(())
}

/// A channel of its own: one HTTP/2 connection.
fn channel(addr: &str, credential: &Credential) -> anyhow::Result<AuthChannel> {
    Ok(idmesh_runtime::grpc::authed_channel(addr, credential)?)
}

async fn create_sessions(channels: &[AuthChannel], count: usize, concurrency: usize) -> anyhow::Result<Vec<String>> {
    let workers = concurrency.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let mut client = SessionServiceClient::new(channels[worker % channels.len()].clone());
        let share = count / workers + usize::from(worker < count % workers);
        tasks.spawn(async move {
            let mut ids = Vec::with_capacity(share);
            for i in 0..share {
                let session = client
                    .create_session(CreateSessionRequest {
                        directory_id: "bench-directory".into(),
                        user_id: format!("user-{worker}-{i}"),
                        ttl: Some(prost_types::Duration {
                            seconds: 3600,
                            nanos: 0,
                        }),
                        attributes: HashMap::from([("device".to_owned(), "bench".to_owned())]),
                    })
                    .await?;
                ids.push(session.into_inner().id);
            }
            Ok::<_, tonic::Status>(ids)
        });
    }
    let mut ids = Vec::with_capacity(count);
    while let Some(created) = tasks.join_next().await {
        ids.extend(created??);
    }
    Ok(ids)
}

fn histogram() -> Histogram<u64> {
    // Microseconds, up to a minute, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

/// What [`unary_load`] calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// CheckSession, round-robin through the sessions.
    CheckSession,
    /// grpc.health.v1 Health/Check of the whole server, answered from
    /// memory: what the gRPC round trip alone costs.
    HealthCheck,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::CheckSession => "CheckSession",
            Load::HealthCheck => "Health/Check (no work: the gRPC ceiling)",
        }
    }
}

/// `concurrency` tasks calling `load` back to back over the channels.
async fn unary_load(
    load: Load,
    args: &Args,
    channels: &[AuthChannel],
    sessions: &Arc<Vec<String>>,
    redis: &mut redis::aio::MultiplexedConnection,
) -> anyhow::Result<()> {
    let warm_up = Duration::from_secs(1);
    let measured = Duration::from_secs(args.duration);
    let started = Instant::now();
    let (measure_from, measure_until) = (started + warm_up, started + warm_up + measured);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let channel = channels[worker % channels.len()].clone();
        let mut client = SessionServiceClient::new(channel.clone());
        let mut health = HealthClient::new(channel);
        let sessions = Arc::clone(sessions);
        tasks.spawn(async move {
            let mut latencies = histogram();
            let mut i = worker;
            loop {
                let sent = Instant::now();
                if sent >= measure_until {
                    break;
                }
                match load {
                    Load::CheckSession => {
                        let request = CheckSessionRequest {
                            session_id: sessions[i % sessions.len()].clone(),
                        };
                        client.check_session(request).await?;
                    }
                    Load::HealthCheck => {
                        health.check(HealthCheckRequest::default()).await?;
                    }
                }
                if sent >= measure_from {
                    latencies.saturating_record(sent.elapsed().as_micros() as u64);
                }
                i += STRIDE;
            }
            Ok::<_, tonic::Status>(latencies)
        });
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = CpuUse::now(redis).await?;
    let mut latencies = histogram();
    while let Some(worker) = tasks.join_next().await {
        latencies.add(worker??)?;
    }
    let cpu = CpuUse::now(redis).await?.since(&cpu_before);
    let calls = latencies.len();
    println!(
        "{} over gRPC: {} in flight on {} connections, {} s: {:.0} calls/s, p50 {}, p99 {}, p99.9 {}, max {}",
        load.name(),
        args.concurrency,
        channels.len(),
        args.duration,
        calls as f64 / measured.as_secs_f64(),
        millis(latencies.value_at_quantile(0.5)),
        millis(latencies.value_at_quantile(0.99)),
        millis(latencies.value_at_quantile(0.999)),
        millis(latencies.max()),
    );
    let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / calls.max(1) as f64;
    println!(
        "  CPU per call: session-service {:.1} µs, load generator {:.1} µs, Redis {:.1} µs; {:.2} of {} cores busy",
        per_call(cpu.service),
        per_call(cpu.load),
        per_call(cpu.redis),
        (cpu.service + cpu.load + cpu.redis).as_secs_f64() / measured.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    Ok(())
}

/// CPU time used so far by session-service's threads, by the load
/// generator's (every other thread of this process), and by Redis.
#[derive(Debug, Clone, Copy)]
struct CpuUse {
    service: Duration,
    load: Duration,
    redis: Duration,
}

impl CpuUse {
    /// Reads each thread's `/proc/self/task/*/schedstat` (time on a CPU)
    /// and Redis's `INFO cpu`.
    async fn now(redis: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<CpuUse> {
        let (mut service, mut load) = (Duration::ZERO, Duration::ZERO);
        for task in std::fs::read_dir("/proc/self/task").context("per-thread CPU times (Linux only)")? {
            let task = task?.path();
            // A thread that ended meanwhile has no files left: skip it.
            let (Ok(name), Ok(schedstat)) = (
                std::fs::read_to_string(task.join("comm")),
                std::fs::read_to_string(task.join("schedstat")),
            ) else {
                continue;
            };
            let on_cpu = schedstat
                .split_whitespace()
                .next()
                .and_then(|nanos| nanos.parse().ok())
                .map(Duration::from_nanos)
                .context("a schedstat line")?;
            if name.trim_end() == SERVICE_THREAD {
                service += on_cpu;
            } else {
                load += on_cpu;
            }
        }
        let info: String = redis::cmd("INFO").arg("cpu").query_async(redis).await?;
        let seconds = |field: &str| -> anyhow::Result<f64> {
            info.lines()
                .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                .context("a CPU time in Redis's INFO")
                .and_then(|value| Ok(value.trim().parse::<f64>()?))
        };
        let redis = Duration::from_secs_f64(seconds("used_cpu_user")? + seconds("used_cpu_sys")?);
        Ok(CpuUse { service, load, redis })
    }

    fn since(&self, earlier: &CpuUse) -> CpuUse {
        CpuUse {
            service: self.service.saturating_sub(earlier.service),
            load: self.load.saturating_sub(earlier.load),
            redis: self.redis.saturating_sub(earlier.redis),
        }
    }
}

/// Local checks of sessions the client has already asked about: the cost
/// of a check without the network.
async fn local_checks(
    args: &Args,
    addr: &str,
    credential: &Credential,
    sessions: &Arc<Vec<String>>,
) -> anyhow::Result<()> {
    let client = SessionClient::connect(addr, credential.clone(), Options::default())?;
    tokio::time::timeout(Duration::from_secs(10), client.synced())
        .await
        .context("the client's watch did not sync within 10 s")?;
    for id in sessions.iter() {
        if !client.check_session(id).await?.is_valid() {
            bail!("session {id} is not valid");
        }
    }
    let seconds = 3;
    let stop = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..args.local_threads.max(1))
        .map(|thread| {
            let (client, sessions) = (client.clone(), Arc::clone(sessions));
            let (stop, checks) = (Arc::clone(&stop), Arc::clone(&checks));
            std::thread::spawn(move || {
                let mut done = 0u64;
                let mut i = thread;
                while !stop.load(Ordering::Relaxed) {
                    // A batch between looks at the stop flag.
                    for _ in 0..1024 {
                        let check = client.check_session_locally(&sessions[i % sessions.len()]);
                        assert!(check.is_some_and(|c| c.is_valid()), "answered locally");
                        i += STRIDE;
                    }
                    done += 1024;
                }
                checks.fetch_add(done, Ordering::Relaxed);
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        if thread.join().is_err() {
            bail!("a local check thread panicked");
        }
    }
    println!(
        "local check_session_locally: {} threads, {} s: {:.0} checks/s ({} cached sessions)",
        args.local_threads.max(1),
        seconds,
        checks.load(Ordering::Relaxed) as f64 / seconds as f64,
        sessions.len(),
    );
    Ok(())
}

/// Revokes sessions one at a time and times each from the RevokeSession
/// call until a watcher on its own connection receives it.
async fn notification_latency(
    args: &Args,
    addr: &str,
    credential: &Credential,
    sessions: &Arc<Vec<String>>,
) -> anyhow::Result<()> {
    let mut watcher = SessionServiceClient::new(channel(addr, credential)?);
    let mut stream = watcher
        .watch_revocations(WatchRevocationsRequest::default())
        .await?
        .into_inner();
    stream.message().await?.context("a first watch message")?;
    let (notified, mut notifications) = mpsc::unbounded_channel();
    let watching = tokio::spawn(async move {
        while let Ok(Some(message)) = stream.message().await {
            let at = Instant::now();
            for event in message.events {
                if notified.send((event.session_id, at)).is_err() {
                    return;
                }
            }
        }
    });

    let mut revoker = SessionServiceClient::new(channel(addr, credential)?);
    let (mut notification, mut revoke_call) = (histogram(), histogram());
    for id in sessions.iter().take(args.revocations) {
        let sent = Instant::now();
        revoker
            .revoke_session(RevokeSessionRequest {
                session_id: id.clone(),
                reason: "bench".into(),
            })
            .await?;
        revoke_call.saturating_record(sent.elapsed().as_micros() as u64);
        let at = loop {
            let (session_id, at) = tokio::time::timeout(Duration::from_secs(5), notifications.recv())
                .await
                .context("no notification within 5 s")?
                .context("the watch ended")?;
            if session_id == *id {
                break at;
            }
        };
        notification.saturating_record(at.duration_since(sent).as_micros() as u64);
    }
    watching.abort();
    println!(
        "revoke -> watcher notified: {} revocations one at a time: p50 {}, p99 {}, max {} (the RevokeSession call alone: p50 {}, p99 {})",
        notification.len(),
        millis(notification.value_at_quantile(0.5)),
        millis(notification.value_at_quantile(0.99)),
        millis(notification.max()),
        millis(revoke_call.value_at_quantile(0.5)),
        millis(revoke_call.value_at_quantile(0.99)),
    );
    Ok(())
}
