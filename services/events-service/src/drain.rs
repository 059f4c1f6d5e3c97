//! Draining the outboxes of user-service, group-service,
//! directory-service and role-mapping-service into the log.
//!
//! # Why the order holds
//!
//! Each service's outbox gives its events in commit order per resource:
//! a write takes its resource's lock before it takes an outbox id, so two
//! writes to one resource take ids in the order they commit (see
//! `libs/idmesh-outbox`). Draining one outbox in id order therefore keeps
//! every resource's events in commit order.
//!
//! Across the two services, the order that matters is that a member is
//! added only to something that exists: group-service adds a user (or a
//! group) only after it has seen it committed (user-service `LookupUsers`,
//! or its own group row). So a `MEMBER_ADDED` commits after the
//! `USER_CREATED` of its member. Each pass therefore pulls group-service's
//! batch **first**, then drains user-service's outbox until it is empty
//! (fewer than a batch left), appending those events, and appends the
//! group batch only after that: every user event that committed before the
//! group batch was read has been read after it, and is logged before it.
//! The group's own `GROUP_CREATED` precedes its members in the group
//! outbox itself.
//!
//! directory-service's token events depend on nothing of the others and
//! nothing depends on them; each pass appends its batch first.
//!
//! role-mapping-service decides its role events from events already in the
//! log, so they follow their causes whenever they are appended; its outbox
//! is drained by a loop of its own ([`run_independent`]), which an absent
//! or slow role-mapping-service never lets hold the others back.
//!
//! An event that is appended but not yet acked when the process stops is
//! pulled again and recognised by its id ([`crate::log::Log::append`]), so
//! nothing is lost or logged twice.

use std::time::Duration;

use idmesh_proto::v1::outbox_service_client::OutboxServiceClient;
use idmesh_proto::v1::{AckOutboxRequest, OutboxEvent, PullOutboxRequest};
use idmesh_runtime::auth::AuthChannel;
use tokio_util::sync::CancellationToken;

use crate::log::Log;

/// Events per pull and per append: one transaction each.
const BATCH: i32 = 1_000;

/// How long an idle pull waits in the outbox's service for a write.
const IDLE_WAIT_MILLIS: i32 = 10_000;

/// The longest pause after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DrainError {
    #[error("{service}: {status}")]
    Peer {
        service: &'static str,
        status: tonic::Status,
    },
    #[error("the event log: {0}")]
    Log(#[from] sea_orm::DbErr),
}

/// One service's outbox, as events-service reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub name: &'static str,
    pub client: OutboxServiceClient<AuthChannel>,
}

impl Source {
    async fn pull(&mut self, wait_millis: i32) -> Result<Vec<OutboxEvent>, DrainError> {
        let request = PullOutboxRequest {
            limit: BATCH,
            wait_millis,
        };
        let answer = self
            .client
            .pull_outbox(request)
            .await
            .map_err(|status| DrainError::Peer {
                service: self.name,
                status,
            })?;
        Ok(answer.into_inner().events)
    }

    async fn ack(&mut self, events: &[OutboxEvent]) -> Result<(), DrainError> {
        let request = AckOutboxRequest {
            outbox_ids: events.iter().map(|e| e.outbox_id).collect(),
        };
        self.client
            .ack_outbox(request)
            .await
            .map_err(|status| DrainError::Peer {
                service: self.name,
                status,
            })?;
        Ok(())
    }
}

/// Appends pulled events to the log, then acks them at their source.
async fn append_and_ack(log: &Log, source: &mut Source, pulled: Vec<OutboxEvent>) -> Result<usize, DrainError> {
    if pulled.is_empty() {
        return Ok(0);
    }
    let events = pulled.iter().filter_map(|e| e.event.clone()).collect();
    let appended = log.append(events).await?;
    source.ack(&pulled).await?;
    Ok(appended)
}

/// The outboxes events-service drains.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub users: Source,
    pub groups: Source,
    pub tokens: Source,
}

/// One pass: a token batch; a group batch, then user-service's whole
/// outbox, then the group batch appended. How many events were appended.
async fn pass(log: &Log, sources: &mut Sources) -> Result<usize, DrainError> {
    let token_batch = sources.tokens.pull(0).await?;
    let mut appended = append_and_ack(log, &mut sources.tokens, token_batch).await?;
    let (users, groups) = (&mut sources.users, &mut sources.groups);
    let group_batch = groups.pull(0).await?;
    loop {
        let user_batch = users.pull(0).await?;
        let full = user_batch.len() >= usize::try_from(BATCH).unwrap_or(usize::MAX);
        appended += append_and_ack(log, users, user_batch).await?;
        if !full {
            break;
        }
    }
    appended += append_and_ack(log, groups, group_batch).await?;
    Ok(appended)
}

/// Drains until `shutdown`: passes back to back while there are events,
/// and while there are none, a pull waiting in each source for a write.
/// Failures (a source or the database unreachable) are logged and retried
/// with growing pauses; nothing acknowledged at a source is lost, since
/// only appended events are acked.
pub(crate) async fn run(log: Log, mut sources: Sources, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let outcome = tokio::select! {
            outcome = pass(&log, &mut sources) => outcome,
            () = shutdown.cancelled() => return,
        };
        match outcome {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                // Whichever source gets a write first ends the wait; the
                // events themselves are read by the next pass, in order.
                let Sources {
                    mut users,
                    mut groups,
                    mut tokens,
                } = sources.clone();
                tokio::select! {
                    _ = users.pull(IDLE_WAIT_MILLIS) => {}
                    _ = groups.pull(IDLE_WAIT_MILLIS) => {}
                    _ = tokens.pull(IDLE_WAIT_MILLIS) => {}
                    () = shutdown.cancelled() => return,
                }
            }
            Ok(appended) => {
                backoff = Duration::from_millis(100);
                tracing::debug!(appended, "events sequenced");
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "could not drain the outboxes; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Drains one outbox whose events need no order against the others' until
/// `shutdown`: a pull that waits in the source for a write, then its
/// events appended and acked. Failures are logged and retried with growing
/// pauses.
pub(crate) async fn run_independent(log: Log, mut source: Source, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let pulled = tokio::select! {
            pulled = source.pull(IDLE_WAIT_MILLIS) => pulled,
            () = shutdown.cancelled() => return,
        };
        let outcome = match pulled {
            Ok(pulled) => append_and_ack(&log, &mut source, pulled).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok(appended) => {
                backoff = Duration::from_millis(100);
                if appended > 0 {
                    tracing::debug!(appended, source = source.name, "events sequenced");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "could not drain an outbox; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
