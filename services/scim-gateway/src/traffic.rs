//! How the gateway shares itself between directories: one directory's IdP
//! cannot starve another's, and no burst can exhaust the process.
//!
//! Every SCIM request passes, in this order:
//! 1. [`shed`]: at most [`Traffic::max_concurrent_requests`] requests run at
//!    once; one more is answered 503 with `Retry-After` at once, rather than
//!    queued without bound.
//! 2. [`deadline`]: the request has [`Traffic::request_timeout`] to finish.
//!    The deadline travels with every gRPC call it makes (`grpc-timeout`)
//!    and bounds the services' database statements; when it passes, the
//!    request is answered 503 with `Retry-After`.
//! 3. authentication ([`crate::auth`]), which names the directory and its
//!    rate;
//! 4. [`rate_limit`]: each directory has a token bucket (the deployment's
//!    [`Traffic::default_rate`], or the directory's own, set through
//!    directory-service); a request beyond it is answered 429 with the
//!    whole seconds until the bucket has a token again in `Retry-After`,
//!    which Okta honours and Entra ID retries after. A request takes one
//!    token, and its bodies pay for what they carry as they cross: every
//!    [`Traffic::bytes_per_request`] of the request's or the answer's body
//!    beyond each one's first counts as one request more. So a directory
//!    that sends megabyte PATCHes (or PATCHes a megabyte user, whose answer
//!    is the whole user) is held to its share of the mesh's work, not only
//!    of its request count. The charge may leave the bucket in debt, which
//!    the directory's next requests wait out.
//! 5. [`body_budget`]: the bodies of the requests running at once add up
//!    to at most [`Traffic::max_body_bytes_in_flight`]. A request costs the
//!    mesh about twenty times its body while it runs (the document is
//!    parsed, copied and serialised at every hop), so this bounds the
//!    memory a burst of large PATCHes takes. A request whose body does not
//!    fit waits, with its body unread, up to [`BODY_BUDGET_WAIT`], then is
//!    answered 503 with `Retry-After`.

use std::num::{NonZeroU32, NonZeroUsize};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use scim::ScimError;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::AppState;
use crate::error::ApiError;

/// Requests answered 429, by directory.
pub const RATE_LIMITED_METRIC: &str = "idmesh_gateway_rate_limited_total";
/// Requests answered 503 because the gateway was at a limit: `reason` is
/// `concurrency` ([`Traffic::max_concurrent_requests`] were running) or
/// `body_bytes` ([`Traffic::max_body_bytes_in_flight`] stayed taken).
pub const SHED_METRIC: &str = "idmesh_gateway_shed_total";
/// Bytes of request bodies admitted and not yet answered.
pub const BODY_BYTES_METRIC: &str = "idmesh_gateway_body_bytes_in_flight";

/// How long a request waits for room in [`Traffic::max_body_bytes_in_flight`]
/// (or until its deadline, if sooner): long enough for a few of the largest
/// PATCHes to finish.
pub const BODY_BUDGET_WAIT: Duration = Duration::from_secs(2);
/// Requests answered 503 because their deadline passed.
pub const DEADLINE_METRIC: &str = "idmesh_gateway_deadline_exceeded_total";
/// SCIM requests running now.
pub const IN_FLIGHT_METRIC: &str = "idmesh_gateway_requests_in_flight";

/// A token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Rate {
    /// The rate a directory gets unless it has its own: 50 requests a
    /// second with bursts of 100, twice what Entra ID documents as its
    /// floor and more than Okta sends per app.
    pub const DEFAULT: Rate = Rate {
        per_second: NonZeroU32::new(50).expect("50 is not zero"),
        burst: NonZeroU32::new(100).expect("100 is not zero"),
    };

    /// The rate directory-service stores for a directory, if it is usable.
    pub fn from_proto(rate: &idmesh_proto::v1::RateLimit) -> Option<Rate> {
        Some(Rate {
            per_second: NonZeroU32::new(rate.requests_per_second)?,
            burst: NonZeroU32::new(rate.burst)?,
        })
    }
}

/// The gateway's traffic settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// How long a SCIM request may take end to end: well under Okta's
    /// 60-second timeout, so that the IdP reads a 503 it retries rather
    /// than a timeout it reports.
    pub request_timeout: Duration,
    /// How many SCIM requests run at once.
    pub max_concurrent_requests: usize,
    /// How many bytes of request bodies the running requests may carry
    /// together; a body larger than this runs alone.
    pub max_body_bytes_in_flight: usize,
    /// Each directory's rate unless it has its own.
    pub default_rate: Rate,
    /// How many bytes of a request's or an answer's body, beyond each
    /// one's first so many, count as one request more against the
    /// directory's rate.
    pub bytes_per_request: NonZeroUsize,
}

impl Traffic {
    pub const DEFAULT: Traffic = Traffic {
        request_timeout: Duration::from_secs(20),
        max_concurrent_requests: 256,
        // Two of the largest documents (1 MiB) at once, as many as the CPU
        // pool runs on two cores: about 85 MiB of the mesh's memory at the
        // peak, measured (docs/benchmarks.md, "Limits").
        max_body_bytes_in_flight: 2 << 20,
        default_rate: Rate::DEFAULT,
        // Well above what an ordinary request carries: a user as Okta or
        // Entra ID sends it is one or two KiB. A PATCH rewriting a 1 MB
        // user then counts as about 115 requests (its body and its
        // answer); measured, it costs the mesh and PostgreSQL the CPU of
        // about 70 small reads, in stretches of 100 ms or more that other
        // directories' reads wait behind (docs/benchmarks.md, "Limits").
        bytes_per_request: NonZeroUsize::new(16 << 10).expect("16 KiB is not zero"),
    };
}

impl Default for Traffic {
    fn default() -> Traffic {
        Traffic::DEFAULT
    }
}

/// The directory a request was authenticated for, and its rate if it has
/// its own; put into the request's extensions by [`crate::auth`].
#[derive(Debug, Clone)]
pub struct Tenant {
    pub directory_id: Arc<str>,
    pub rate: Option<Rate>,
    /// When directory-service said so: of two tokens of one directory
    /// cached at different times, the later answer's rate holds.
    pub resolved_at: Instant,
}

/// How many directories' buckets are kept; the least recently used go
/// first, and a directory whose bucket went starts again with a full one.
const MAX_BUCKETS: u64 = 100_000;
/// A bucket unused this long is full again anyway, and dropped.
const BUCKET_IDLE: Duration = Duration::from_secs(600);

/// Each directory's token bucket.
#[derive(Debug)]
pub struct RateLimits {
    buckets: moka::sync::Cache<Arc<str>, Arc<Bucket>>,
}

/// One directory's token bucket. It may go into debt: a request is
/// admitted while the bucket holds a whole token, and its bodies are
/// charged as they cross, however much that takes.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    /// When the rate was learnt ([`Tenant::resolved_at`]).
    since: Instant,
    level: Mutex<Level>,
}

#[derive(Debug)]
struct Level {
    /// Below zero while the directory is in debt.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, since: Instant, now: Instant) -> Bucket {
        Bucket {
            rate,
            since,
            level: Mutex::new(Level {
                tokens: f64::from(rate.burst.get()),
                at: now,
            }),
        }
    }

    /// The level at `now`, refilled at the rate up to the burst.
    fn refilled(&self, now: Instant) -> std::sync::MutexGuard<'_, Level> {
        // The lock guards two numbers that every update leaves consistent.
        let mut level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(level.at).as_secs_f64();
        level.tokens =
            (level.tokens + elapsed * f64::from(self.rate.per_second.get())).min(f64::from(self.rate.burst.get()));
        level.at = level.at.max(now);
        level
    }

    /// Takes one token at `now`, or says how long until there is one.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut level = self.refilled(now);
        if level.tokens >= 1.0 {
            level.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - level.tokens) / f64::from(self.rate.per_second.get()),
            ))
        }
    }

    /// Takes `tokens` at `now`, into debt if the bucket holds fewer.
    fn charge(&self, tokens: f64, now: Instant) {
        self.refilled(now).tokens -= tokens;
    }
}

impl RateLimits {
    pub fn new() -> RateLimits {
        RateLimits {
            buckets: moka::sync::Cache::builder()
                .max_capacity(MAX_BUCKETS)
                .time_to_idle(BUCKET_IDLE)
                .build(),
        }
    }

    /// Takes a token from `directory_id`'s bucket at `rate`, learnt at
    /// `resolved_at`, and answers the bucket to charge the request's bodies
    /// to; or says how long until a token is there. A rate learnt later
    /// than the bucket's starts a new, full bucket; one learnt earlier (a
    /// token cached before the change) is old news and changes nothing, so
    /// alternating two tokens cannot reset the bucket.
    pub fn admit(&self, directory_id: &Arc<str>, rate: Rate, resolved_at: Instant) -> Result<Arc<Bucket>, Duration> {
        let now = Instant::now();
        let fresh = || Arc::new(Bucket::full(rate, resolved_at, now));
        let mut bucket = self.buckets.get_with_by_ref(directory_id, fresh);
        if bucket.rate != rate && resolved_at > bucket.since {
            bucket = fresh();
            self.buckets.insert(directory_id.clone(), bucket.clone());
        }
        bucket.take(now).map(|()| bucket)
    }
}

/// A body that charges what it carries to its directory's bucket, frame by
/// frame as it crosses, beyond its first [`Traffic::bytes_per_request`]
/// bytes: one token per that many.
pub struct Metered {
    inner: Body,
    bucket: Arc<Bucket>,
    bytes_per_token: f64,
    /// Bytes still carried without charge.
    free: usize,
}

impl Metered {
    pub fn wrap(inner: Body, bucket: Arc<Bucket>, bytes_per_request: NonZeroUsize) -> Body {
        Body::new(Metered {
            inner,
            bucket,
            bytes_per_token: bytes_per_request.get() as f64,
            free: bytes_per_request.get(),
        })
    }
}

impl HttpBody for Metered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let paid = data.len().saturating_sub(self.free);
            self.free = self.free.saturating_sub(data.len());
            if paid > 0 {
                self.bucket.charge(paid as f64 / self.bytes_per_token, Instant::now());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least one.
fn retry_after(wait: Duration) -> HeaderValue {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

/// 503 with `Retry-After` for a request the gateway cannot take now.
fn unavailable(detail: String) -> Response {
    ApiError(ScimError::new(503, None, detail)).into_response()
}

/// Refuses a request at once when [`Traffic::max_concurrent_requests`] are
/// running.
pub async fn shed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_permit) = Semaphore::try_acquire_owned(state.in_flight.clone()) else {
        metrics::counter!(SHED_METRIC, "reason" => "concurrency").increment(1);
        return unavailable("the server is at its limit of concurrent requests; retry later".to_owned());
    };
    let _counted = Counted::start(metrics::gauge!(IN_FLIGHT_METRIC), 1.0);
    next.run(request).await
}

/// An amount added to a gauge for as long as it lives: also when the client
/// goes away and the request's future is dropped.
struct Counted {
    gauge: metrics::Gauge,
    amount: f64,
}

impl Counted {
    fn start(gauge: metrics::Gauge, amount: f64) -> Counted {
        gauge.increment(amount);
        Counted { gauge, amount }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.gauge.decrement(self.amount);
    }
}

/// Runs the request under its deadline, and answers 503 when it passes.
pub async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let timeout = state.traffic.request_timeout;
    let deadline = Instant::now() + timeout;
    let run = idmesh_runtime::deadline::within(Some(deadline), next.run(request));
    match tokio::time::timeout_at(deadline, run).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!(DEADLINE_METRIC).increment(1);
            tracing::warn!(?timeout, "request deadline passed");
            unavailable(format!(
                "the request did not complete within {} seconds; retry later",
                timeout.as_secs_f64()
            ))
        }
    }
}

/// Admits a request once its body fits in
/// [`Traffic::max_body_bytes_in_flight`]; waits [`BODY_BUDGET_WAIT`] at
/// most, then answers 503. A body of unknown length (chunked) counts as the
/// largest the route accepts, up to the whole budget.
pub async fn body_budget(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let size = request.body().size_hint();
    let declared = size
        .exact()
        .or(size.upper())
        .map_or(state.limits.max_document_bytes, |bytes| {
            usize::try_from(bytes).unwrap_or(usize::MAX)
        });
    let bytes = declared.min(state.traffic.max_body_bytes_in_flight);
    if bytes == 0 {
        return next.run(request).await;
    }
    // The configuration keeps the budget within a u32.
    let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
    let wait = idmesh_runtime::deadline::remaining().map_or(BODY_BUDGET_WAIT, |left| left.min(BODY_BUDGET_WAIT));
    let admitted = tokio::time::timeout(wait, state.body_bytes.clone().acquire_many_owned(permits)).await;
    let Ok(Ok(_permits)) = admitted else {
        metrics::counter!(SHED_METRIC, "reason" => "body_bytes").increment(1);
        return unavailable("the server is busy with other large requests; retry later".to_owned());
    };
    let _counted = Counted::start(metrics::gauge!(BODY_BYTES_METRIC), bytes as f64);
    next.run(request).await
}

/// Answers 429 when the request's directory is over its rate.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(tenant) = request.extensions().get::<Tenant>().cloned() else {
        // Only authenticated requests get here; without a tenant there is
        // nothing to count against.
        return next.run(request).await;
    };
    let rate = tenant.rate.unwrap_or(state.traffic.default_rate);
    match state.rate_limits.admit(&tenant.directory_id, rate, tenant.resolved_at) {
        Ok(bucket) => {
            let per_request = state.traffic.bytes_per_request;
            let request = request.map(|body| Metered::wrap(body, bucket.clone(), per_request));
            next.run(request)
                .await
                .map(|body| Metered::wrap(body, bucket, per_request))
        }
        Err(wait) => {
            metrics::counter!(RATE_LIMITED_METRIC, "directory_id" => tenant.directory_id.to_string()).increment(1);
            let mut response = ApiError(ScimError::new(
                429,
                None,
                format!(
                    "this directory sends more than {} requests a second (bursts of {}; every {} bytes of a \
                     body beyond its first {} count as one request more); retry later",
                    rate.per_second, rate.burst, state.traffic.bytes_per_request, state.traffic.bytes_per_request
                ),
            ))
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, retry_after(wait));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate {
            per_second: NonZeroU32::new(per_second).expect("non-zero"),
            burst: NonZeroU32::new(burst).expect("non-zero"),
        }
    }

    #[test]
    fn a_burst_is_admitted_and_the_next_request_waits_for_the_refill() {
        let limits = RateLimits::new();
        let directory: Arc<str> = Arc::from("d1");
        for _ in 0..3 {
            assert!(limits.admit(&directory, rate(1, 3), Instant::now()).is_ok());
        }
        let wait = limits
            .admit(&directory, rate(1, 3), Instant::now())
            .expect_err("the bucket is empty");
        assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn directories_have_buckets_of_their_own() {
        let limits = RateLimits::new();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        assert!(limits.admit(&a, rate(1, 1), Instant::now()).is_ok());
        assert!(limits.admit(&a, rate(1, 1), Instant::now()).is_err());
        assert!(limits.admit(&b, rate(1, 1), Instant::now()).is_ok());
    }

    #[test]
    fn a_new_rate_takes_effect_at_once() {
        let limits = RateLimits::new();
        let directory: Arc<str> = Arc::from("d");
        let (before, after) = (Instant::now(), Instant::now() + Duration::from_secs(1));
        assert!(limits.admit(&directory, rate(1, 1), before).is_ok());
        assert!(limits.admit(&directory, rate(1, 1), before).is_err());
        assert!(limits.admit(&directory, rate(100, 10), after).is_ok());
    }

    #[test]
    fn a_rate_learnt_before_the_buckets_changes_nothing() {
        let limits = RateLimits::new();
        let directory: Arc<str> = Arc::from("d");
        let (before, after) = (Instant::now(), Instant::now() + Duration::from_secs(1));
        // Two tokens of one directory: one cached before its rate went
        // down to 1/s, one after. Alternating them keeps the new bucket.
        assert!(limits.admit(&directory, rate(1, 1), after).is_ok());
        for _ in 0..3 {
            assert!(limits.admit(&directory, rate(100, 100), before).is_err());
            assert!(limits.admit(&directory, rate(1, 1), after).is_err());
        }
    }

    #[test]
    fn a_debt_is_waited_out_at_the_rate_and_the_refill_stops_at_the_burst() {
        let start = Instant::now();
        let bucket = Bucket::full(rate(10, 5), start, start);
        assert_eq!(bucket.take(start), Ok(()));
        bucket.charge(24.0, start);
        // 4 - 24 = -20 tokens: 2.1 s at 10 a second until a whole one.
        assert_eq!(bucket.take(start), Err(Duration::from_millis(2100)));
        assert!(bucket.take(start + Duration::from_millis(2050)).is_err());
        assert_eq!(bucket.take(start + Duration::from_millis(2100)), Ok(()));
        // An hour idle fills it to the burst, not beyond.
        let later = start + Duration::from_secs(3600);
        for _ in 0..5 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[tokio::test]
    async fn a_body_pays_one_token_per_bytes_per_request_beyond_its_first() {
        let start = Instant::now();
        let per_request = NonZeroUsize::new(1000).expect("non-zero");
        let charged = |body_bytes: usize| async move {
            let bucket = Arc::new(Bucket::full(rate(1, 100), start, start));
            let body = Body::from(vec![b'x'; body_bytes]);
            let read = axum::body::to_bytes(Metered::wrap(body, bucket.clone(), per_request), usize::MAX)
                .await
                .expect("an in-memory body");
            assert_eq!(read.len(), body_bytes, "the body crosses whole");
            100.0 - bucket.refilled(start).tokens
        };
        assert_eq!(charged(0).await, 0.0);
        assert_eq!(charged(1000).await, 0.0);
        assert_eq!(charged(1500).await, 0.5);
        assert_eq!(charged(51_000).await, 50.0);
    }

    #[tokio::test]
    async fn a_metered_body_keeps_its_size_hint_for_the_body_budget() {
        let start = Instant::now();
        let bucket = Arc::new(Bucket::full(rate(1, 1), start, start));
        let body = Metered::wrap(Body::from(vec![0_u8; 4096]), bucket, Traffic::DEFAULT.bytes_per_request);
        assert_eq!(body.size_hint().exact(), Some(4096));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after(Duration::from_millis(1)), "1");
        assert_eq!(retry_after(Duration::from_millis(1000)), "1");
        assert_eq!(retry_after(Duration::from_millis(1001)), "2");
        assert_eq!(retry_after(Duration::ZERO), "1");
    }
}
