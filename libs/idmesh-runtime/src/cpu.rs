//! CPU-heavy work (Argon2 hashing, PATCH of a large document) runs off the
//! async workers, on tokio's blocking threads, and at most one job per core
//! at a time: a burst of such requests queues here instead of starving every
//! other request of its worker, and when the queue does not move within
//! [`DEFAULT_WAIT`] (or the request's deadline, if sooner) the request is
//! refused as busy, which callers answer with 503 and `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// How long a job waits for a free core before it is refused.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// Counter of jobs refused because every core stayed busy.
pub const BUSY_METRIC: &str = "idmesh_cpu_pool_busy_total";

/// Why a job did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// Every permit stayed taken for the whole wait.
    #[error("every core is busy with other requests; retry later")]
    Busy,
    /// The job panicked (a bug); its panic was logged by tokio.
    #[error("a CPU job failed: {0}")]
    Failed(String),
}

/// A bounded set of cores for CPU-heavy jobs.
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl CpuPool {
    /// A pool running at most `cores` jobs at once, each waiting at most
    /// `wait` for its turn.
    pub fn new(cores: usize, wait: Duration) -> CpuPool {
        CpuPool {
            permits: Arc::new(Semaphore::new(cores.max(1))),
            wait,
        }
    }

    /// One job per core of this machine, waiting [`DEFAULT_WAIT`].
    pub fn per_core() -> CpuPool {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        CpuPool::new(cores, DEFAULT_WAIT)
    }

    /// Runs `job` on a blocking thread once a core is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, CpuError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let wait = crate::deadline::remaining().map_or(self.wait, |left| left.min(self.wait));
        let permit = match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a timeout is the busy case.
            Ok(Err(_)) | Err(_) => {
                metrics::counter!(BUSY_METRIC).increment(1);
                return Err(CpuError::Busy);
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|err| CpuError::Failed(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[tokio::test]
    async fn a_job_runs_and_returns_its_result() {
        let pool = CpuPool::new(1, Duration::from_millis(50));
        assert_eq!(pool.run(|| 6 * 7).await.ok(), Some(42));
    }

    #[tokio::test]
    async fn a_job_that_finds_every_core_busy_is_refused_and_the_next_one_runs() {
        let pool = CpuPool::new(1, Duration::from_millis(50));
        let (release, blocked) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started.send(());
                    blocked.recv().ok();
                })
                .await
            })
        };
        running.await.expect("the first job starts");
        assert!(matches!(pool.run(|| ()).await, Err(CpuError::Busy)));
        release.send(()).expect("the first job waits");
        holder.await.expect("no panic").expect("the first job completes");
        assert!(pool.run(|| ()).await.is_ok());
    }

    #[tokio::test]
    async fn a_job_waits_no_longer_than_its_request_has_left() {
        let pool = CpuPool::new(1, Duration::from_secs(60));
        let (release, blocked) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started.send(());
                    blocked.recv().ok();
                })
                .await
            })
        };
        running.await.expect("the first job starts");
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        let refused = crate::deadline::within(Some(deadline), pool.run(|| ())).await;
        assert!(matches!(refused, Err(CpuError::Busy)));
        release.send(()).expect("the first job waits");
        holder.await.expect("no panic").expect("the first job completes");
    }
}
