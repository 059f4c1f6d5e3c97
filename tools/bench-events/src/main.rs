//! Measures how long a change takes to reach a consumer of the change
//! stream, for docs/benchmarks.md.
//!
//! Opens a `WatchEvents` stream on a directory, then makes `--changes` SCIM
//! writes through the gateway one at a time, in turn a POST of a user
//! (`user.created`, through user-service), a PATCH of that user's title
//! (`user.updated`) and a PATCH adding it to a group (`member.added`,
//! through group-service). For each it waits for the write's event on the
//! stream and records the time from the SCIM response to the event's
//! arrival, then prints p50, p99 and the maximum.
//!
//! `scripts/bench-gateway` runs it against the `idmesh dev` it starts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bench_kit::{Scim, id_of};
use clap::Parser;
use hdrhistogram::Histogram;
use idmesh_proto::v1 as pb;
use idmesh_proto::v1::event_service_client::EventServiceClient;
use idmesh_runtime::auth::Credential;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long a write's event may take before the run is called failed.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(about = "Times SCIM writes' events from the response to a connected watcher")]
struct Args {
    /// The directory's SCIM base URL, as `idmesh dev` prints it.
    #[arg(long)]
    scim_base: String,
    /// A file holding the directory's SCIM bearer token.
    #[arg(long)]
    scim_token_file: PathBuf,
    /// A file holding an API key with the `events:read` scope.
    #[arg(long)]
    api_key_file: PathBuf,
    /// events-service's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50056")]
    event_addr: String,
    /// SCIM writes to time, each waited for before the next.
    #[arg(long, default_value_t = 1_000)]
    changes: usize,
}

/// The event a write is waited for by.
#[derive(Debug, PartialEq)]
struct Expected {
    kind: pb::EventType,
    resource_id: String,
    member_id: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.changes > 0, "--changes must be at least 1");
    let token = std::fs::read_to_string(&args.scim_token_file).context("the SCIM token file")?;
    let key = std::fs::read_to_string(&args.api_key_file).context("the API key file")?;
    let credential = Credential::new(key.trim())?;
    let mut events = EventServiceClient::new(idmesh_runtime::grpc::authed_channel(&args.event_addr, &credential)?);
    let scim = Scim::new(&args.scim_base, &token, Duration::from_secs(60))?;
    let directory_id = scim.directory_id().to_owned();

    let group = scim
        .send(
            Method::POST,
            "/Groups",
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("bench-events {}", std::process::id()),
            })),
            &[StatusCode::CREATED],
        )
        .await?
        .1;
    let group_id = id_of(&group)?;
    let latest = events
        .list_events(pb::ListEventsRequest {
            directory_id: directory_id.clone(),
            page_size: 1,
            descending: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .latest_sequence;
    let mut stream = events
        .watch_events(pb::WatchEventsRequest {
            directory_id,
            after_sequence: latest,
            types: Vec::new(),
        })
        .await?
        .into_inner();
    // Arrivals are stamped by a task of their own, as they come off the
    // stream, so that the wait for a write's response does not delay them.
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(message)) = stream.message().await {
            if let Some(pb::watch_events_response::Message::Event(event)) = message.message {
                let expected = Expected {
                    kind: event.r#type(),
                    resource_id: event.resource_id,
                    member_id: event.member_id,
                };
                if arrivals.send((expected, Instant::now())).is_err() {
                    break;
                }
            }
        }
    });

    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut user_id = String::new();
    let run = std::process::id();
    for change in 0..args.changes {
        let expected = match change % 3 {
            0 => {
                let user = scim
                    .send(
                        Method::POST,
                        "/Users",
                        Some(&json!({
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": format!("bench-events-{run}-{change}@example.com"),
                        })),
                        &[StatusCode::CREATED],
                    )
                    .await?
                    .1;
                user_id = id_of(&user)?;
                Expected {
                    kind: pb::EventType::UserCreated,
                    resource_id: user_id.clone(),
                    member_id: String::new(),
                }
            }
            1 => {
                scim.send(
                    Method::PATCH,
                    &format!("/Users/{user_id}"),
                    Some(&patch("replace", "title", json!(format!("t{change}")))),
                    &[StatusCode::OK],
                )
                .await?;
                Expected {
                    kind: pb::EventType::UserUpdated,
                    resource_id: user_id.clone(),
                    member_id: String::new(),
                }
            }
            _ => {
                scim.send(
                    Method::PATCH,
                    &format!("/Groups/{group_id}"),
                    Some(&patch("add", "members", json!([{"value": user_id}]))),
                    &[StatusCode::OK, StatusCode::NO_CONTENT],
                )
                .await?;
                Expected {
                    kind: pb::EventType::MemberAdded,
                    resource_id: group_id.clone(),
                    member_id: user_id.clone(),
                }
            }
        };
        let answered = Instant::now();
        let arrival = loop {
            match tokio::time::timeout(EVENT_TIMEOUT, arrived.recv()).await {
                Ok(Some((event, at))) if event == expected => break at,
                Ok(Some(_)) => {}
                Ok(None) => bail!("the event stream ended"),
                Err(_) => bail!("no {expected:?} within {EVENT_TIMEOUT:?}"),
            }
        };
        let micros = arrival.saturating_duration_since(answered).as_micros();
        latencies.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
    }
    println!(
        "{} changes (user.created, user.updated, member.added in turn), SCIM response to the watcher: p50 {}, p90 {}, p99 {}, max {}",
        latencies.len(),
        millis(latencies.value_at_quantile(0.5)),
        millis(latencies.value_at_quantile(0.9)),
        millis(latencies.value_at_quantile(0.99)),
        millis(latencies.max()),
    );
    Ok(())
}

fn patch(op: &str, path: &str, value: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": op, "path": path, "value": value}],
    })
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}
