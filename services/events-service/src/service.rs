//! The `idmesh.v1.EventService` gRPC API: ListEvents and WatchEvents.

use std::collections::HashMap;
use std::time::Duration;

use idmesh_proto::v1::event_service_server::EventService;
use idmesh_proto::v1::{
    Event, Heartbeat, ListEventsRequest, ListEventsResponse, WatchEventsRequest, WatchEventsResponse,
    watch_events_response,
};
use idmesh_runtime::auth;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::log::{Log, Range, is_known_type};

pub use idmesh_api::events::CURSOR_EXPIRED;

/// `ErrorInfo.reason` of a page token ListEvents did not write.
pub const INVALID_CURSOR: &str = "invalidCursor";

/// ListEvents' page size when the request names none, and its largest.
const DEFAULT_PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 1_000;

/// Events a watch reads from the log at a time.
const WATCH_BATCH: u64 = 500;

/// Messages buffered for a slow watcher before the watch waits for it.
const WATCH_BUFFER: usize = 64;

/// How often an idle watch looks at the log even without a signal: events
/// appended by another replica do not signal this one.
const WATCH_POLL: Duration = Duration::from_secs(1);

/// The events-service gRPC implementation.
#[derive(Debug, Clone)]
pub struct EventApi {
    log: Log,
    /// How long a watch stays silent before it sends a heartbeat.
    heartbeat: Duration,
    /// Ends every watch when the server stops.
    shutdown: CancellationToken,
}

impl EventApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.EventService";

    pub(crate) fn new(log: Log, heartbeat: Duration, shutdown: CancellationToken) -> EventApi {
        EventApi {
            log,
            heartbeat,
            shutdown,
        }
    }
}

pub(crate) fn database(err: &sea_orm::DbErr) -> Status {
    if idmesh_store::is_transient(err) {
        idmesh_api::status::unavailable("events-service", err)
    } else {
        idmesh_api::status::internal("events-service", err)
    }
}

/// FAILED_PRECONDITION "cursorExpired", with the sequence number to resume
/// after (once resynced) in the `ErrorInfo`'s metadata as `resume_after`.
pub(crate) fn expired(directory_id: &str, after: i64, pruned_through: i64) -> Status {
    let metadata = HashMap::from([("resume_after".to_owned(), pruned_through.to_string())]);
    Status::with_error_details(
        Code::FailedPrecondition,
        format!(
            "directory {directory_id} no longer keeps the events after {after}: retention removed those through \
             {pruned_through}; resync from the SCIM resources, then continue after {pruned_through}"
        ),
        ErrorDetails::with_error_info(CURSOR_EXPIRED, idmesh_api::status::ERROR_DOMAIN, metadata),
    )
}

/// The most types a request may name: a type named twice gains nothing,
/// and every one becomes a bound parameter of the query.
const MAX_TYPES: usize = 32;

/// The requested types, each a known one.
pub(crate) fn checked_types(types: &[i32]) -> Result<&[i32], Status> {
    if types.len() > MAX_TYPES {
        return Err(idmesh_api::status::invalid_argument(format!(
            "at most {MAX_TYPES} event types, not {}",
            types.len()
        )));
    }
    match types.iter().find(|t| !is_known_type(**t)) {
        Some(unknown) => Err(idmesh_api::status::invalid_argument(format!(
            "unknown event type {unknown}"
        ))),
        None => Ok(types),
    }
}

/// A page token: the direction and the sequence number the walk continues
/// from.
fn page_token(descending: bool, sequence: i64) -> String {
    format!("{}{sequence}", if descending { 'b' } else { 'f' })
}

fn parse_page_token(token: &str) -> Result<(bool, i64), Status> {
    let invalid = || {
        idmesh_api::status::with_reason(
            Code::InvalidArgument,
            Some(INVALID_CURSOR),
            format!("{token:?} is not a page token ListEvents gave"),
        )
    };
    let (descending, sequence) = match token.split_at_checked(1) {
        Some(("f", sequence)) => (false, sequence),
        Some(("b", sequence)) => (true, sequence),
        _ => return Err(invalid()),
    };
    let sequence = sequence.parse::<i64>().map_err(|_| invalid())?;
    if sequence < 0 {
        return Err(invalid());
    }
    Ok((descending, sequence))
}

pub(crate) fn page_size(requested: i32) -> Result<u64, Status> {
    match u64::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(idmesh_api::status::invalid_argument(format!(
            "page_size must be between 0 and {MAX_PAGE_SIZE}, not {requested}"
        ))),
    }
}

fn not_negative(after: i64) -> Result<i64, Status> {
    if after < 0 {
        return Err(idmesh_api::status::invalid_argument(
            "after_sequence must not be negative",
        ));
    }
    Ok(after)
}

impl EventApi {
    /// Where a ListEvents walk starts (exclusive) and in which direction;
    /// `None` when a time names a point with no event on that side.
    async fn start(&self, request: &ListEventsRequest) -> Result<Option<(i64, bool)>, Status> {
        if !request.page_token.is_empty() {
            let (descending, sequence) = parse_page_token(&request.page_token)?;
            return Ok(Some((sequence, descending)));
        }
        let descending = request.descending;
        let Some(since) = &request.since else {
            return Ok(Some((not_negative(request.after_sequence)?, descending)));
        };
        let at = idmesh_api::timestamp::from_proto(since)
            .ok_or_else(|| idmesh_api::status::invalid_argument("since is out of range"))?;
        let time_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let found = self
            .log
            .at_time(&request.directory_id, time_ms, descending)
            .await
            .map_err(|err| database(&err))?;
        // The walk is exclusive of its start, so it starts beside the event.
        Ok(found.map(|sequence| {
            if descending {
                (sequence + 1, true)
            } else {
                (sequence - 1, false)
            }
        }))
    }
}

#[tonic::async_trait]
impl EventService for EventApi {
    async fn list_events(&self, request: Request<ListEventsRequest>) -> Result<Response<ListEventsResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let types = checked_types(&request.types)?;
        let limit = page_size(request.page_size)?;
        let directory_id = request.directory_id.as_str();
        let events = match self.start(&request).await? {
            Some((from, descending)) => {
                let range = Range {
                    from,
                    through: None,
                    descending,
                    types,
                    limit,
                };
                let events = self.log.read(directory_id, range).await.map_err(|err| database(&err))?;
                Some((events, from, descending))
            }
            None => None,
        };
        // Read after the events: retention that removed some of them while
        // they were read shows here.
        let head = self.log.head(directory_id).await.map_err(|err| database(&err))?;
        let oldest = self.log.oldest(directory_id).await.map_err(|err| database(&err))?;
        let Some((events, from, descending)) = events else {
            return Ok(Response::new(ListEventsResponse {
                events: Vec::new(),
                next_page_token: String::new(),
                oldest_sequence: oldest.unwrap_or(0),
                latest_sequence: head.latest,
            }));
        };
        if !descending && from < head.pruned_through {
            return Err(expired(directory_id, from, head.pruned_through));
        }
        let full = u64::try_from(events.len()).unwrap_or(u64::MAX) == limit;
        let next_page_token = match events.last() {
            Some(last) if full => page_token(descending, last.sequence),
            _ => String::new(),
        };
        Ok(Response::new(ListEventsResponse {
            events,
            next_page_token,
            oldest_sequence: oldest.unwrap_or(0),
            latest_sequence: head.latest,
        }))
    }

    type WatchEventsStream = ReceiverStream<Result<WatchEventsResponse, Status>>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        checked_types(&request.types)?;
        let after = not_negative(request.after_sequence)?;
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        let watch = Watch {
            log: self.log.clone(),
            sender,
            directory_id: request.directory_id,
            types: request.types,
            heartbeat: self.heartbeat,
        };
        tokio::spawn(watch.run(after, self.shutdown.clone()));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// One watcher's stream.
struct Watch {
    log: Log,
    sender: mpsc::Sender<Result<WatchEventsResponse, Status>>,
    directory_id: String,
    types: Vec<i32>,
    heartbeat: Duration,
}

/// Why a watch ended.
enum WatchEnd {
    /// The watcher hung up, or the server is stopping.
    Gone,
    /// The watch failed; the watcher is told why.
    Failed(Status),
}

impl Watch {
    async fn run(self, after: i64, shutdown: CancellationToken) {
        if let Err(WatchEnd::Failed(status)) = self.stream(after, shutdown).await {
            let _ = self.sender.send(Err(status)).await;
        }
    }

    async fn send(&self, message: watch_events_response::Message) -> Result<(), WatchEnd> {
        let message = WatchEventsResponse { message: Some(message) };
        self.sender.send(Ok(message)).await.map_err(|_| WatchEnd::Gone)
    }

    /// Sends every event after `after`, then each new one, with heartbeats
    /// while there is none. The append signal is marked seen before the
    /// log is read, so an append in between wakes the next wait.
    async fn stream(&self, mut after: i64, shutdown: CancellationToken) -> Result<(), WatchEnd> {
        let mut appended = self.log.subscribe();
        let mut quiet_since = Instant::now();
        loop {
            appended.borrow_and_update();
            let head = self
                .log
                .head(&self.directory_id)
                .await
                .map_err(|err| WatchEnd::Failed(database(&err)))?;
            if head.latest > after {
                let range = Range {
                    from: after,
                    through: Some(head.latest),
                    descending: false,
                    types: &self.types,
                    limit: WATCH_BATCH,
                };
                let events: Vec<Event> = self
                    .log
                    .read(&self.directory_id, range)
                    .await
                    .map_err(|err| WatchEnd::Failed(database(&err)))?;
                let pruned_through = self
                    .log
                    .head(&self.directory_id)
                    .await
                    .map_err(|err| WatchEnd::Failed(database(&err)))?
                    .pruned_through;
                if after < pruned_through {
                    return Err(WatchEnd::Failed(expired(&self.directory_id, after, pruned_through)));
                }
                let full = u64::try_from(events.len()).unwrap_or(u64::MAX) == WATCH_BATCH;
                after = match events.last() {
                    Some(last) if full => last.sequence,
                    // Everything through the head was read: a filtered
                    // watch has passed the events it left out.
                    _ => head.latest,
                };
                for event in events {
                    self.send(watch_events_response::Message::Event(Box::new(event)))
                        .await?;
                    quiet_since = Instant::now();
                }
                continue;
            }
            if after < head.pruned_through {
                return Err(WatchEnd::Failed(expired(
                    &self.directory_id,
                    after,
                    head.pruned_through,
                )));
            }
            tokio::select! {
                _ = appended.changed() => {}
                () = tokio::time::sleep(WATCH_POLL) => {}
                () = tokio::time::sleep_until(quiet_since + self.heartbeat) => {
                    let heartbeat = Heartbeat {
                        sequence: after,
                        time: Some(std::time::SystemTime::now().into()),
                    };
                    self.send(watch_events_response::Message::Heartbeat(heartbeat)).await?;
                    quiet_since = Instant::now();
                }
                () = self.sender.closed() => return Err(WatchEnd::Gone),
                () = shutdown.cancelled() => return Err(WatchEnd::Gone),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_anything_else_is_an_invalid_cursor() {
        assert_eq!(parse_page_token(&page_token(false, 42)).expect("a token"), (false, 42));
        assert_eq!(parse_page_token(&page_token(true, 7)).expect("a token"), (true, 7));
        for bad in ["", "f", "x12", "f-3", "b1e3", "ü1"] {
            let status = parse_page_token(bad).expect_err(bad);
            assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
            assert_eq!(
                idmesh_api::status::reason(&status).as_deref(),
                Some(INVALID_CURSOR),
                "{bad:?}"
            );
        }
    }
}
