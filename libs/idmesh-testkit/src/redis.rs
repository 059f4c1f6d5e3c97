//! The test Redis servers, and cleaning up the keys a test left there.

use redis::Commands;

/// The Redis node the tests use, unless `IDMESH_TEST_REDIS_URL` says otherwise.
pub fn redis_url() -> String {
    std::env::var("IDMESH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The Redis Cluster `scripts/ensure-services` starts, unless
/// `IDMESH_TEST_REDIS_CLUSTER_URL` says otherwise.
pub fn redis_cluster_url() -> String {
    std::env::var("IDMESH_TEST_REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".to_owned())
}

/// Deletes every key under `prefix` on each node `url` names (a
/// `redis+cluster://` URL names several), so that tests sharing one Redis
/// leave nothing behind; some keys, like the revocation log, have no TTL.
///
/// Runs on a thread of its own with the blocking client, so that it can be
/// called from `Drop` inside a test's runtime. Nodes that cannot be reached
/// are skipped: cleaning up must not fail a test that already failed.
pub fn delete_keys(url: &str, prefix: &str) {
    let nodes: Vec<String> = match url.strip_prefix("redis+cluster://") {
        Some(nodes) => nodes.split(',').map(|node| format!("redis://{node}")).collect(),
        None => vec![url.to_owned()],
    };
    let pattern = format!("{prefix}:*");
    let cleanup = std::thread::spawn(move || {
        for node in nodes {
            let Ok(mut connection) = redis::Client::open(node.as_str()).and_then(|c| c.get_connection()) else {
                continue;
            };
            let keys: Vec<String> = match connection.scan_match::<_, String>(&pattern) {
                Ok(keys) => keys.filter_map(Result::ok).collect(),
                Err(_) => continue,
            };
            for key in keys {
                let _: Result<i64, _> = redis::cmd("UNLINK").arg(&key).query(&mut connection);
            }
        }
    });
    let _ = cleanup.join();
}
