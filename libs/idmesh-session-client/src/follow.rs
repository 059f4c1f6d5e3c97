//! The task that feeds the view from `WatchRevocations`: it resumes from
//! its last cursor after a failure, and starts over (forgetting the view)
//! when session-service no longer has the revocations after that cursor.

use std::sync::Arc;

use idmesh_api::timestamp;
use idmesh_proto::v1::{RevocationEvent, WatchRevocationsRequest, WatchRevocationsResponse};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::client::Shared;
use crate::model::{Revocation, UserRef};
use crate::view::Event;

/// Why one watch ended.
enum WatchEnd {
    /// The connection or the service failed: resume from the cursor.
    Failed(Status),
    /// The service no longer has what follows the cursor: start over.
    CursorLost(Status),
}

/// Follows the revocation log into the view until `stop` is cancelled.
pub(crate) async fn follow_revocations(shared: Arc<Shared>, stop: CancellationToken) {
    let mut cursor: Option<String> = None;
    let mut delay = shared.options.reconnect_delay;
    loop {
        let mut synced = false;
        let end = tokio::select! {
            () = stop.cancelled() => return,
            end = watch(&shared, &mut cursor, &mut synced) => end,
        };
        shared.set_synced(false);
        if synced {
            delay = shared.options.reconnect_delay;
        }
        match end {
            WatchEnd::Failed(status) => tracing::warn!(
                code = ?status.code(),
                message = status.message(),
                retry_in = ?delay,
                "revocation watch failed; checks ask session-service until it resumes"
            ),
            WatchEnd::CursorLost(status) => {
                tracing::warn!(
                    code = ?status.code(),
                    message = status.message(),
                    "session-service no longer has the revocations after this client's cursor; \
                     forgetting every cached answer and watching from the end of the log"
                );
                shared.view_mut().restart();
                cursor = None;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(shared.options.max_reconnect_delay);
    }
}

/// One watch, from `cursor` (the end of the log if `None`), applying every
/// message to the view and keeping `cursor` at the last one. Sets `synced`
/// (and the view's flag) once the view holds every revocation logged
/// before the watch began.
async fn watch(shared: &Shared, cursor: &mut Option<String>, synced: &mut bool) -> WatchEnd {
    let mut catch_up = match cursor {
        Some(_) => match log_end(shared).await {
            Ok(end) => CatchUp::To(end),
            Err(status) => return WatchEnd::Failed(status),
        },
        None => CatchUp::Done,
    };
    let resuming = cursor.is_some();
    let request = WatchRevocationsRequest {
        cursor: cursor.clone().unwrap_or_default(),
    };
    let mut grpc = shared.grpc.clone();
    let mut stream = match shared.call(grpc.watch_revocations(request)).await {
        Ok(stream) => stream,
        Err(status) => return end_of(status, resuming),
    };
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => return WatchEnd::Failed(Status::unavailable("session-service ended the revocation watch")),
            Err(status) => return end_of(status, resuming),
        };
        catch_up.past(&message);
        let now = shared.now();
        let events = message.events.into_iter().map(|event| event_from_proto(event, now));
        shared.view_mut().apply(events, now);
        *cursor = Some(message.cursor);
        if catch_up == CatchUp::Done && !*synced {
            *synced = true;
            shared.set_synced(true);
        }
    }
}

/// How far a watch must get before the view holds every revocation logged
/// before the watch began. Resuming, the service may send what was missed
/// over several messages: the view has caught up once it has applied the
/// revocation that ended the log when the watch began. A watch from the end
/// of the log starts caught up.
#[derive(Debug, PartialEq, Eq)]
enum CatchUp {
    To(String),
    Done,
}

impl CatchUp {
    /// Notes `message`, which the view applies.
    fn past(&mut self, message: &WatchRevocationsResponse) {
        if let CatchUp::To(end) = self
            && (message.cursor == *end || message.events.iter().any(|event| event.cursor == *end))
        {
            *self = CatchUp::Done;
        }
    }
}

/// Where the revocation log ends now: the cursor of the first message of a
/// watch from the end.
async fn log_end(shared: &Shared) -> Result<String, Status> {
    let mut grpc = shared.grpc.clone();
    let mut stream = shared
        .call(grpc.watch_revocations(WatchRevocationsRequest::default()))
        .await?;
    let first = tokio::time::timeout(shared.options.request_timeout, stream.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no first message from the revocation watch"))??;
    first
        .map(|message| message.cursor)
        .ok_or_else(|| Status::unavailable("session-service ended the revocation watch"))
}

/// OUT_OF_RANGE says revocations after the cursor were dropped from the
/// log; INVALID_ARGUMENT for a cursor the service gave says it is ahead of
/// the log (its Redis lost the log). Either way, resuming is impossible.
fn end_of(status: Status, resuming: bool) -> WatchEnd {
    match status.code() {
        Code::OutOfRange => WatchEnd::CursorLost(status),
        Code::InvalidArgument if resuming => WatchEnd::CursorLost(status),
        _ => WatchEnd::Failed(status),
    }
}

fn event_from_proto(event: RevocationEvent, now: OffsetDateTime) -> Event {
    // session-service always says when; without it, "now" is a safe
    // stand-in: the revocation happened before, so a watermark of now
    // revokes at least every token it did.
    let revoked_at = event.revoked_at.as_ref().and_then(timestamp::from_proto).unwrap_or(now);
    Event {
        user: UserRef::new(event.directory_id, event.user_id),
        session_id: (!event.session_id.is_empty()).then_some(event.session_id),
        revocation: Revocation {
            reason: event.reason,
            revoked_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(cursors: &[&str], cursor: &str) -> WatchRevocationsResponse {
        WatchRevocationsResponse {
            events: cursors
                .iter()
                .map(|cursor| RevocationEvent {
                    cursor: (*cursor).to_owned(),
                    ..RevocationEvent::default()
                })
                .collect(),
            cursor: cursor.to_owned(),
        }
    }

    #[test]
    fn a_resumed_watch_has_caught_up_only_past_the_log_end_it_began_at() {
        let mut catch_up = CatchUp::To("5-0".into());
        catch_up.past(&message(&["2-0", "3-0"], "3-0"));
        assert_eq!(catch_up, CatchUp::To("5-0".into()), "a first batch of what was missed");
        catch_up.past(&message(&["4-0", "5-0", "6-0"], "6-0"));
        assert_eq!(catch_up, CatchUp::Done);
        catch_up.past(&message(&["7-0"], "7-0"));
        assert_eq!(catch_up, CatchUp::Done, "caught up stays caught up");
    }

    #[test]
    fn a_resumed_watch_that_missed_nothing_has_caught_up_at_its_first_message() {
        let mut catch_up = CatchUp::To("5-0".into());
        catch_up.past(&message(&[], "5-0"));
        assert_eq!(catch_up, CatchUp::Done);
    }

    #[test]
    fn an_event_without_a_time_is_revoked_as_of_now_and_without_a_session_is_the_users() {
        let now = OffsetDateTime::now_utc();
        let event = event_from_proto(
            RevocationEvent {
                directory_id: "d".into(),
                user_id: "u".into(),
                ..RevocationEvent::default()
            },
            now,
        );
        assert_eq!(event.revocation.revoked_at, now);
        assert_eq!(event.session_id, None);
        assert_eq!(event.user, UserRef::new("d", "u"));
    }
}
