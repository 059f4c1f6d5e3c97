//! Replays what Microsoft Entra ID sends to provision a new directory, for
//! docs/benchmarks.md (issue 17's initial sync):
//!
//! 1. Test Connection: a lookup of a user who does not exist;
//! 2. for each of `--users` users, a lookup by `userName` (none found),
//!    then a POST in Entra's shape;
//! 3. for each of `--groups` groups, a lookup by `displayName` with
//!    `excludedAttributes=members`, then a POST without members;
//! 4. each user added to `--groups-per-user` groups by Entra's Title-case
//!    `Add` of `members`, `--batch` members per PATCH.
//!
//! Entra sends one request at a time per connection and takes hours for
//! this at its documented floor of 25 requests/s; here `--concurrency`
//! requests are in flight at once, like several connections. Prints the
//! time and rate of each phase and the total; any answer but the expected
//! one fails the run.
//!
//! `scripts/bench-gateway --initial-sync` runs it against the `idmesh dev`
//! it starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bench_kit::{Scim, id_of};
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
#[command(about = "Replays Entra ID's initial sync of a directory through the SCIM gateway")]
struct Args {
    /// The directory's SCIM base URL, as `idmesh dev` prints it.
    #[arg(long)]
    scim_base: String,
    /// A file holding the directory's SCIM bearer token.
    #[arg(long)]
    scim_token_file: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    /// Groups each user joins: users × this is the number of memberships.
    #[arg(long, default_value_t = 2)]
    groups_per_user: usize,
    /// Members added per PATCH.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.users > 0 && args.groups > 0 && args.batch > 0 && args.concurrency > 0,
        "--users, --groups, --batch and --concurrency must be at least 1"
    );
    ensure!(
        args.groups_per_user <= args.groups,
        "--groups-per-user cannot exceed --groups"
    );
    let token = std::fs::read_to_string(&args.scim_token_file).context("the SCIM token file")?;
    let scim = Arc::new(Scim::new(&args.scim_base, &token, Duration::from_secs(60))?);
    let run = std::process::id();
    let started = Instant::now();

    let lookup = format!("/Users?filter=userName+eq+%22test-connection-{run}%22");
    let found = scim.send(Method::GET, &lookup, None, &[StatusCode::OK]).await?.1;
    ensure!(found["totalResults"] == 0, "Test Connection found a user: {found}");

    let users = phase("users (a lookup and a POST each)", &args, args.users, {
        let scim = scim.clone();
        move |i| {
            let scim = scim.clone();
            async move {
                let user_name = format!("entra-{run}-{i}@example.com");
                let lookup = format!("/Users?filter=userName+eq+%22{user_name}%22");
                let found = scim.send(Method::GET, &lookup, None, &[StatusCode::OK]).await?.1;
                ensure!(found["totalResults"] == 0, "{user_name} exists already");
                let user = scim
                    .send(
                        Method::POST,
                        "/Users",
                        Some(&entra_user(&user_name, i)),
                        &[StatusCode::CREATED],
                    )
                    .await?
                    .1;
                id_of(&user)
            }
        }
    })
    .await?;

    let groups = phase("groups (a lookup and a POST each)", &args, args.groups, {
        let scim = scim.clone();
        move |i| {
            let scim = scim.clone();
            async move {
                let name = format!("entra-{run}-group-{i}");
                let lookup = format!("/Groups?excludedAttributes=members&filter=displayName+eq+%22{name}%22");
                let found = scim.send(Method::GET, &lookup, None, &[StatusCode::OK]).await?.1;
                ensure!(found["totalResults"] == 0, "{name} exists already");
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "externalId": format!("group-{run}-{i}"),
                    "displayName": name,
                });
                let group = scim
                    .send(Method::POST, "/Groups", Some(&body), &[StatusCode::CREATED])
                    .await?
                    .1;
                id_of(&group)
            }
        }
    })
    .await?;

    // User i joins groups i, i + 1, … (mod the number of groups); each
    // group's members go in batches.
    let mut members: Vec<Vec<&str>> = vec![Vec::new(); groups.len()];
    for (i, user_id) in users.iter().enumerate() {
        for k in 0..args.groups_per_user {
            members[(i + k) % groups.len()].push(user_id);
        }
    }
    let batches: Arc<Vec<(String, Vec<String>)>> = Arc::new(
        members
            .iter()
            .zip(&groups)
            .flat_map(|(members, group_id)| {
                members
                    .chunks(args.batch)
                    .map(|batch| (group_id.clone(), batch.iter().map(|id| (*id).to_owned()).collect()))
            })
            .collect(),
    );
    let memberships = users.len() * args.groups_per_user;
    phase(
        &format!("memberships ({memberships} in PATCHes of up to {})", args.batch),
        &args,
        batches.len(),
        {
            let scim = scim.clone();
            let batches = batches.clone();
            move |i| {
                let scim = scim.clone();
                let batches = batches.clone();
                async move {
                    let (group_id, batch) = &batches[i];
                    let value: Vec<Value> = batch.iter().map(|id| json!({"value": id})).collect();
                    let body = json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "Add", "path": "members", "value": value}],
                    });
                    let path = format!("/Groups/{group_id}?excludedAttributes=members");
                    scim.send(Method::PATCH, &path, Some(&body), &[StatusCode::OK]).await?;
                    Ok(())
                }
            }
        },
    )
    .await?;
    println!(
        "initial sync of {} users, {} groups and {memberships} memberships: {:.1} s",
        users.len(),
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `work(0..count)` with `--concurrency` in flight, prints the phase's
/// time, rate and latencies, and answers the results in order.
async fn phase<T, F, Fut>(name: &str, args: &Args, count: usize, work: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send,
{
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..args.concurrency.min(count) {
        let next = next.clone();
        let work = work.clone();
        workers.spawn(async move {
            let mut done = Vec::new();
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok((done, latencies));
                }
                let sent = Instant::now();
                done.push((i, work(i).await?));
                latencies.saturating_record(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
        });
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    while let Some(worker) = workers.join_next().await {
        let (done, worker_latencies) = worker??;
        latencies.add(worker_latencies)?;
        for (i, result) in done {
            results[i] = Some(result);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{name}: {count} in {:.1} s, {:.0} /s, p50 {}, p99 {} each",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        millis(latencies.value_at_quantile(0.5)),
        millis(latencies.value_at_quantile(0.99)),
    );
    Ok(results.into_iter().flatten().collect())
}

/// A user as Entra ID creates it (its tutorial's request: Title-case
/// attributes aside, the enterprise extension, a work e-mail, a name).
fn entra_user(user_name: &str, i: usize) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "externalId": format!("entra-external-{i}"),
        "userName": user_name,
        "active": true,
        "displayName": format!("User {i}"),
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("User {i}"), "familyName": format!("{i}"), "givenName": "User"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": format!("Department {}", i % 50)},
    })
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}
