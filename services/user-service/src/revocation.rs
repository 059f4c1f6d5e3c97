//! The session revocations that deprovisioning calls for, delivered to
//! session-service at least once; for a deleted user also the removal of
//! its memberships, delivered to group-service the same way.
//!
//! A write that deactivates or deletes a user stores a row in
//! `session_revocations` in its own transaction ([`Revocations::record`]), so
//! the revocation commits exactly when the user change does. The request
//! then delivers it at once ([`Revocations::deliver_claimed`]): normally the
//! user's sessions are revoked before the caller hears back. When
//! session-service (or its Redis) cannot be reached the row stays, and
//! [`Revocations::run`] retries it with exponential backoff until
//! session-service confirms, then deletes it. The row keeps the request's
//! `traceparent`, so a retry shows up in the trace of the request that
//! called for it.
//!
//! Several user-service replicas may share the table. A deliverer claims the
//! rows that are due by writing its token and a lease into them in one
//! statement, so replicas do not all pile onto the same rows; rows of a
//! claimant that died become claimable again when its lease runs out.
//! Delivery is at least once: RevokeUserSessions is idempotent, so a
//! revocation delivered twice (a lease that ran out mid-call) does no harm.

use std::time::Duration;

use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{RemoveMemberEverywhereRequest, RevokeUserSessionsRequest};
use idmesh_runtime::auth::AuthChannel;
use idmesh_runtime::clock::Clock;
use idmesh_runtime::telemetry::context;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::Instrument;

use crate::entity::session_revocation::{self, Column, Entity};

/// What session-service records as the reason when a user is deactivated.
pub(crate) const USER_DEACTIVATED: &str = "user deactivated";
/// What session-service records as the reason when a user is deleted. A
/// deleted user also leaves every group: the same row asks group-service
/// for that, and is done only when both have confirmed.
pub(crate) const USER_DELETED: &str = "user deleted";

/// How long a claim keeps other deliverers off a row: longer than a
/// delivery can take ([`DELIVERY_TIMEOUT`]), short enough that the rows of
/// a replica that died are soon picked up by another.
const LEASE: Duration = Duration::from_secs(30);
/// How long one RevokeUserSessions (or RemoveMemberEverywhere) call may
/// take before it counts as failed.
/// It bounds how much longer a deprovisioning request takes when
/// session-service hangs; a session-service whose Redis is down answers
/// UNAVAILABLE well within it.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the deliverer looks for revocations that are due.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How many revocations a deliverer claims at once.
const BATCH: u64 = 32;
/// The wait after the first failed delivery; it doubles with each further
/// failure, up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How often the deliverer logs the backlog while revocations wait.
const REPORT_INTERVAL: Duration = Duration::from_secs(30);
/// How often the deliverer updates the backlog metrics.
const MEASURE_INTERVAL: Duration = Duration::from_secs(5);

/// Gauge: revocations stored and not yet delivered (Prometheus, when the
/// process serves metrics).
pub(crate) const BACKLOG_METRIC: &str = "idmesh_session_revocation_backlog";
/// Gauge: how long the oldest undelivered revocation has waited, in
/// seconds; 0 when none waits.
pub(crate) const OLDEST_METRIC: &str = "idmesh_session_revocation_oldest_seconds";
/// Counter: revocations delivered.
const DELIVERED_METRIC: &str = "idmesh_session_revocations_delivered_total";
/// Counter: failed delivery attempts.
const FAILURES_METRIC: &str = "idmesh_session_revocation_failures_total";

/// The session revocations of one user-service, stored with the user
/// changes that call for them and delivered to session-service.
#[derive(Clone)]
pub(crate) struct Revocations {
    db: DatabaseConnection,
    sessions: SessionServiceClient<AuthChannel>,
    groups: GroupServiceClient<AuthChannel>,
    clock: Clock,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations").finish_non_exhaustive()
    }
}

/// The revocations waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub(crate) pending: u64,
    /// When the oldest waiting revocation was stored.
    pub(crate) oldest: Option<OffsetDateTime>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// This row failed for reasons of its own: session-service rejected
    /// it, or group-service could not remove the user's memberships. The
    /// rest of the batch may still go through, so it goes on.
    FailedAlone,
    /// session-service could not be reached or did not answer; the next
    /// attempt is due at this instant (epoch milliseconds).
    Unreachable {
        retry_at: i64,
    },
}

/// Which call of a delivery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// RevokeUserSessions: the user's sessions may still be alive.
    Sessions,
    /// RemoveMemberEverywhere, after the sessions were revoked.
    Memberships,
}

/// Milliseconds since the Unix epoch, how `deliver_after` is stored.
fn epoch_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// How long to wait after `failures` failed deliveries of one revocation.
fn backoff(failures: i32) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1)).unwrap_or(0);
    let factor = 2u32.checked_pow(doublings).unwrap_or(u32::MAX);
    FIRST_RETRY.saturating_mul(factor).min(MAX_RETRY)
}

/// Whether a failed RevokeUserSessions says something about this request
/// rather than about session-service being unavailable.
fn rejects_the_request(status: &Status) -> bool {
    status.code() == Code::InvalidArgument
}

impl Revocations {
    /// Revocations stored in `db` and delivered over `sessions`, a channel
    /// to session-service; membership removals over `groups`, a channel to
    /// group-service.
    pub(crate) fn new(db: DatabaseConnection, sessions: AuthChannel, groups: AuthChannel, clock: Clock) -> Revocations {
        Revocations {
            db,
            sessions: idmesh_runtime::with_message_limits!(SessionServiceClient::new(sessions)),
            groups: idmesh_runtime::with_message_limits!(GroupServiceClient::new(groups)),
            clock,
        }
    }

    /// Stores, as part of `txn`, that every session of the user must be
    /// revoked. The row comes back claimed by the caller, so that no
    /// deliverer races the caller's own first attempt.
    pub(crate) async fn record(
        &self,
        txn: &impl ConnectionTrait,
        directory_id: &str,
        user_id: &str,
        reason: &str,
    ) -> Result<session_revocation::Model, DbErr> {
        let now = (self.clock)();
        session_revocation::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            directory_id: Set(directory_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            reason: Set(reason.to_owned()),
            remove_memberships: Set(reason == USER_DELETED),
            created: Set(now),
            attempts: Set(0),
            deliver_after: Set(epoch_millis(now).saturating_add(millis(LEASE))),
            claim: Set(Some(uuid::Uuid::now_v7().to_string())),
            last_error: Set(None),
            traceparent: Set(context::current_traceparent()),
        }
        .insert(txn)
        .await
    }

    /// Delivers a revocation the caller has claimed, once. A failure is
    /// logged and left to the deliverer ([`Revocations::run`]); it is not the
    /// caller's error, since the revocation is stored.
    pub(crate) async fn deliver_claimed(&self, row: session_revocation::Model) {
        if let Err(err) = self.deliver(row).await {
            tracing::warn!(error = %err, "could not update the session revocation outbox; the deliverer will retry");
        }
    }

    /// Delivers the stored revocations as they fall due until `shutdown`,
    /// keeps the backlog metrics current, and logs the backlog every
    /// [`REPORT_INTERVAL`] while it is not empty.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        let mut measure = tokio::time::interval(MEASURE_INTERVAL);
        let mut last_pending = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = report.tick() => last_pending = self.report_backlog(last_pending).await,
                _ = measure.tick() => self.measure_backlog().await,
                _ = poll.tick() => {
                    // Stopping mid-batch is safe: what was claimed and not
                    // deleted is delivered again once the lease runs out.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        result = self.deliver_due() => {
                            if let Err(err) = result {
                                tracing::warn!(error = %err, "could not read the session revocation outbox");
                            }
                        }
                    }
                }
            }
        }
    }

    /// How many revocations wait, and since when.
    pub(crate) async fn backlog(&self) -> Result<Backlog, DbErr> {
        let pending = Entity::find().count(&self.db).await?;
        let oldest = Entity::find().order_by_asc(Column::Id).one(&self.db).await?;
        Ok(Backlog {
            pending,
            oldest: oldest.map(|row| row.created),
        })
    }

    /// Sets the backlog gauges ([`BACKLOG_METRIC`], [`OLDEST_METRIC`]).
    pub(crate) async fn measure_backlog(&self) {
        match self.backlog().await {
            Ok(backlog) => {
                let waited = backlog
                    .oldest
                    .map_or(0.0, |oldest| ((self.clock)() - oldest).as_seconds_f64().max(0.0));
                metrics::gauge!(BACKLOG_METRIC).set(backlog.pending as f64);
                metrics::gauge!(OLDEST_METRIC).set(waited);
            }
            Err(err) => tracing::warn!(error = %err, "could not measure the session revocation backlog"),
        }
    }

    /// Logs the backlog: a warning while revocations wait, a note when it has
    /// drained. Returns the number pending, for the next report.
    async fn report_backlog(&self, last_pending: u64) -> u64 {
        match self.backlog().await {
            Ok(Backlog {
                pending,
                oldest: Some(oldest),
            }) if pending > 0 => {
                let waiting = ((self.clock)() - oldest).whole_seconds();
                tracing::warn!(
                    revocation_backlog = pending,
                    oldest_waiting_seconds = waiting,
                    "session revocations are waiting for session-service"
                );
                pending
            }
            Ok(_) => {
                if last_pending > 0 {
                    tracing::info!(revocation_backlog = 0, "every session revocation is delivered");
                }
                0
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not count the session revocation backlog");
                last_pending
            }
        }
    }

    /// Claims the revocations that are due and delivers them, earliest first.
    /// Once session-service turns out unreachable, the rest of the batch
    /// waits as long as the one that failed instead of failing the same way.
    /// Returns how many were delivered.
    pub(crate) async fn deliver_due(&self) -> Result<usize, DbErr> {
        let mut claimed = self.claim_due().await?.into_iter();
        let mut delivered = 0;
        while let Some(row) = claimed.next() {
            // A retry belongs to the trace of the request that stored it.
            let span = tracing::info_span!(
                "session revocation retry",
                directory_id = %row.directory_id,
                user_id = %row.user_id,
                attempt = row.attempts.saturating_add(1),
            );
            context::continue_stored_trace(&span, row.traceparent.as_deref());
            match self.deliver(row).instrument(span).await? {
                Outcome::Delivered => delivered += 1,
                Outcome::FailedAlone => {}
                Outcome::Unreachable { retry_at } => {
                    let rest: Vec<_> = claimed.collect();
                    self.postpone(&rest, retry_at).await?;
                    break;
                }
            }
        }
        Ok(delivered)
    }

    /// Claims up to [`BATCH`] revocations that are due, for one [`LEASE`].
    pub(crate) async fn claim_due(&self) -> Result<Vec<session_revocation::Model>, DbErr> {
        let now = epoch_millis((self.clock)());
        let due = Column::DeliverAfter.lte(now);
        // Reading first keeps an idle deliverer from taking SQLite's write
        // lock every second.
        if Entity::find().filter(due.clone()).one(&self.db).await?.is_none() {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::now_v7().to_string();
        let first_due = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(due.clone())
            .order_by_asc(Column::DeliverAfter)
            .limit(BATCH)
            .into_query();
        // The outer condition repeats `due`: PostgreSQL re-checks it on a row
        // that another deliverer claimed while this statement waited for it,
        // and then skips the row.
        let claimed = Entity::update_many()
            .col_expr(Column::Claim, Expr::value(token.clone()))
            .col_expr(Column::DeliverAfter, Expr::value(now.saturating_add(millis(LEASE))))
            .filter(due)
            .filter(Column::Id.in_subquery(first_due))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 0 {
            return Ok(Vec::new());
        }
        Entity::find()
            .filter(Column::Claim.eq(token))
            .order_by_asc(Column::Id)
            .all(&self.db)
            .await
    }

    /// Asks session-service to revoke the user's sessions and, for a
    /// deleted user, group-service to remove it from every group. On
    /// success the row is deleted; on failure it is rescheduled after a
    /// backoff, unless another deliverer has claimed it since. Both calls
    /// are idempotent, so a retry repeats the one that succeeded harmlessly.
    async fn deliver(&self, row: session_revocation::Model) -> Result<Outcome, DbErr> {
        let answer = match self.revoke_sessions(&row).await {
            Ok(revoked) if row.remove_memberships => self
                .remove_memberships(&row)
                .await
                .map(|()| revoked)
                .map_err(|status| (Failed::Memberships, status)),
            answer => answer.map_err(|status| (Failed::Sessions, status)),
        };
        let failures = row.attempts.saturating_add(1);
        match answer {
            Ok(revoked_sessions) => {
                Entity::delete_by_id(row.id.clone()).exec(&self.db).await?;
                metrics::counter!(DELIVERED_METRIC).increment(1);
                tracing::info!(
                    directory_id = %row.directory_id,
                    user_id = %row.user_id,
                    reason = %row.reason,
                    revoked_sessions,
                    memberships_removed = row.remove_memberships,
                    failed_attempts = row.attempts,
                    "user's sessions revoked"
                );
                Ok(Outcome::Delivered)
            }
            Err((failed, status)) => {
                metrics::counter!(FAILURES_METRIC).increment(1);
                let wait = backoff(failures);
                let retry_at = epoch_millis((self.clock)()).saturating_add(millis(wait));
                Entity::update_many()
                    .col_expr(Column::Attempts, Expr::value(failures))
                    .col_expr(Column::DeliverAfter, Expr::value(retry_at))
                    .col_expr(Column::Claim, Expr::value(Option::<String>::None))
                    .col_expr(Column::LastError, Expr::value(status.to_string()))
                    .filter(Column::Id.eq(row.id.clone()))
                    .filter(Column::Claim.eq(row.claim.clone()))
                    .exec(&self.db)
                    .await?;
                match failed {
                    Failed::Sessions if rejects_the_request(&status) => {
                        tracing::error!(
                            directory_id = %row.directory_id,
                            user_id = %row.user_id,
                            error = %status,
                            retry_in = ?wait,
                            "session-service rejects a session revocation"
                        );
                        Ok(Outcome::FailedAlone)
                    }
                    Failed::Sessions => {
                        tracing::warn!(
                            directory_id = %row.directory_id,
                            user_id = %row.user_id,
                            error = %status,
                            retry_in = ?wait,
                            "session revocation not delivered yet"
                        );
                        Ok(Outcome::Unreachable { retry_at })
                    }
                    // The sessions are revoked; only this row waits for
                    // group-service, and revocations behind it go on.
                    Failed::Memberships => {
                        tracing::warn!(
                            directory_id = %row.directory_id,
                            user_id = %row.user_id,
                            error = %status,
                            retry_in = ?wait,
                            "deleted user's sessions revoked; removal from its groups not delivered yet"
                        );
                        Ok(Outcome::FailedAlone)
                    }
                }
            }
        }
    }

    /// RevokeUserSessions for the row's user: how many sessions it revoked.
    async fn revoke_sessions(&self, row: &session_revocation::Model) -> Result<i64, Status> {
        let request = RevokeUserSessionsRequest {
            directory_id: row.directory_id.clone(),
            user_id: row.user_id.clone(),
            reason: row.reason.clone(),
        };
        let mut sessions = self.sessions.clone();
        let answer = within_timeout("session-service", sessions.revoke_user_sessions(request)).await?;
        Ok(answer.into_inner().revoked_sessions)
    }

    /// RemoveMemberEverywhere for the row's (deleted) user.
    async fn remove_memberships(&self, row: &session_revocation::Model) -> Result<(), Status> {
        let request = RemoveMemberEverywhereRequest {
            directory_id: row.directory_id.clone(),
            member_id: row.user_id.clone(),
        };
        let mut groups = self.groups.clone();
        within_timeout("group-service", groups.remove_member_everywhere(request)).await?;
        Ok(())
    }

    /// Releases claimed rows that were not attempted, due again at `retry_at`.
    async fn postpone(&self, rows: &[session_revocation::Model], retry_at: i64) -> Result<(), DbErr> {
        let Some(claim) = rows.first().map(|row| row.claim.clone()) else {
            return Ok(());
        };
        Entity::update_many()
            .col_expr(Column::DeliverAfter, Expr::value(retry_at))
            .col_expr(Column::Claim, Expr::value(Option::<String>::None))
            .filter(Column::Id.is_in(rows.iter().map(|row| row.id.clone())))
            .filter(Column::Claim.eq(claim))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// A call's answer, or DEADLINE_EXCEEDED once it has taken longer than
/// [`DELIVERY_TIMEOUT`].
async fn within_timeout<T>(service: &str, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    tokio::time::timeout(DELIVERY_TIMEOUT, call).await.unwrap_or_else(|_| {
        Err(Status::deadline_exceeded(format!(
            "{service} did not answer within {DELIVERY_TIMEOUT:?}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_one_second_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|failures| backoff(failures).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(i32::MAX), MAX_RETRY);
    }
}
