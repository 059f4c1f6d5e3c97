//! Delivering the log to the endpoints.
//!
//! Once a second, and whenever events were appended, a scan finds the
//! (endpoint, directory) cursors that are behind their directory's log and
//! due, and starts a delivery for each (at most [`MAX_CONCURRENT`] at a
//! time). A delivery claims its cursor's lease and sends the events after
//! it one at a time, in sequence order, each only after the previous one
//! got a 2xx. The first failure ends the delivery: the cursor records when
//! to try again, and the next scan after that time starts over from the
//! same event. A delivery also ends after its turn ([`TURN`]), when a
//! replay moves its cursor on, and when the service stops; each time it
//! records what it delivered and gives the lease back, so the next scan
//! (here or on another replica) goes on at once. Nothing here runs on a
//! SCIM request's path.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use idmesh_proto::v1::{Event, EventType};
use sea_orm::{DbErr, Set};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::addresses::{self, Resolver};
use super::signing;
use super::store::{Failure, Store};
use crate::entity::{event_head, webhook, webhook_attempt, webhook_cursor};
use crate::log::{Log, Range};

/// The counter of delivery attempts, by outcome (`delivered`, `failed`).
pub(crate) const ATTEMPTS_METRIC: &str = "idmesh_webhook_attempts_total";

/// The gauges of endpoints whose next event has failed, and of disabled
/// endpoints, refreshed by every scan.
const FAILING_METRIC: &str = "idmesh_webhooks_failing";
const DISABLED_METRIC: &str = "idmesh_webhooks_disabled";

/// How often the scan runs without an append to wake it: for retries that
/// come due, and for events another replica appended.
const SCAN_EVERY: Duration = Duration::from_secs(1);

/// The shortest time between two scans woken by appends.
const SCAN_GAP: Duration = Duration::from_millis(100);

/// Deliveries under way at once, across endpoints.
const MAX_CONCURRENT: usize = 16;

/// How long one delivery goes on before it hands its cursor back to the
/// scan, so that endpoints behind a long backlog do not keep every
/// delivery slot.
const TURN: Duration = Duration::from_secs(30);

/// How long a claimed cursor stays this replica's without progress: longer
/// than an attempt may take.
const LEASE: Duration = Duration::from_secs(60);

/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Events read from the log at a time.
const BATCH: u64 = 100;

/// How long successful deliveries may go unrecorded: well within the
/// lease, so that the lease is renewed while a slow endpoint takes a batch.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The backoff: 2 s after the first failure, four times longer after each
/// next one, never more than an hour; each delay jittered to between half
/// and all of it, so that endpoints failing together do not retry together.
const FIRST_RETRY: Duration = Duration::from_secs(2);
const LONGEST_RETRY: Duration = Duration::from_secs(60 * 60);

/// The longest `Retry-After` honoured as given; a longer one is cut to it.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The shortest wait after a failure, whatever `Retry-After` says.
const SHORTEST_RETRY: Duration = Duration::from_secs(1);

/// The most of an answer's body read (and dropped).
const ANSWER_BYTES: usize = 64 * 1024;

/// The most characters of a failed attempt's error kept.
const ERROR_CHARS: usize = 256;

/// The HTTP client of deliveries.
pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

/// Delivers the log to the endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Deliverer {
    pub store: Store,
    pub log: Log,
    pub client: HttpClient,
    /// How long an event is retried before its endpoint is disabled.
    pub retry_window: Duration,
    /// Whether endpoints may be on private networks (see [`addresses`]).
    pub allow_private_networks: bool,
}

/// The HTTP client of deliveries: HTTP/1.1, TLS by rustls on ring with
/// Mozilla's roots, connecting only to public addresses unless
/// `allow_private_networks`. It follows no redirect: a 3xx is a failure,
/// since the endpoint's URL is what was registered.
pub(crate) fn client(allow_private_networks: bool) -> Result<HttpClient, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new_with_resolver(Resolver {
        allow_private: allow_private_networks,
    });
    http.enforce_http(false);
    http.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
    // A delivery is one small request at a time: nothing to gain from
    // Nagle's algorithm holding segments back.
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The event types an endpoint wants (none: every type).
pub(crate) fn parse_types(types: &str) -> Vec<i32> {
    types.split(',').filter_map(|t| t.parse().ok()).collect()
}

/// Runs the scans until `shutdown`, then waits for the deliveries under
/// way: each stops at once, records what it delivered and gives its cursor
/// back, so that another replica takes over without waiting out the lease.
pub(crate) async fn run(deliverer: Deliverer, shutdown: CancellationToken) {
    metrics::counter!(ATTEMPTS_METRIC, "outcome" => "delivered").increment(0);
    metrics::counter!(ATTEMPTS_METRIC, "outcome" => "failed").increment(0);
    let mut appended = deliverer.log.subscribe();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    // The cursors this replica is delivering for.
    let running: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    let mut deliveries = JoinSet::new();
    loop {
        while deliveries.try_join_next().is_some() {}
        match deliverer.due(now_ms()).await {
            Ok(mut due) => {
                // From a random place in the list, so that when more are
                // due than can run, each gets its turn.
                if !due.is_empty() {
                    let offset = usize::try_from(getrandom::u64().unwrap_or(0) % due.len() as u64).unwrap_or(0);
                    due.rotate_left(offset);
                }
                for (webhook, directory_id, start) in due {
                    let key = (webhook.id.clone(), directory_id.clone());
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        break;
                    };
                    if !running.lock().is_ok_and(|mut running| running.insert(key.clone())) {
                        continue;
                    }
                    let deliverer = deliverer.clone();
                    let running = running.clone();
                    let shutdown = shutdown.clone();
                    deliveries.spawn(async move {
                        if let Err(err) = deliverer.deliver(&webhook, &directory_id, start, &shutdown).await {
                            tracing::warn!(webhook_id = %webhook.id, %directory_id, error = %err, "webhook delivery stopped; will try again");
                        }
                        if let Ok(mut running) = running.lock() {
                            running.remove(&key);
                        }
                        drop(permit);
                    });
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not look for webhook deliveries; will try again"),
        }
        tokio::select! {
            // Appends come in streams: one scan per SCAN_GAP at most.
            _ = appended.changed() => tokio::time::sleep(SCAN_GAP).await,
            () = tokio::time::sleep(SCAN_EVERY) => {}
            () = shutdown.cancelled() => break,
        }
    }
    while deliveries.join_next().await.is_some() {}
}

/// How one attempt went.
#[derive(Debug)]
enum Outcome {
    Delivered,
    /// The endpoint answered 410 Gone.
    Gone,
    Failed {
        error: String,
        /// When the endpoint asked to be tried again (429 or 503).
        retry_after: Option<Duration>,
    },
}

impl Deliverer {
    /// The enabled (endpoint, directory) cursors that are behind and due,
    /// each with where a cursor that does not exist yet starts.
    async fn due(&self, now_ms: i64) -> Result<Vec<(webhook::Model, String, i64)>, DbErr> {
        let (webhooks, disabled): (Vec<_>, Vec<_>) = self
            .store
            .list(None)
            .await?
            .into_iter()
            .partition(|webhook| webhook.disabled_ms.is_none());
        metrics::gauge!(DISABLED_METRIC).set(disabled.len() as f64);
        if webhooks.is_empty() {
            metrics::gauge!(FAILING_METRIC).set(0.0);
            return Ok(Vec::new());
        }
        let heads = self.log.heads().await?;
        let cursors: HashMap<(String, String), webhook_cursor::Model> = self
            .store
            .all_cursors()
            .await?
            .into_iter()
            .map(|cursor| ((cursor.webhook_id.clone(), cursor.directory_id.clone()), cursor))
            .collect();
        let failing: HashSet<&str> = cursors
            .values()
            .filter(|cursor| cursor.failed_attempts > 0)
            .map(|cursor| cursor.webhook_id.as_str())
            .collect();
        let failing = webhooks
            .iter()
            .filter(|webhook| failing.contains(webhook.id.as_str()))
            .count();
        metrics::gauge!(FAILING_METRIC).set(failing as f64);
        let by_directory: HashMap<&str, &event_head::Model> =
            heads.iter().map(|head| (head.directory_id.as_str(), head)).collect();
        let mut due = Vec::new();
        for webhook in webhooks {
            let covered: Vec<&event_head::Model> = if webhook.directory_id.is_empty() {
                heads.iter().collect()
            } else {
                by_directory
                    .get(webhook.directory_id.as_str())
                    .copied()
                    .into_iter()
                    .collect()
            };
            for head in covered {
                let key = (webhook.id.clone(), head.directory_id.clone());
                let start = match cursors.get(&key) {
                    Some(cursor) if cursor.next_attempt_ms > now_ms || cursor.lease_until_ms >= now_ms => continue,
                    Some(cursor) => cursor.delivered_through,
                    // A directory whose first events came after the
                    // endpoint was created: all of them are for it.
                    None => head.pruned_through,
                };
                if start < head.latest {
                    due.push((webhook.clone(), head.directory_id.clone(), start));
                }
            }
        }
        Ok(due)
    }

    /// Delivers the directory's events after the cursor until the log's
    /// end, a failure, a replay or a lost lease, the end of its turn, or
    /// `shutdown`.
    async fn deliver(
        &self,
        webhook: &webhook::Model,
        directory_id: &str,
        start: i64,
        shutdown: &CancellationToken,
    ) -> Result<(), DbErr> {
        let lease_until = || now_ms().saturating_add(millis(LEASE));
        let owner = uuid::Uuid::now_v7().to_string();
        let Some(mut cursor) = self
            .store
            .claim(&webhook.id, directory_id, start, &owner, now_ms(), lease_until())
            .await?
        else {
            return Ok(());
        };
        let types = parse_types(&webhook.types);
        let turn_ends = std::time::Instant::now() + TURN;
        'batches: loop {
            // Read again each batch (every FLUSH_EVERY at most): the secret
            // may have been rotated, the endpoint disabled or removed.
            let Some(webhook) = self.store.get(&webhook.id).await? else {
                return self.store.forget(&cursor).await;
            };
            if webhook.disabled_ms.is_some() || shutdown.is_cancelled() || std::time::Instant::now() > turn_ends {
                return self.store.release(&cursor).await;
            }
            let head = self.log.head(directory_id).await?;
            let range = Range {
                from: cursor.delivered_through,
                through: Some(head.latest),
                descending: false,
                types: &types,
                limit: BATCH,
            };
            let events = self.log.read(directory_id, range).await?;
            // After the read: retention that ran meanwhile shows here.
            let pruned_through = self.log.head(directory_id).await?.pruned_through;
            if cursor.delivered_through < pruned_through {
                let reason = format!(
                    "retention removed events after {} before they were delivered (it keeps those after {}); \
                     resync, then replay",
                    cursor.delivered_through, pruned_through
                );
                self.store.disable(&webhook.id, &reason, now_ms()).await?;
                return self.store.release(&cursor).await;
            }
            if events.is_empty() {
                // Nothing of the endpoint's types: skip to the end.
                if head.latest > cursor.delivered_through {
                    self.store.advance(&cursor, head.latest, Vec::new(), 0).await?;
                }
                return self.store.release(&cursor).await;
            }
            // Successes are recorded together (attempts and the cursor's
            // move, in one transaction) at the end of the batch or every
            // FLUSH_EVERY, instead of two writes per event. A crash before
            // a flush sends those events again, which the same webhook-id
            // lets a receiver recognise; the order holds either way.
            let mut delivered = Vec::new();
            let flushed = std::time::Instant::now();
            for event in events {
                // Only the cursor's next event can have failed before.
                let failures = if delivered.is_empty() && event.sequence - 1 == cursor.delivered_through {
                    cursor.failed_attempts
                } else {
                    0
                };
                let (attempt, outcome) = tokio::select! {
                    sent = self.attempt(&webhook, directory_id, &event, failures) => sent,
                    // Whether the endpoint got the event is unknown: the
                    // next owner of the cursor sends it again.
                    () = shutdown.cancelled() => {
                        self.flush(&mut cursor, &mut delivered, 0).await?;
                        return self.store.release(&cursor).await;
                    }
                };
                match outcome {
                    Outcome::Delivered => {
                        delivered.push(attempt);
                        if flushed.elapsed() >= FLUSH_EVERY {
                            if !self.flush(&mut cursor, &mut delivered, lease_until()).await? {
                                return self.store.release(&cursor).await;
                            }
                            continue 'batches;
                        }
                    }
                    Outcome::Gone => {
                        if !self.flush(&mut cursor, &mut delivered, lease_until()).await? {
                            return self.store.release(&cursor).await;
                        }
                        self.store.record(attempt).await?;
                        tracing::warn!(webhook_id = %webhook.id, url = %webhook.url, "webhook disabled: the endpoint answered 410 Gone");
                        self.store
                            .disable(&webhook.id, "the endpoint answered 410 Gone", now_ms())
                            .await?;
                        return self.store.release(&cursor).await;
                    }
                    Outcome::Failed { error, retry_after } => {
                        if !self.flush(&mut cursor, &mut delivered, lease_until()).await? {
                            return self.store.release(&cursor).await;
                        }
                        return self
                            .failed(&webhook, &cursor, &event, attempt, error, retry_after)
                            .await;
                    }
                }
            }
            if !self.flush(&mut cursor, &mut delivered, lease_until()).await? {
                // Replayed or taken over meanwhile: the next scan goes on.
                return self.store.release(&cursor).await;
            }
        }
    }

    /// Records the successful `attempts` and moves the cursor past the last
    /// of them; false when the cursor was moved meanwhile (replayed).
    async fn flush(
        &self,
        cursor: &mut webhook_cursor::Model,
        attempts: &mut Vec<webhook_attempt::ActiveModel>,
        lease_until_ms: i64,
    ) -> Result<bool, DbErr> {
        let Some(through) = attempts
            .last()
            .and_then(|attempt| attempt.sequence.try_as_ref().copied())
        else {
            return Ok(true);
        };
        if !self
            .store
            .advance(cursor, through, std::mem::take(attempts), lease_until_ms)
            .await?
        {
            return Ok(false);
        }
        cursor.delivered_through = through;
        cursor.failed_attempts = 0;
        cursor.failing_since_ms = None;
        Ok(true)
    }

    /// Sends `event` once, after `failures` failed attempts at it: the
    /// attempt to record, and how it went.
    async fn attempt(
        &self,
        webhook: &webhook::Model,
        directory_id: &str,
        event: &Event,
        failures: i32,
    ) -> (webhook_attempt::ActiveModel, Outcome) {
        let started = std::time::Instant::now();
        let at_ms = now_ms();
        let (status, outcome) = self.send(webhook, event, at_ms).await;
        let error = match &outcome {
            Outcome::Delivered => None,
            Outcome::Gone => Some("410 Gone".to_owned()),
            Outcome::Failed { error, .. } => Some(error.clone()),
        };
        let label = if error.is_none() { "delivered" } else { "failed" };
        metrics::counter!(ATTEMPTS_METRIC, "outcome" => label).increment(1);
        let attempt = webhook_attempt::ActiveModel {
            webhook_id: Set(webhook.id.clone()),
            directory_id: Set(directory_id.to_owned()),
            sequence: Set(event.sequence),
            event_id: Set(event.id.clone()),
            event_type: Set(event.r#type),
            attempt: Set(failures.saturating_add(1)),
            time_ms: Set(at_ms),
            duration_ms: Set(millis(started.elapsed())),
            status_code: Set(status),
            error: Set(error),
            ..Default::default()
        };
        (attempt, outcome)
    }

    /// Schedules the next attempt at `event` after a failure, or disables
    /// the endpoint when the event has failed for the whole retry window.
    async fn failed(
        &self,
        webhook: &webhook::Model,
        cursor: &webhook_cursor::Model,
        event: &Event,
        attempt: webhook_attempt::ActiveModel,
        error: String,
        retry_after: Option<Duration>,
    ) -> Result<(), DbErr> {
        let now = now_ms();
        // The cursor counts the failures of its next event only.
        let (failures, failing_since_ms) = if cursor.delivered_through == event.sequence - 1 {
            (cursor.failed_attempts, cursor.failing_since_ms.unwrap_or(now))
        } else {
            (0, now)
        };
        let failure = |next_attempt_ms: i64| Failure {
            before: event.sequence - 1,
            attempts: failures.saturating_add(1),
            next_attempt_ms,
            failing_since_ms,
            error: error.clone(),
        };
        if now.saturating_sub(failing_since_ms) >= millis(self.retry_window) {
            let reason = format!(
                "event {} failed for the whole retry window ({} s); last: {error}",
                event.sequence,
                self.retry_window.as_secs()
            );
            tracing::warn!(webhook_id = %webhook.id, url = %webhook.url, %reason, "webhook disabled");
            self.store.disable(&webhook.id, &reason, now).await?;
            return self.store.fail(cursor, failure(now), attempt).await;
        }
        let delay = retry_after
            .unwrap_or_else(|| backoff(failures.saturating_add(1), jitter()))
            .max(SHORTEST_RETRY);
        self.store
            .fail(cursor, failure(now.saturating_add(millis(delay))), attempt)
            .await
    }

    /// Sends one event: its HTTP status (0 without an answer) and outcome.
    async fn send(&self, webhook: &webhook::Model, event: &Event, at_ms: i64) -> (i32, Outcome) {
        let body = payload(event).to_string();
        let timestamp = at_ms / 1000;
        let mut secrets = vec![webhook.secret.as_str()];
        if let (Some(previous), Some(expires)) = (&webhook.previous_secret, webhook.previous_expires_ms)
            && expires > at_ms
        {
            secrets.push(previous);
        }
        // An address in the URL is not resolved, so the resolver does not
        // see it: it is checked here.
        let host = url::Url::parse(&webhook.url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned));
        if let Some(error) = host.and_then(|host| addresses::refuse_literal(&host, self.allow_private_networks)) {
            return (
                0,
                Outcome::Failed {
                    error,
                    retry_after: None,
                },
            );
        }
        let signature = signing::signature_header(secrets, &event.id, timestamp, body.as_bytes());
        let request = Request::post(webhook.url.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("idmesh-webhooks/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", event.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(request) => request,
            Err(err) => {
                let error = truncated(&format!("the request could not be built: {err}"));
                return (
                    0,
                    Outcome::Failed {
                        error,
                        retry_after: None,
                    },
                );
            }
        };
        let exchange = async {
            let (answer, body) = self.client.request(request).await?.into_parts();
            // Read the answer's body (or its start) so that the connection
            // goes back to the pool; what it says does not matter.
            let _ = Limited::new(body, ANSWER_BYTES).collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(answer)
        };
        let answer = match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => {
                let error = truncated(&error_chain(&err));
                return (
                    0,
                    Outcome::Failed {
                        error,
                        retry_after: None,
                    },
                );
            }
            Err(_) => {
                let error = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs());
                return (
                    0,
                    Outcome::Failed {
                        error,
                        retry_after: None,
                    },
                );
            }
        };
        let status = answer.status;
        let code = i32::from(status.as_u16());
        if status.is_success() {
            return (code, Outcome::Delivered);
        }
        if status == StatusCode::GONE {
            return (code, Outcome::Gone);
        }
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                retry_after(&answer.headers, OffsetDateTime::now_utc())
            }
            _ => None,
        };
        let error = format!("HTTP {status}");
        (code, Outcome::Failed { error, retry_after })
    }
}

/// What an endpoint receives for `event`.
fn payload(event: &Event) -> serde_json::Value {
    let event_type = EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified);
    let timestamp = event
        .time
        .as_ref()
        .and_then(idmesh_api::timestamp::from_proto)
        .and_then(|at| at.format(&Rfc3339).ok());
    serde_json::json!({
        "type": idmesh_api::events::type_name(event_type),
        "timestamp": timestamp,
        "data": idmesh_api::events::to_json(event),
    })
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncated(text: &str) -> String {
    text.chars().take(ERROR_CHARS).collect()
}

/// A random fraction in [0, 1), for jitter.
fn jitter() -> f64 {
    // The top 53 bits make an exactly representable fraction.
    getrandom::u64().map_or(0.5, |bits| (bits >> 11) as f64 / (1u64 << 53) as f64)
}

/// How long to wait after the `failures`-th failure in a row, `jitter` in
/// [0, 1) choosing within the upper half of the delay.
fn backoff(failures: i32, jitter: f64) -> Duration {
    let exponent = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(16);
    let delay = FIRST_RETRY
        .saturating_mul(4u32.saturating_pow(exponent))
        .min(LONGEST_RETRY);
    delay.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// A `Retry-After` header's delay: seconds, or an HTTP date; at most
/// [`LONGEST_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
            Duration::try_from(at - now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(LONGEST_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn backoff_grows_fourfold_to_an_hour_and_jitters_within_its_upper_half() {
        let seconds = |failures, jitter| backoff(failures, jitter).as_secs_f64();
        assert_eq!(seconds(1, 0.0), 1.0);
        assert!((seconds(1, 0.999_999) - 2.0).abs() < 0.001);
        assert_eq!(seconds(2, 0.0), 4.0);
        assert_eq!(seconds(3, 0.0), 16.0);
        assert_eq!(seconds(7, 0.0), 1800.0);
        assert_eq!(seconds(8, 0.0), 1800.0);
        assert_eq!(seconds(i32::MAX, 0.0), 1800.0);
        assert_eq!(seconds(0, 0.0), 1.0);
        for _ in 0..100 {
            let delay = seconds(3, jitter());
            assert!((16.0..32.0).contains(&delay), "{delay}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date_and_is_capped() {
        let now = datetime!(2026-12-06 08:00:00 UTC);
        let header = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("a header value"));
            retry_after(&headers, now)
        };
        assert_eq!(header("120"), Some(Duration::from_secs(120)));
        assert_eq!(header(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(header("Sun, 06 Dec 2026 08:01:30 GMT"), Some(Duration::from_secs(90)));
        assert_eq!(header("Sun, 06 Dec 2026 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(header("9999999"), Some(LONGEST_RETRY_AFTER));
        assert_eq!(header("soon"), None);
        assert_eq!(header("-5"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn an_endpoints_types_round_trip_through_their_column() {
        assert_eq!(parse_types(""), Vec::<i32>::new());
        assert_eq!(parse_types("1,9,10"), vec![1, 9, 10]);
    }
}
