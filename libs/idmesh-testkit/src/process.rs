//! Servers shared by the tests of one process.

use std::future::Future;
use std::sync::OnceLock;

/// What `start` gives, started once per test process on a thread and a
/// runtime of its own, so that what it spawned outlives the runtime of the
/// test that asked first (`cargo test` runs many tests, each on its own
/// runtime, in one process). Later calls get a clone of the first answer.
pub fn once_per_process<T, F, Fut>(cell: &'static OnceLock<T>, start: F) -> T
where
    T: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    cell.get_or_init(|| {
        let (started, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                started
                    .send(start().await)
                    .expect("the first test waits for the answer");
                std::future::pending::<()>().await;
            });
        });
        answer.recv().expect("the process-wide server starts")
    })
    .clone()
}
