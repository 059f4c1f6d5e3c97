//! session-service over real gRPC, against each store: in process, one real
//! Redis node, and a real Redis Cluster (both started by
//! `scripts/ensure-services`). Every test uses its own key prefix and its
//! own random users, so tests share the servers without seeing each other.

mod behaviour;
mod harness;
mod redis_only;

/// Runs each behaviour of `behaviour.rs` against every backend.
macro_rules! on_every_backend {
    ($($behaviour:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    crate::behaviour::$behaviour(crate::harness::Backend::InProcess).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    crate::behaviour::$behaviour(crate::harness::Backend::Redis).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    crate::behaviour::$behaviour(crate::harness::Backend::RedisCluster).await;
                }
            )*
        }
    };
}

on_every_backend!(
    a_new_session_is_valid_and_carries_its_user_and_attributes,
    ids_never_issued_are_unknown_and_an_empty_id_is_invalid,
    a_session_expires_when_its_ttl_has_passed,
    a_revoked_session_says_why_and_when_and_keeps_its_first_revocation,
    unknown_and_expired_sessions_cannot_be_revoked,
    revoking_a_user_revokes_exactly_their_live_sessions_and_counts_them,
    tokens_issued_at_or_before_the_users_watermark_are_revoked,
    list_user_sessions_lists_live_sessions_soonest_expiring_first,
    a_listed_handle_revokes_its_session_but_does_not_pass_as_its_id,
    invalid_requests_are_invalid_values,
    a_watch_starts_with_a_cursor_then_streams_each_revocation,
    a_watcher_resuming_from_its_cursor_gets_what_it_missed_then_what_comes,
    a_burst_of_revocations_reaches_a_watcher_complete_and_in_order,
    malformed_and_future_cursors_are_invalid,
    a_cursor_older_than_the_log_is_out_of_range,
    shutting_down_ends_open_watches_with_unavailable,
    a_session_beyond_the_users_limit_evicts_those_expiring_first_and_says_so,
    revoking_a_user_with_more_sessions_than_a_batch_revokes_every_one,
);
