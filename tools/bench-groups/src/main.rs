//! Measures what large groups cost through the SCIM gateway, for
//! docs/benchmarks.md:
//!
//! 1. provisions `--members` users (POST /Users, `--concurrency` at once);
//! 2. grows one group to all of them by PATCHes of `--batch` members each,
//!    in Okta's shape (`add` on `members`), timing every PATCH, and reports
//!    the first and last ones: a membership change must not grow with the
//!    group;
//! 3. times GET of the full group with `excludedAttributes=members`, and
//!    one GET with every member;
//! 4. reports the peak resident memory of group-service (`VmHWM` of the
//!    process given by `--group-service-pid`).
//!
//! `scripts/bench-groups` starts the mesh on a fresh PostgreSQL database,
//! with group-service in a process of its own, and runs this against it.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bench_kit::{Scim, id_of};
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Parser)]
#[command(about = "Grows one SCIM group by large PATCHes and times them")]
struct Args {
    /// The directory's SCIM base URL, `http://host:port/scim/v2/<directory id>`.
    #[arg(long)]
    base_url: String,
    /// A bearer token of that directory.
    #[arg(long)]
    token: String,
    /// How many users to provision, and the size the group grows to.
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    /// Members added by each PATCH.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// POST /Users requests in flight at once while provisioning.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// GETs of the group without its members, for their latency.
    #[arg(long, default_value_t = 200)]
    reads: usize,
    /// group-service's process id, for its peak memory.
    #[arg(long)]
    group_service_pid: Option<u32>,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Creates `count` users, `concurrency` requests at a time; their ids in
/// creation order.
async fn provision_users(scim: &Scim, count: usize, concurrency: usize) -> anyhow::Result<Vec<String>> {
    let run = std::process::id();
    let mut ids = vec![String::new(); count];
    let mut in_flight = JoinSet::new();
    let mut next = 0;
    let started = Instant::now();
    while next < count || !in_flight.is_empty() {
        while next < count && in_flight.len() < concurrency {
            let scim = scim.clone();
            let n = next;
            in_flight.spawn(async move {
                let user = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("bench-{run}-{n}@example.com"),
                    "displayName": format!("Bench User {n}"),
                });
                let (_, created) = scim
                    .send(Method::POST, "/Users", Some(&user), &[StatusCode::CREATED])
                    .await?;
                anyhow::Ok((n, id_of(&created)?))
            });
            next += 1;
        }
        if let Some(done) = in_flight.join_next().await {
            let (n, id) = done??;
            ids[n] = id;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "provisioned {count} users in {:.1} s ({:.0} users/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(ids)
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_memory_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("read the process status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("no VmHWM line")?;
    line.split_whitespace()
        .nth(1)
        .context("an empty VmHWM line")?
        .parse()
        .context("VmHWM is not a number")
}

/// Median and largest of some durations, in milliseconds.
fn summary(durations: &[Duration]) -> String {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    format!("median {:.1} ms, max {:.1} ms", millis(median), millis(max))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.batch > 0 && args.members >= args.batch,
        "--members must be at least --batch, which is positive"
    );
    let scim = Scim::new(&args.base_url, &args.token, Duration::from_secs(120))?;
    let users = provision_users(&scim, args.members, args.concurrency).await?;

    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": format!("bench-{}", std::process::id()),
    });
    let (_, group) = scim
        .send(Method::POST, "/Groups", Some(&group), &[StatusCode::CREATED])
        .await?;
    let group_path = format!("/Groups/{}", id_of(&group)?);

    let mut patches = Vec::with_capacity(users.len() / args.batch);
    for (n, batch) in users.chunks(args.batch).enumerate() {
        let members: Vec<Value> = batch
            .iter()
            .map(|id| json!({"value": id, "display": "Bench User"}))
            .collect();
        let body = json!({
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": members}],
        });
        let started = Instant::now();
        let (status, _) = scim
            .send(
                Method::PATCH,
                &group_path,
                Some(&body),
                &[StatusCode::OK, StatusCode::NO_CONTENT],
            )
            .await?;
        let took = started.elapsed();
        patches.push(took);
        let size = (n + 1) * args.batch.min(batch.len());
        if n < 3 || n % 10 == 9 {
            println!(
                "PATCH {n:>4}: +{} members → {size:>6}: {:>7.1} ms ({status})",
                batch.len(),
                millis(took)
            );
        }
    }
    let tenth = (patches.len() / 10).max(1);
    println!(
        "{}-member PATCHes: first {tenth}: {}; last {tenth}: {}; all {}: {}",
        args.batch,
        summary(&patches[..tenth]),
        summary(&patches[patches.len() - tenth..]),
        patches.len(),
        summary(&patches),
    );

    let (_, count) = scim
        .send(
            Method::GET,
            &format!(
                "/Groups?filter=id%20eq%20%22{}%22&excludedAttributes=members",
                id_of(&group)?
            ),
            None,
            &[StatusCode::OK],
        )
        .await?;
    ensure!(count["totalResults"] == json!(1), "the group is not listed: {count}");

    let mut reads = Histogram::<u64>::new(3)?;
    let without_members = format!("{group_path}?excludedAttributes=members");
    for _ in 0..args.reads {
        let started = Instant::now();
        let (_, body) = scim
            .send(Method::GET, &without_members, None, &[StatusCode::OK])
            .await?;
        reads.record(u64::try_from(started.elapsed().as_micros())?)?;
        ensure!(
            body.get("members").is_none(),
            "excludedAttributes=members returned members"
        );
    }
    println!(
        "GET group ({} members) ?excludedAttributes=members, {} times: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        users.len(),
        args.reads,
        reads.value_at_quantile(0.5) as f64 / 1_000.0,
        reads.value_at_quantile(0.99) as f64 / 1_000.0,
        reads.max() as f64 / 1_000.0,
    );

    let started = Instant::now();
    let (_, full) = scim.send(Method::GET, &group_path, None, &[StatusCode::OK]).await?;
    let took = started.elapsed();
    let listed = full["members"].as_array().map_or(0, Vec::len);
    ensure!(
        listed == users.len(),
        "GET group listed {listed} members, not {}",
        users.len()
    );
    println!("GET group with all {listed} members: {:.0} ms", millis(took));

    if let Some(pid) = args.group_service_pid {
        println!(
            "group-service peak resident memory (VmHWM): {} MiB",
            peak_memory_kib(pid)? / 1024
        );
    }
    Ok(())
}
