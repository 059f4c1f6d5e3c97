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
//!    which Okta honours and Entra ID retries after.
//! 5. [`body_budget`]: the bodies of the requests running at once add up
//!    to at most [`Traffic::max_body_bytes_in_flight`]. A request costs the
//!    mesh about twenty times its body while it runs (the document is
//!    parsed, copied and serialised at every hop), so this bounds the
//!    memory a burst of large PATCHes takes. A request whose body does not
//!    fit waits, with its body unread, up to [`BODY_BUDGET_WAIT`], then is
//!    answered 503 with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
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

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    /// When the rate was learnt ([`Tenant::resolved_at`]).
    since: Instant,
    limiter: DefaultDirectRateLimiter,
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
    /// `resolved_at`, or says how long until one is there. A rate learnt
    /// later than the bucket's starts a new, full bucket; one learnt
    /// earlier (a token cached before the change) is old news and changes
    /// nothing, so alternating two tokens cannot reset the bucket.
    pub fn admit(&self, directory_id: &Arc<str>, rate: Rate, resolved_at: Instant) -> Result<(), Duration> {
        let fresh = || {
            Arc::new(Bucket {
                rate,
                since: resolved_at,
                limiter: DefaultDirectRateLimiter::direct(Quota::per_second(rate.per_second).allow_burst(rate.burst)),
            })
        };
        let mut bucket = self.buckets.get_with_by_ref(directory_id, fresh);
        if bucket.rate != rate && resolved_at > bucket.since {
            bucket = fresh();
            self.buckets.insert(directory_id.clone(), bucket.clone());
        }
        bucket
            .limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
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
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!(RATE_LIMITED_METRIC, "directory_id" => tenant.directory_id.to_string()).increment(1);
            let mut response = ApiError(ScimError::new(
                429,
                None,
                format!(
                    "this directory sends more than {} requests a second (bursts of {}); retry later",
                    rate.per_second, rate.burst
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
            assert_eq!(limits.admit(&directory, rate(1, 3), Instant::now()), Ok(()));
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
        assert_eq!(limits.admit(&a, rate(1, 1), Instant::now()), Ok(()));
        assert!(limits.admit(&a, rate(1, 1), Instant::now()).is_err());
        assert_eq!(limits.admit(&b, rate(1, 1), Instant::now()), Ok(()));
    }

    #[test]
    fn a_new_rate_takes_effect_at_once() {
        let limits = RateLimits::new();
        let directory: Arc<str> = Arc::from("d");
        let (before, after) = (Instant::now(), Instant::now() + Duration::from_secs(1));
        assert_eq!(limits.admit(&directory, rate(1, 1), before), Ok(()));
        assert!(limits.admit(&directory, rate(1, 1), before).is_err());
        assert_eq!(limits.admit(&directory, rate(100, 10), after), Ok(()));
    }

    #[test]
    fn a_rate_learnt_before_the_buckets_changes_nothing() {
        let limits = RateLimits::new();
        let directory: Arc<str> = Arc::from("d");
        let (before, after) = (Instant::now(), Instant::now() + Duration::from_secs(1));
        // Two tokens of one directory: one cached before its rate went
        // down to 1/s, one after. Alternating them keeps the new bucket.
        assert_eq!(limits.admit(&directory, rate(1, 1), after), Ok(()));
        for _ in 0..3 {
            assert!(limits.admit(&directory, rate(100, 100), before).is_err());
            assert!(limits.admit(&directory, rate(1, 1), after).is_err());
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after(Duration::from_millis(1)), "1");
        assert_eq!(retry_after(Duration::from_millis(1000)), "1");
        assert_eq!(retry_after(Duration::from_millis(1001)), "2");
        assert_eq!(retry_after(Duration::ZERO), "1");
    }
}
