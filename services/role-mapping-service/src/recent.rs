//! Recent answers, for callers that accept an older one.
//!
//! GetEffectiveRoles and GetProfile are computed at the call by default
//! (the user from user-service, the memberships from group-service, the
//! mapping from this service's tables). A caller that asks at every request
//! of its platform can instead name a `max_staleness`, and an answer this
//! replica computed within that time is returned as it was, without reading
//! anything. The bound is the whole contract: nothing invalidates a kept
//! answer early, so what a caller gets is never older than it asked,
//! whichever replica answers and whatever changed meanwhile (a bounded
//! staleness read, as Spanner's or SpiceDB's `minimize_latency`).
//!
//! Every answer computed, whether asked fresh or not, is kept: a caller
//! that mixes both gets the newest. The cache holds at most
//! [`CAPACITY_BYTES`] of encoded answers, each for at most
//! [`MAX_STALENESS`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::Op;
use scim::ScimError;

use crate::Error;

/// The most a caller may accept: an answer is never kept longer.
pub(crate) const MAX_STALENESS: Duration = Duration::from_secs(60);

/// The most encoded bytes of answers kept, per kind of answer.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

/// How old an answer the caller accepts: `None` for one computed now
/// (`max_staleness` unset or zero). Negative or above [`MAX_STALENESS`] is
/// the caller's mistake.
pub(crate) fn max_staleness(asked: Option<prost_types::Duration>) -> Result<Option<Duration>, ScimError> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let staleness =
        Duration::try_from(asked).map_err(|_| ScimError::invalid_value("max_staleness must not be negative"))?;
    if staleness > MAX_STALENESS {
        return Err(ScimError::invalid_value(format!(
            "max_staleness must be at most {} seconds",
            MAX_STALENESS.as_secs()
        )));
    }
    Ok((!staleness.is_zero()).then_some(staleness))
}

/// One kind of answer, by directory and user.
pub(crate) struct Recent<V> {
    kept: Cache<(String, String), Arc<Kept<V>>>,
}

struct Kept<V> {
    /// When the computation began, on the monotonic clock: a step of the
    /// wall clock can neither age nor rejuvenate an answer.
    started: Instant,
    answer: V,
}

impl<V: prost::Message + Clone + Send + Sync + 'static> Recent<V> {
    pub(crate) fn new() -> Self {
        let kept = Cache::builder()
            .max_capacity(CAPACITY_BYTES)
            .weigher(|(directory_id, user_id): &(String, String), kept: &Arc<Kept<V>>| {
                let bytes = directory_id.len() + user_id.len() + kept.answer.encoded_len();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(MAX_STALENESS)
            .build();
        Recent { kept }
    }

    /// The user's answer. Without a `max_staleness`, `compute`d now. With
    /// one, the answer kept for the user if its computation began at most
    /// that long ago; else `compute`d, once for all the callers that find
    /// none meanwhile (each waits for the one computation, instead of
    /// piling more of the same onto the peers). Every computed answer is
    /// kept.
    pub(crate) async fn answer<F, Fut>(
        &self,
        directory_id: &str,
        user_id: &str,
        max_staleness: Option<Duration>,
        compute: F,
    ) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, Error>>,
    {
        let key = (directory_id.to_owned(), user_id.to_owned());
        let Some(max_staleness) = max_staleness else {
            let started = Instant::now();
            let answer = compute().await?;
            let kept = Kept {
                started,
                answer: answer.clone(),
            };
            self.kept.insert(key, Arc::new(kept)).await;
            return Ok(answer);
        };
        let recent = |kept: &Kept<V>| kept.started.elapsed() <= max_staleness;
        if let Some(kept) = self.kept.get(&key).await
            && recent(&kept)
        {
            return Ok(kept.answer.clone());
        }
        // One computation at a time per user: a caller that waited for
        // another's finds its answer here.
        let result = self
            .kept
            .entry(key)
            .and_try_compute_with(|current| async move {
                if current.is_some_and(|entry| recent(entry.value())) {
                    return Ok::<_, Error>(Op::Nop);
                }
                let started = Instant::now();
                let answer = compute().await?;
                Ok(Op::Put(Arc::new(Kept { started, answer })))
            })
            .await?;
        // Nop only ever leaves an entry there: StillNone cannot come back.
        result
            .into_entry()
            .map(|entry| entry.into_value().answer.clone())
            .ok_or_else(|| Error::Task("no answer was kept or computed".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
        Some(prost_types::Duration { seconds, nanos })
    }

    #[test]
    fn unset_or_zero_asks_for_an_answer_computed_now() {
        assert_eq!(max_staleness(None).expect("unset"), None);
        assert_eq!(max_staleness(duration(0, 0)).expect("zero"), None);
    }

    #[test]
    fn a_staleness_up_to_the_most_is_taken_as_asked() {
        assert_eq!(
            max_staleness(duration(0, 250_000_000)).expect("a quarter second"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(max_staleness(duration(60, 0)).expect("the most"), Some(MAX_STALENESS));
    }

    fn answer(mapping_version: i64) -> idmesh_proto::v1::EffectiveRoles {
        idmesh_proto::v1::EffectiveRoles {
            directory_id: "d".to_owned(),
            user_id: "ada".to_owned(),
            mapping_version,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_kept_answer_serves_only_its_user_within_the_staleness_asked() {
        let recent = Recent::new();
        let minute = Some(MAX_STALENESS);
        let first = recent.answer("d", "ada", None, || async { Ok(answer(1)) }).await;
        assert_eq!(first.expect("computed"), answer(1));
        // Within the minute: the kept one, nothing computed.
        let kept = recent.answer("d", "ada", minute, || async { Ok(answer(2)) }).await;
        assert_eq!(kept.expect("kept"), answer(1));
        // Another user, or the same id in another directory: computed.
        let other = recent.answer("d", "grace", minute, || async { Ok(answer(3)) }).await;
        assert_eq!(other.expect("computed"), answer(3));
        let other = recent.answer("e", "ada", minute, || async { Ok(answer(4)) }).await;
        assert_eq!(other.expect("computed"), answer(4));
        // Asked fresh: computed, and kept for the next caller.
        let fresh = recent.answer("d", "ada", None, || async { Ok(answer(5)) }).await;
        assert_eq!(fresh.expect("computed"), answer(5));
        let kept = recent.answer("d", "ada", minute, || async { Ok(answer(6)) }).await;
        assert_eq!(kept.expect("kept"), answer(5));
        // Older than asked: computed again.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = recent
            .answer("d", "ada", Some(Duration::from_millis(10)), || async { Ok(answer(7)) })
            .await;
        assert_eq!(again.expect("computed"), answer(7));
    }

    #[tokio::test]
    async fn callers_that_find_no_recent_answer_wait_for_one_computation() {
        let recent = Arc::new(Recent::new());
        let computations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (recent, computations, release) = (recent.clone(), computations.clone(), release.clone());
            callers.spawn(async move {
                recent
                    .answer("d", "ada", Some(MAX_STALENESS), || async move {
                        computations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        release.notified().await;
                        Ok(answer(1))
                    })
                    .await
            });
        }
        // Let every caller reach the cache, then let the computation end.
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.notify_one();
        while let Some(caller) = callers.join_next().await {
            assert_eq!(caller.expect("no panic").expect("an answer"), answer(1));
        }
        assert_eq!(computations.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let recent = Recent::new();
        let failed = recent
            .answer("d", "ada", Some(MAX_STALENESS), || async {
                Err(Error::Task("the peer went away".to_owned()))
            })
            .await;
        assert!(matches!(failed, Err(Error::Task(_))), "{failed:?}");
        let computed = recent
            .answer("d", "ada", Some(MAX_STALENESS), || async { Ok(answer(1)) })
            .await;
        assert_eq!(computed.expect("computed"), answer(1));
    }

    #[test]
    fn a_negative_or_longer_staleness_is_an_invalid_value() {
        for asked in [duration(-1, 0), duration(0, -1), duration(60, 1), duration(3_600, 0)] {
            let err = max_staleness(asked).expect_err("refused");
            assert_eq!(err.scim_type, Some(scim::ScimType::InvalidValue), "{asked:?}");
        }
    }
}
