//! Measures role-mapping-service, for docs/benchmarks.md:
//!
//! 1. loads a directory over gRPC: `--users` users, `--groups` groups of
//!    `--users / --groups` members each, and `--targets` users who are also
//!    in the first `--target-groups` groups; `--rules` roles, a single-role
//!    mapping with one rule on every fifth group, and Okta's attribute
//!    preset;
//! 2. calls `grpc.health.v1.Health/Check` on role-mapping-service's server
//!    (no work: the gRPC ceiling of that server on this machine), then
//!    GetEffectiveRoles and GetProfile of the target users, computed at each
//!    call, then both again accepting answers up to `--max-staleness-ms`
//!    old, then Health/Check again, each at `--concurrency` for
//!    `--duration` seconds, and prints
//!    throughput and latency percentiles; given `--mesh-pid` and
//!    `--database`, also the CPU the mesh and the database's PostgreSQL
//!    backends spent per call (from `/proc`, Linux only), which varies less
//!    than throughput on a machine shared with other work.
//!
//! `scripts/bench-roles` starts the mesh (`idmesh serve`) on a fresh
//! PostgreSQL database and runs this against it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use hdrhistogram::Histogram;
use idmesh_proto::v1 as pb;
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::role_mapping_service_client::RoleMappingServiceClient;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_runtime::auth::{AuthChannel, Credential};
use serde_json::json;
use tokio::task::JoinSet;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, Parser)]
#[command(about = "Loads a directory and load-tests GetEffectiveRoles and GetProfile")]
struct Args {
    /// A file holding an API key with every scope.
    #[arg(long)]
    api_key_file: PathBuf,
    #[arg(long, default_value = "127.0.0.1:50051")]
    directory_addr: String,
    #[arg(long, default_value = "127.0.0.1:50052")]
    user_addr: String,
    #[arg(long, default_value = "127.0.0.1:50054")]
    group_addr: String,
    #[arg(long, default_value = "127.0.0.1:50055")]
    role_addr: String,
    /// Users of the directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Groups of the directory; the users are spread over them evenly.
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    /// Users whose roles are asked for, each also in `--target-groups` groups.
    #[arg(long, default_value_t = 100)]
    targets: usize,
    #[arg(long, default_value_t = 50)]
    target_groups: usize,
    /// Mapping rules (and roles), one on every fifth group.
    #[arg(long, default_value_t = 20)]
    rules: usize,
    /// Calls in flight at once, while loading and while measuring.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of each measured load, after a second of warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// The process id of the mesh, whose CPU per call is then reported.
    #[arg(long)]
    mesh_pid: Option<u32>,
    /// The mesh's PostgreSQL database, whose backends' CPU per call is then
    /// reported.
    #[arg(long)]
    database: Option<String>,
    /// The `max_staleness` of the second round of GetEffectiveRoles and
    /// GetProfile, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    max_staleness_ms: u64,
}

/// The CPU time (user and system) that `pids` have used so far, in seconds;
/// a process gone meanwhile counts nothing.
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&pid| bench_kit::cpu::of_process(pid)).sum()
}

/// The PostgreSQL backends serving `database` now, by their process titles
/// (`postgres: <cluster>: <user> <database> <client> <state>`).
fn backends_of(database: &str) -> Vec<u32> {
    let needle = format!(" {database} ");
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    processes
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let title = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
            (title.starts_with("postgres: ") && title.contains(&needle)).then_some(pid)
        })
        .collect()
}

struct Mesh {
    users: Vec<UserServiceClient<AuthChannel>>,
    groups: GroupServiceClient<AuthChannel>,
    roles: Vec<RoleMappingServiceClient<AuthChannel>>,
    health: Vec<HealthClient<AuthChannel>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.targets <= args.users && args.target_groups <= args.groups,
        "targets must be among the users and groups"
    );
    ensure!(
        args.rules * 5 <= args.groups.max(5),
        "--rules needs at least 5 groups per rule"
    );
    let key = std::fs::read_to_string(&args.api_key_file).context("the API key file")?;
    let credential = Credential::new(key.trim())?;
    let channel = |addr: &str| idmesh_runtime::grpc::authed_channel(addr, &credential);
    let connections = args.connections.max(1);
    let mesh = Mesh {
        users: (0..connections)
            .map(|_| channel(&args.user_addr).map(UserServiceClient::new))
            .collect::<Result<_, _>>()?,
        groups: GroupServiceClient::new(channel(&args.group_addr)?),
        roles: (0..connections)
            .map(|_| channel(&args.role_addr).map(RoleMappingServiceClient::new))
            .collect::<Result<_, _>>()?,
        health: (0..connections)
            .map(|_| channel(&args.role_addr).map(HealthClient::new))
            .collect::<Result<_, _>>()?,
    };
    let directory_id = DirectoryServiceClient::new(channel(&args.directory_addr)?)
        .create_directory(pb::CreateDirectoryRequest {
            name: "bench-roles".to_owned(),
        })
        .await?
        .into_inner()
        .id;

    let started = Instant::now();
    let users = create_users(&mesh, &args, &directory_id).await?;
    println!(
        "loaded {} users in {:.1} s",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (groups, memberships) = create_groups(&mesh, &args, &directory_id, &users).await?;
    println!(
        "loaded {} groups, {memberships} memberships in {:.1} s",
        args.groups,
        started.elapsed().as_secs_f64()
    );
    let rules = map_roles(&mesh, &args, &directory_id, &groups).await?;
    let targets = Arc::new(users[..args.targets].to_vec());
    let sample = mesh.roles[0]
        .clone()
        .get_effective_roles(pb::GetEffectiveRolesRequest {
            directory_id: directory_id.clone(),
            user_id: targets[0].clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "mapping: {rules} rules, single mode; a target user is in {} groups and has role {:?}",
        args.target_groups,
        sample.roles.iter().map(|r| r.role.as_str()).collect::<Vec<_>>()
    );

    let staleness = Some(Duration::from_millis(args.max_staleness_ms));
    for load in [
        Load::HealthCheck,
        Load::EffectiveRoles(None),
        Load::Profile(None),
        Load::EffectiveRoles(staleness),
        Load::Profile(staleness),
        Load::HealthCheck,
    ] {
        measure(load, &mesh, &args, &directory_id, &targets).await?;
    }
    Ok(())
}

fn to_proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(duration).expect("a staleness of milliseconds fits")
}

/// Runs `concurrency` tasks over `jobs`, each job by `work`.
async fn in_parallel<T, F, Fut>(concurrency: usize, jobs: Vec<T>, work: F) -> anyhow::Result<Vec<Fut::Output>>
where
    T: Send + 'static,
    F: Fn(usize, T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let work = Arc::new(work);
    let jobs = Arc::new(std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>()));
    let mut tasks = JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let (work, jobs) = (Arc::clone(&work), Arc::clone(&jobs));
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = jobs.lock().map(|mut jobs| jobs.pop()).unwrap_or(None);
                let Some((index, job)) = next else { break };
                done.push((index, work(worker, job).await));
            }
            done
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.extend(done?);
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, result)| result).collect())
}

async fn create_users(mesh: &Mesh, args: &Args, directory_id: &str) -> anyhow::Result<Vec<String>> {
    let clients = mesh.users.clone();
    let directory_id = directory_id.to_owned();
    let created = in_parallel(args.concurrency, (0..args.users).collect(), move |worker, i| {
        let mut client = clients[worker % clients.len()].clone();
        let directory_id = directory_id.clone();
        async move {
            let resource = json!({
                "userName": format!("user{i}@bench.example"),
                "name": {"givenName": "Bench", "familyName": format!("User {i}")},
                "emails": [{"value": format!("user{i}@bench.example"), "type": "work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": format!("dept-{}", i % 17)},
                "active": true
            });
            client
                .create_user(pb::CreateUserRequest {
                    directory_id,
                    resource_json: resource.to_string(),
                })
                .await
                .map(|user| user.into_inner().id)
        }
    })
    .await?;
    Ok(created.into_iter().collect::<Result<_, _>>()?)
}

/// The groups, each with its share of the users, the targets in the first
/// `target_groups`: their ids in order, and how many memberships were
/// written.
async fn create_groups(
    mesh: &Mesh,
    args: &Args,
    directory_id: &str,
    users: &[String],
) -> anyhow::Result<(Vec<String>, usize)> {
    let per_group = users.len() / args.groups.max(1);
    let jobs: Vec<(usize, Vec<String>)> = (0..args.groups)
        .map(|g| {
            let mut members: Vec<String> = users[g * per_group..(g + 1) * per_group].to_vec();
            if g < args.target_groups {
                members.extend(users[..args.targets].iter().cloned());
            }
            members.sort();
            members.dedup();
            (g, members)
        })
        .collect();
    let memberships = jobs.iter().map(|(_, members)| members.len()).sum();
    let groups = mesh.groups.clone();
    let directory_id = directory_id.to_owned();
    let created = in_parallel(args.concurrency, jobs, move |_, (g, members)| {
        let mut client = groups.clone();
        let directory_id = directory_id.clone();
        async move {
            let group = client
                .create_group(pb::CreateGroupRequest {
                    directory_id: directory_id.clone(),
                    resource_json: json!({"displayName": format!("group-{g:04}")}).to_string(),
                })
                .await?
                .into_inner();
            client
                .patch_members(pb::PatchMembersRequest {
                    directory_id,
                    group_id: group.id.clone(),
                    add: members,
                    ..Default::default()
                })
                .await?;
            Ok::<_, tonic::Status>((g, group.id))
        }
    })
    .await?;
    let mut ids: Vec<(usize, String)> = created.into_iter().collect::<Result<_, _>>()?;
    ids.sort();
    Ok((ids.into_iter().map(|(_, id)| id).collect(), memberships))
}

async fn map_roles(mesh: &Mesh, args: &Args, directory_id: &str, groups: &[String]) -> anyhow::Result<usize> {
    let mut roles = mesh.roles[0].clone();
    let mut rules = Vec::new();
    for r in 0..args.rules {
        let key = format!("role-{r:02}");
        roles
            .create_role(pb::CreateRoleRequest {
                role: Some(pb::Role {
                    key: key.clone(),
                    ..Default::default()
                }),
            })
            .await?;
        rules.push(pb::MappingRule {
            source: Some(pb::mapping_rule::Source::GroupId(groups[r * 5].clone())),
            roles: vec![key],
            precedence: i32::try_from(args.rules - r)?,
        });
    }
    let count = rules.len();
    roles
        .set_role_mapping(pb::SetRoleMappingRequest {
            directory_id: directory_id.to_owned(),
            mode: pb::RoleMappingMode::Single.into(),
            rules,
            default_role: String::new(),
            ..Default::default()
        })
        .await?;
    roles
        .set_attribute_mapping(pb::SetAttributeMappingRequest {
            directory_id: directory_id.to_owned(),
            fields: Vec::new(),
            preset: pb::AttributePreset::Okta.into(),
        })
        .await?;
    Ok(count)
}

/// What one load calls; the role reads with the `max_staleness` they
/// accept, if any.
#[derive(Debug, Clone, Copy)]
enum Load {
    HealthCheck,
    EffectiveRoles(Option<Duration>),
    Profile(Option<Duration>),
}

impl Load {
    fn name(self) -> String {
        let accepting = |call: &str, staleness: Option<Duration>| match staleness {
            None => format!("{call} (computed at each call)"),
            Some(staleness) => format!("{call} (max_staleness {} ms)", staleness.as_millis()),
        };
        match self {
            Load::HealthCheck => "Health/Check (no work: the gRPC ceiling)".to_owned(),
            Load::EffectiveRoles(staleness) => accepting("GetEffectiveRoles", staleness),
            Load::Profile(staleness) => accepting("GetProfile", staleness),
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds, up to a minute, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

async fn measure(
    load: Load,
    mesh: &Mesh,
    args: &Args,
    directory_id: &str,
    targets: &Arc<Vec<String>>,
) -> anyhow::Result<()> {
    let warm_up = Duration::from_secs(1);
    let measured = Duration::from_secs(args.duration);
    let started = Instant::now();
    let (measure_from, measure_until) = (started + warm_up, started + warm_up + measured);
    let mut tasks = JoinSet::new();
    for worker in 0..args.concurrency.max(1) {
        let mut roles = mesh.roles[worker % mesh.roles.len()].clone();
        let mut health = mesh.health[worker % mesh.health.len()].clone();
        let targets = Arc::clone(targets);
        let directory_id = directory_id.to_owned();
        tasks.spawn(async move {
            let mut latencies = histogram();
            let mut i = worker;
            loop {
                let sent = Instant::now();
                if sent >= measure_until {
                    break;
                }
                let user_id = targets[i % targets.len()].clone();
                match load {
                    Load::HealthCheck => {
                        health.check(HealthCheckRequest::default()).await?;
                    }
                    Load::EffectiveRoles(staleness) => {
                        let request = pb::GetEffectiveRolesRequest {
                            directory_id: directory_id.clone(),
                            user_id,
                            max_staleness: staleness.map(to_proto_duration),
                        };
                        roles.get_effective_roles(request).await?;
                    }
                    Load::Profile(staleness) => {
                        let request = pb::GetProfileRequest {
                            directory_id: directory_id.clone(),
                            user_id,
                            max_staleness: staleness.map(to_proto_duration),
                        };
                        roles.get_profile(request).await?;
                    }
                }
                if sent >= measure_from {
                    latencies.saturating_record(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                i += 1;
            }
            Ok::<_, tonic::Status>(latencies)
        });
    }
    let (mesh_pid, database) = (args.mesh_pid, args.database.clone());
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let backends = database.as_deref().map(backends_of).unwrap_or_default();
        let mesh: Vec<u32> = mesh_pid.into_iter().collect();
        let before = (cpu_seconds(&mesh), cpu_seconds(&backends));
        tokio::time::sleep_until(measure_until.into()).await;
        (cpu_seconds(&mesh) - before.0, cpu_seconds(&backends) - before.1)
    });
    let mut latencies = histogram();
    while let Some(worker) = tasks.join_next().await {
        latencies.add(worker??)?;
    }
    let (mesh_cpu, database_cpu) = cpu.await?;
    let per_call = |seconds: f64| millis((seconds * 1e6 / latencies.len().max(1) as f64) as u64);
    let mut spent = String::new();
    if args.mesh_pid.is_some() {
        spent.push_str(&format!(", mesh CPU {} per call", per_call(mesh_cpu)));
    }
    if args.database.is_some() {
        spent.push_str(&format!(", PostgreSQL CPU {} per call", per_call(database_cpu)));
    }
    println!(
        "{}: {} in flight on {} connections, {} s: {:.0} calls/s, p50 {}, p99 {}, max {}{spent}",
        load.name(),
        args.concurrency,
        mesh.roles.len(),
        args.duration,
        latencies.len() as f64 / measured.as_secs_f64(),
        millis(latencies.value_at_quantile(0.5)),
        millis(latencies.value_at_quantile(0.99)),
        millis(latencies.max()),
    );
    Ok(())
}
