//! Request deadlines that travel: the gateway gives each SCIM request a
//! deadline, every gRPC call made on its behalf carries the time left as
//! `grpc-timeout`, and each server runs the call's handler under that
//! deadline, so a service's own calls (group-service asking user-service)
//! and its database statements get no more time than the IdP is still
//! waiting for.
//!
//! The deadline is a task-local: [`within`] sets it for a future,
//! [`remaining`] reads it, [`AuthChannel`](crate::auth::AuthChannel) sends
//! it, and [`DeadlineLayer`] (installed by [`crate::grpc::serve`]) receives
//! it. tonic's server enforces `grpc-timeout` itself; this module only
//! makes the deadline visible to the code that runs under it.

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;
use tonic::codegen::http::{self, HeaderValue};
use tower::{Layer, Service};

/// The gRPC header carrying the time a call may take.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Runs `future` with `deadline` as the deadline of everything it calls.
pub fn within<F: Future>(deadline: Option<Instant>, future: F) -> TaskLocalFuture<Option<Instant>, F> {
    DEADLINE.scope(deadline, future)
}

/// The deadline of the current request, if it has one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok().flatten()
}

/// The time left before the current request's deadline (zero once it has
/// passed), or `None` outside a request with a deadline.
pub fn remaining() -> Option<Duration> {
    current().map(|deadline| deadline.saturating_duration_since(Instant::now()))
}

/// `duration` as a `grpc-timeout` value: at most eight digits and a unit
/// (gRPC over HTTP/2), in milliseconds while they fit, else in seconds.
pub fn encode(duration: Duration) -> HeaderValue {
    let millis = duration.as_millis();
    let text = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", duration.as_secs().min(99_999_999))
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("0m"))
}

/// A `grpc-timeout` value as a duration; `None` for anything malformed,
/// which the call then runs without (tonic answers it itself).
pub fn decode(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Sets `grpc-timeout` on an outgoing call from the current deadline,
/// unless the call already has one.
pub(crate) fn propagate<B>(request: &mut http::Request<B>) {
    if let Some(left) = remaining()
        && !request.headers().contains_key(GRPC_TIMEOUT)
    {
        request.headers_mut().insert(GRPC_TIMEOUT, encode(left));
    }
}

/// Runs each incoming call's handler under the deadline its `grpc-timeout`
/// names.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = WithDeadline<S>;

    fn layer(&self, inner: S) -> WithDeadline<S> {
        WithDeadline { inner }
    }
}

/// A service behind [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct WithDeadline<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for WithDeadline<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<Option<Instant>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(decode)
            .and_then(|timeout| Instant::now().checked_add(timeout));
        within(deadline, self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_survive_the_header() {
        for duration in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(25_000),
            Duration::from_secs(100_000),
        ] {
            assert_eq!(decode(&encode(duration)), Some(duration));
        }
    }

    #[test]
    fn every_unit_of_the_spec_is_read() {
        let cases = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("4S", Duration::from_secs(4)),
            ("5m", Duration::from_millis(5)),
            ("6u", Duration::from_micros(6)),
            ("7n", Duration::from_nanos(7)),
        ];
        for (text, duration) in cases {
            assert_eq!(decode(&HeaderValue::from_static(text)), Some(duration), "{text}");
        }
    }

    #[test]
    fn malformed_timeouts_are_ignored() {
        for text in ["", "5", "m", "123456789m", "-5m", "5x", "5 m"] {
            assert_eq!(decode(&HeaderValue::from_static(text)), None, "{text:?}");
        }
    }

    #[tokio::test]
    async fn the_deadline_is_visible_only_inside_its_scope() {
        assert_eq!(remaining(), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let left = within(Some(deadline), async { remaining() }).await;
        assert!(left.is_some_and(|left| left <= Duration::from_secs(5) && left > Duration::from_secs(4)));
        assert_eq!(remaining(), None);
    }

    #[tokio::test]
    async fn an_outgoing_call_carries_the_time_left_unless_it_has_its_own() {
        let deadline = Instant::now() + Duration::from_secs(3);
        let (sent, kept) = within(Some(deadline), async {
            let mut fresh = http::Request::new(());
            propagate(&mut fresh);
            let mut own = http::Request::new(());
            own.headers_mut().insert(GRPC_TIMEOUT, HeaderValue::from_static("1S"));
            propagate(&mut own);
            (
                fresh.headers().get(GRPC_TIMEOUT).and_then(decode),
                own.headers()[GRPC_TIMEOUT].clone(),
            )
        })
        .await;
        assert!(sent.is_some_and(|left| left <= Duration::from_secs(3) && left > Duration::from_secs(2)));
        assert_eq!(kept, "1S");
    }
}
