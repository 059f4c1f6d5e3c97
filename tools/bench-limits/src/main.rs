//! Measures what the limits of issue 12 buy, for docs/benchmarks.md. Each
//! result is a ratio to the same measurement without the load, taken in the
//! same run, so that a busy machine moves both sides alike:
//!
//! 1. **Noisy neighbour.** Directory B reads users at a steady
//!    `--steady-rate` while directory A, alternately idle and flooding at
//!    `--noisy-rate` (ten times its limit by default), is answered 429:
//!    B's p99 with A flooding over B's p99 alone.
//! 2. **Heavy PATCH.** B's steady reads while one client in directory C
//!    PATCHes a user back to back, waiting out each 429's `Retry-After` as
//!    Okta does: B's p99 with the PATCHes over B's p99 alone, for three
//!    PATCHes in turn. The 20,000 addresses of issue 12 (refused),
//!    `--emails` ordinary addresses, and `--emails` of `--email-bytes` each
//!    (the largest document the limits accept).
//! 3. **Memory.** `--writers` PATCHes of that size at once, `--rounds`
//!    times, in directory D (whose rate must admit them all), then a
//!    minute of rest: the resident memory of the process `--pid` before,
//!    at its peak, and after 10, 30 and 60 s.
//! 4. **Cost.** The CPU that a small read and the largest PATCH each take
//!    in the mesh (`--pid`) and in PostgreSQL, one request at a time in
//!    directory D: what the rate's charge for large bodies
//!    (`rate_limit_bytes_per_request`) stands for.
//!
//! Phases alternate (alone, loaded, alone, loaded) so that a drift of the
//! machine shows: each latency ratio is printed next to the same ratio
//! between the two phases alone (what the machine's noise alone makes of
//! it), and each phase with the CPU time the host took from this virtual
//! machine meanwhile (steal). `scripts/bench-limits` starts `idmesh dev`
//! and runs this.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bench_kit::{Answer, Scim, cpu, id_of};
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Parser)]
#[command(about = "Measures rate limits, CPU isolation and memory of the SCIM gateway")]
struct Args {
    /// Directory A (the noisy one): `<SCIM base URL> <token>`.
    #[arg(long, num_args = 2, value_names = ["URL", "TOKEN"])]
    noisy: Vec<String>,
    /// Directory B (the steady one).
    #[arg(long, num_args = 2, value_names = ["URL", "TOKEN"])]
    steady: Vec<String>,
    /// Directory C (the heavy PATCHes).
    #[arg(long, num_args = 2, value_names = ["URL", "TOKEN"])]
    heavy: Vec<String>,
    /// Directory D (the memory test's concurrent PATCHes).
    #[arg(long, num_args = 2, value_names = ["URL", "TOKEN"])]
    bulk: Vec<String>,
    /// B's reads per second (its limit is 50).
    #[arg(long, default_value_t = 20)]
    steady_rate: u32,
    /// A's requests per second while it floods.
    #[arg(long, default_value_t = 500)]
    noisy_rate: u32,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 10)]
    phase_seconds: u64,
    /// E-mail addresses per accepted heavy PATCH (the default is the limit).
    #[arg(long, default_value_t = 1_000)]
    emails: usize,
    /// Bytes of each address of the largest document, and of the memory
    /// test's PATCHes (the default makes a PATCH of about 1 MB).
    #[arg(long, default_value_t = 950)]
    email_bytes: usize,
    /// Heavy PATCHes at once in the memory test.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Rounds of the memory test's PATCHes.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The `idmesh dev` process, for its resident memory.
    #[arg(long)]
    pid: u32,
    /// Run only these scenarios (all four by default), e.g. `--only memory`
    /// to measure memory from a freshly started process.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Noisy,
    Heavy,
    Memory,
    Cost,
}

/// A directory's SCIM client from its `<SCIM base URL> <token>` argument.
/// A request may take ten minutes: the heavy PATCHes are measured, not
/// cut short.
fn scim(url_and_token: &[String]) -> anyhow::Result<Scim> {
    let [base_url, token] = url_and_token else {
        bail!("a directory is given as its SCIM base URL and a token");
    };
    Scim::new(base_url, token, Duration::from_secs(600))
}

/// Creates a user; its id.
async fn create_user(scim: &Scim, user_name: &str) -> anyhow::Result<String> {
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name});
    let (_, created) = scim
        .send(Method::POST, "/Users", Some(&user), &[StatusCode::CREATED])
        .await?;
    id_of(&created)
}

/// Sends `send` at `per_second` until `stop`, each on a task of its own
/// (open loop: a slow answer delays no later request), and returns their
/// latencies in µs; every answer must be 200.
async fn at_rate<F, Fut>(per_second: u32, stop: Arc<AtomicBool>, send: F) -> anyhow::Result<Histogram<u64>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<StatusCode>> + Send + 'static,
{
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let request = send();
        requests.spawn(async move {
            let started = Instant::now();
            let status = request.await?;
            anyhow::Ok((status, started.elapsed()))
        });
    }
    let mut latencies = Histogram::<u64>::new(3).context("a histogram")?;
    while let Some(done) = requests.join_next().await {
        let (status, elapsed) = done??;
        ensure!(status == StatusCode::OK, "a steady read answered {status}");
        latencies.record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))?;
    }
    Ok(latencies)
}

/// B's latencies in one phase, and the CPU time the host took from this
/// virtual machine meanwhile (steal): a stall of the whole machine shows
/// there, not in the mesh.
struct Phase {
    latencies: Histogram<u64>,
    stolen: Duration,
}

/// B's steady reads of one user for a phase, while `load` runs beside them
/// (nothing, a flood, heavy PATCHes); B's latencies, and the load's report.
async fn phase(
    args: &Args,
    steady: &Scim,
    steady_user: &str,
    load: Option<tokio::task::JoinHandle<anyhow::Result<String>>>,
    stop_load: &Arc<AtomicBool>,
) -> anyhow::Result<(Phase, Option<String>)> {
    let stolen_before = stolen()?;
    let stop = Arc::new(AtomicBool::new(false));
    let reads = {
        let (steady, path, stop, rate) = (
            steady.clone(),
            format!("/Users/{steady_user}"),
            stop.clone(),
            args.steady_rate,
        );
        tokio::spawn(async move {
            at_rate(rate, stop, move || {
                let (steady, path) = (steady.clone(), path.clone());
                async move { Ok(steady.answer(Method::GET, &path, None).await?.status) }
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(args.phase_seconds)).await;
    stop.store(true, Ordering::Relaxed);
    stop_load.store(true, Ordering::Relaxed);
    let latencies = reads.await??;
    let stolen = stolen()?.saturating_sub(stolen_before);
    let load_report = match load {
        Some(load) => Some(load.await??),
        None => None,
    };
    stop_load.store(false, Ordering::Relaxed);
    Ok((Phase { latencies, stolen }, load_report))
}

/// CPU time the host has taken from this virtual machine since it booted
/// ([`cpu::stolen`]).
fn stolen() -> anyhow::Result<Duration> {
    cpu::stolen().context("no steal column in /proc/stat")
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

fn describe(Phase { latencies, stolen }: &Phase) -> String {
    format!(
        "{} reads, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; the host took {} ms",
        latencies.len(),
        millis(latencies.value_at_quantile(0.5)),
        millis(latencies.value_at_quantile(0.99)),
        millis(latencies.max()),
        stolen.as_millis()
    )
}

/// A PATCH that replaces `emails` whole with `emails` addresses of
/// `email_bytes` bytes each (at least their ordinary length, about 16).
fn emails_patch(emails: usize, email_bytes: usize, salt: usize) -> Value {
    let padding = "x".repeat(email_bytes.saturating_sub(24));
    let emails: Vec<Value> = (0..emails)
        .map(|i| json!({"value": format!("{padding}{salt}.{i}@example.com")}))
        .collect();
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "emails", "value": emails}]})
}

/// A PATCH of the configured size (`--emails` of `--email-bytes`).
fn heavy_patch(args: &Args, salt: usize) -> Value {
    emails_patch(args.emails, args.email_bytes, salt)
}

/// Resident memory of `pid` now, in MiB (Linux /proc).
fn resident_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("read the process status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no VmRSS line")?
        .parse()
        .context("VmRSS is not a number")?;
    Ok(kib as f64 / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (noisy, steady, heavy, bulk) = (
        scim(&args.noisy)?,
        scim(&args.steady)?,
        scim(&args.heavy)?,
        scim(&args.bulk)?,
    );
    println!("resident memory at start: {:.1} MiB", resident_mib(args.pid)?);
    let runs = |scenario| args.only.is_empty() || args.only.contains(&scenario);
    if runs(Scenario::Noisy) || runs(Scenario::Heavy) {
        let steady_user = create_user(&steady, "steady@example.com").await?;
        if runs(Scenario::Noisy) {
            noisy_neighbour(&args, &steady, &steady_user, &noisy).await?;
        }
        if runs(Scenario::Heavy) {
            heavy_patches(&args, &steady, &steady_user, &heavy).await?;
        }
    }
    if runs(Scenario::Memory) {
        memory(&args, &bulk).await?;
    }
    if runs(Scenario::Cost) {
        cost(&args, &bulk).await?;
    }
    Ok(())
}

/// Scenario 1: B's p99 alone and while A floods.
async fn noisy_neighbour(args: &Args, steady: &Scim, steady_user: &str, noisy: &Scim) -> anyhow::Result<()> {
    let stop_load = Arc::new(AtomicBool::new(false));
    println!(
        "1. noisy neighbour: B reads {}/s; A floods at {}/s",
        args.steady_rate, args.noisy_rate
    );
    let mut alone = Vec::new();
    let mut loaded = Vec::new();
    for _ in 0..2 {
        alone.push(phase(args, steady, steady_user, None, &stop_load).await?.0);
        let flood = {
            let (noisy, stop, rate) = (noisy.clone(), stop_load.clone(), args.noisy_rate);
            on_own_thread(move || async move { flood(noisy.with_own_client()?, rate, stop).await })
        };
        let (measured, report) = phase(args, steady, steady_user, Some(flood), &stop_load).await?;
        loaded.push(measured);
        println!("   A: {}", report.unwrap_or_default());
    }
    report("B alone", "B while A floods", &alone, &loaded);
    Ok(())
}

/// Scenario 2: B's p99 alone and while C sends one kind of PATCH back to
/// back, for each of three: the 20,000 e-mails of issue 12 in one PATCH
/// (refused), `--emails` ordinary addresses (the most of them the limits
/// accept), and `--emails` of `--email-bytes` each (the largest document).
async fn heavy_patches(args: &Args, steady: &Scim, steady_user: &str, heavy: &Scim) -> anyhow::Result<()> {
    let heavy_user = create_user(heavy, "heavy@example.com").await?;
    let path = format!("/Users/{heavy_user}");
    let oversized = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails",
        "value": (0..20_000).map(|i| json!({"value": format!("u{i}@example.com")})).collect::<Vec<_>>()}]});
    let Answer { status, body, .. } = heavy.answer(Method::PATCH, &path, Some(&oversized)).await?;
    println!(
        "2. heavy PATCH: 20,000 e-mails in one PATCH answers {status} {}",
        body["scimType"].as_str().unwrap_or("")
    );
    let loads = [
        ("20,000 e-mails (refused)", oversized, StatusCode::BAD_REQUEST),
        ("ordinary e-mails", emails_patch(args.emails, 0, 1), StatusCode::OK),
        ("the largest document", heavy_patch(args, 1), StatusCode::OK),
    ];
    for (name, body, expected) in loads {
        println!(
            "   {name}: B reads {}/s while C sends a PATCH of {} bytes back to back",
            args.steady_rate,
            body.to_string().len()
        );
        let stop_load = Arc::new(AtomicBool::new(false));
        let (mut alone, mut loaded) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            alone.push(phase(args, steady, steady_user, None, &stop_load).await?.0);
            let patching = {
                let (heavy, stop, body, path) = (heavy.clone(), stop_load.clone(), body.clone(), path.clone());
                on_own_thread(
                    move || async move { patch_loop(heavy.with_own_client()?, path, body, expected, stop).await },
                )
            };
            let (measured, report) = phase(args, steady, steady_user, Some(patching), &stop_load).await?;
            loaded.push(measured);
            println!("   C: {}", report.unwrap_or_default());
        }
        report("B alone", "B while C PATCHes", &alone, &loaded);
    }
    Ok(())
}

/// Runs a load (A's flood, C's PATCHes) on a runtime and a thread of its
/// own. An IdP does its client-side work on its own machine: building,
/// sending and reading 1 MB bodies on the runtime that times B's reads
/// would add the load generator's own delays to B's latencies.
fn on_own_thread<F, Fut>(load: F) -> tokio::task::JoinHandle<anyhow::Result<String>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<String>>,
{
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(load())
    })
}

/// A's flood: `rate` GETs a second, counting the answers by status.
async fn flood(noisy: Scim, rate: u32, stop: Arc<AtomicBool>) -> anyhow::Result<String> {
    let (ok, limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let mut requests = JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let (noisy, ok, limited) = (noisy.clone(), ok.clone(), limited.clone());
        requests.spawn(async move {
            match noisy.answer(Method::GET, "/Users?count=1", None).await {
                Ok(Answer {
                    status: StatusCode::OK, ..
                }) => ok.fetch_add(1, Ordering::Relaxed),
                Ok(Answer {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    ..
                }) => limited.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        });
    }
    while requests.join_next().await.is_some() {}
    Ok(format!(
        "{} answered 200, {} answered 429",
        ok.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed)
    ))
}

/// PATCHes `path` with `body` one after another until `stop`, each
/// answered `expected` or 429, whose `Retry-After` it waits out as Okta
/// does.
async fn patch_loop(
    heavy: Scim,
    path: String,
    body: Value,
    expected: StatusCode,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<String> {
    let (mut done, mut limited, mut busy, mut waited) = (0u32, 0u32, Duration::ZERO, Duration::ZERO);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let answer = heavy.answer(Method::PATCH, &path, Some(&body)).await?;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            let wait = answer.retry_after.context("a 429 without Retry-After")?;
            limited += 1;
            waited += wait;
            tokio::time::sleep(wait).await;
            continue;
        }
        ensure!(
            answer.status == expected,
            "the heavy PATCH answered {}: {}",
            answer.status,
            answer.body
        );
        done += 1;
        busy += started.elapsed();
    }
    Ok(format!(
        "{done} PATCHes, {:.0} ms each; {limited} answered 429, {:.0} s waited out",
        busy.as_secs_f64() * 1_000.0 / f64::from(done.max(1)),
        waited.as_secs_f64()
    ))
}

/// Each phase's p99 and the ratio of the worst loaded one to the best one
/// alone, next to the same ratio between the phases alone: how far the
/// machine alone moves the statistic (the noise floor).
fn report(alone_name: &str, loaded_name: &str, alone: &[Phase], loaded: &[Phase]) {
    for (i, (a, l)) in alone.iter().zip(loaded).enumerate() {
        println!("   round {}: {alone_name}: {}", i + 1, describe(a));
        println!("   round {}: {loaded_name}: {}", i + 1, describe(l));
    }
    let p99 = |phase: &Phase| phase.latencies.value_at_quantile(0.99);
    let best_alone = alone.iter().map(p99).min().unwrap_or(1).max(1);
    let worst_alone = alone.iter().map(p99).max().unwrap_or(0);
    let worst_loaded = loaded.iter().map(p99).max().unwrap_or(0);
    println!(
        "   p99 ratio (worst loaded / best alone): {:.2}; alone against alone: {:.2}",
        worst_loaded as f64 / best_alone as f64,
        worst_alone as f64 / best_alone as f64
    );
}

/// `--writers` heavy PATCHes at once, `--rounds` times, then a minute of
/// rest, sampling the resident memory of `--pid`.
async fn memory(args: &Args, bulk: &Scim) -> anyhow::Result<()> {
    let mut users = Vec::new();
    for i in 0..args.writers {
        users.push(create_user(bulk, &format!("memory{i}@example.com")).await?);
    }
    let before = resident_mib(args.pid)?;
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), args.pid);
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(mib) = resident_mib(pid) {
                    peak.fetch_max((mib * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut refused = 0;
    for round in 0..args.rounds {
        let mut writes = JoinSet::new();
        for (i, user) in users.iter().enumerate() {
            let (bulk, path, body) = (
                bulk.clone(),
                format!("/Users/{user}"),
                heavy_patch(args, round * 100 + i),
            );
            writes.spawn(async move { bulk.answer(Method::PATCH, &path, Some(&body)).await });
        }
        while let Some(done) = writes.join_next().await {
            let Answer { status, body, .. } = done??;
            ensure!(
                status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                "a memory-test PATCH answered {status}: {body}"
            );
            refused += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
        }
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let peak = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    println!(
        "3. memory: {} PATCHes at once, {} rounds ({refused} answered 503): resident {before:.1} MiB before, {peak:.1} MiB at the peak",
        args.writers, args.rounds
    );
    let rest = Instant::now();
    for mark in [10, 30, 60] {
        tokio::time::sleep_until((rest + Duration::from_secs(mark)).into()).await;
        println!("   after {mark} s: {:.1} MiB", resident_mib(args.pid)?);
    }
    Ok(())
}

/// Scenario 4: the CPU of 1,000 reads of a small user and of 40 PATCHes
/// rewriting a user with `--emails` addresses of `--email-bytes`, one
/// request at a time.
async fn cost(args: &Args, bulk: &Scim) -> anyhow::Result<()> {
    const READS: u32 = 1_000;
    const PATCHES: u32 = 40;
    let small = format!("/Users/{}", create_user(bulk, "cost-small@example.com").await?);
    let large = format!("/Users/{}", create_user(bulk, "cost-large@example.com").await?);
    let bodies = [heavy_patch(args, 1), heavy_patch(args, 2)];
    let expect_ok = |answer: &Answer| {
        ensure!(answer.status == StatusCode::OK, "{}: {}", answer.status, answer.body);
        Ok(())
    };
    expect_ok(&bulk.answer(Method::PATCH, &large, Some(&bodies[1])).await?)?;

    let before = cpu_seconds(args.pid)?;
    for _ in 0..READS {
        expect_ok(&bulk.answer(Method::GET, &small, None).await?)?;
    }
    let reads = cpu_seconds(args.pid)?;
    let mut answer_bytes = 0;
    for i in 0..PATCHES {
        let answer = bulk
            .answer(Method::PATCH, &large, Some(&bodies[i as usize % 2]))
            .await?;
        expect_ok(&answer)?;
        answer_bytes = answer.body.to_string().len();
    }
    let patches = cpu_seconds(args.pid)?;

    let read = (reads.0 - before.0, reads.1 - before.1);
    let patch = (patches.0 - reads.0, patches.1 - reads.1);
    let per = |(mesh, postgres): (f64, f64), n: u32| (mesh * 1_000.0 / f64::from(n), postgres * 1_000.0 / f64::from(n));
    let (read, patch) = (per(read, READS), per(patch, PATCHES));
    let reads_per_patch = (patch.0 + patch.1) / (read.0 + read.1);
    let body_bytes = bodies[0].to_string().len();
    println!("4. cost, one request at a time: CPU in ms, the mesh + PostgreSQL");
    println!("   a small read: {:.2} + {:.2}", read.0, read.1);
    println!(
        "   a PATCH of {body_bytes} bytes answered with {answer_bytes}: {:.1} + {:.1}, as much as {reads_per_patch:.0} small reads",
        patch.0, patch.1
    );
    println!(
        "   a charge in proportion to CPU: one request per {:.0} bytes of body and answer",
        (body_bytes + answer_bytes) as f64 / reads_per_patch
    );
    Ok(())
}

/// CPU seconds used so far by the process `pid` and by every `postgres`
/// process (Linux /proc; their backends are pooled, so none exits while
/// it is measured).
fn cpu_seconds(pid: u32) -> anyhow::Result<(f64, f64)> {
    let mesh = cpu::of_process(pid).context("the mesh's /proc/<pid>/stat")?;
    let mut postgres = 0.0;
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres") {
            postgres += cpu::of_process(pid).unwrap_or(0.0);
        }
    }
    Ok((mesh, postgres))
}
