//! The `idmesh.v1.SessionService` gRPC API: validates requests, converts
//! between protobuf messages and the domain, and runs revocation watches.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use idmesh_api::timestamp;
use idmesh_proto::v1::session_service_server::SessionService;
use idmesh_proto::v1::{
    CheckSessionRequest, CheckSessionResponse, CheckTokenRequest, CheckTokenResponse, CreateSessionRequest,
    ListUserSessionsRequest, ListUserSessionsResponse, RevokeSessionByHandleRequest, RevokeSessionRequest,
    RevokeSessionResponse, RevokeUserSessionsRequest, RevokeUserSessionsResponse, SessionStatus, TokenStatus,
    WatchRevocationsRequest, WatchRevocationsResponse,
};
use idmesh_runtime::auth;
use idmesh_runtime::clock::Clock;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::model::{
    Cursor, MAX_SESSION_TTL, Revocation, RevocationEvent, Session, SessionId, SessionState, UserRef,
    revoked_by_watermark,
};
use crate::store::{RevokeOutcome, SessionStore, StoreError};

/// Longest directory id or user id, in bytes.
const MAX_ID_LEN: usize = 256;
/// Longest revocation reason, in bytes.
const MAX_REASON_LEN: usize = 1024;
/// Most attributes a session may carry, and their total size in bytes.
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTES_SIZE: usize = 16 * 1024;
/// Most revocations in one watch message while catching up from the log.
const WATCH_BATCH: usize = 256;
/// Watch messages buffered for a slow watcher before it catches up from the
/// log instead.
const WATCH_BUFFER: usize = 64;

/// The session-service gRPC implementation, over any [`SessionStore`].
pub struct SessionApi<S> {
    store: Arc<S>,
    clock: Clock,
    /// Ends open watches when the server shuts down, so that draining does
    /// not wait for streams that never end by themselves.
    shutdown: CancellationToken,
}

impl<S: SessionStore> SessionApi<S> {
    /// The fully qualified gRPC service name, for health and reflection.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.SessionService";

    /// The API over `store`, telling time by `clock`; watches end when
    /// `shutdown` is cancelled.
    pub fn new(store: Arc<S>, clock: Clock, shutdown: CancellationToken) -> Self {
        Self { store, clock, shutdown }
    }

    async fn revoke(&self, id: &SessionId, revocation: &Revocation) -> Result<Response<RevokeSessionResponse>, Status> {
        match self.store.revoke_session(id, revocation).await? {
            RevokeOutcome::Revoked(session) => Ok(Response::new(RevokeSessionResponse {
                session: Some(session_to_proto(session)),
            })),
            RevokeOutcome::Unknown => Err(not_found("no such session")),
            RevokeOutcome::Expired => Err(not_found("the session has expired")),
        }
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        match &err {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "session store unavailable");
                Status::unavailable("the session store is unavailable; retry later")
            }
            StoreError::CursorTooOld(_) => {
                Status::out_of_range(format!("{err}: resynchronise, then watch again with an empty cursor"))
            }
            StoreError::CursorAhead(_) => invalid(err.to_string()),
            StoreError::Internal(_) => idmesh_api::status::internal("session-service", &err),
        }
    }
}

fn invalid(detail: impl Into<String>) -> Status {
    idmesh_api::status::invalid_argument(detail)
}

fn not_found(detail: &str) -> Status {
    idmesh_api::status::not_found(detail)
}

fn user_ref(directory_id: String, user_id: String) -> Result<UserRef, Status> {
    for (name, value) in [("directory_id", &directory_id), ("user_id", &user_id)] {
        if value.is_empty() {
            return Err(invalid(format!("{name} is required")));
        }
        if value.len() > MAX_ID_LEN {
            return Err(invalid(format!("{name} is longer than {MAX_ID_LEN} bytes")));
        }
    }
    Ok(UserRef { directory_id, user_id })
}

fn reason(reason: String) -> Result<String, Status> {
    if reason.len() > MAX_REASON_LEN {
        return Err(invalid(format!("reason is longer than {MAX_REASON_LEN} bytes")));
    }
    Ok(reason)
}

fn ttl(ttl: Option<prost_types::Duration>) -> Result<Duration, Status> {
    let ttl = ttl.ok_or_else(|| invalid("ttl is required"))?;
    let valid = (ttl.seconds > 0 && (0..1_000_000_000).contains(&ttl.nanos))
        || (ttl.seconds == 0 && (1..1_000_000_000).contains(&ttl.nanos));
    if !valid {
        return Err(invalid("ttl must be a positive duration"));
    }
    // Both parts are non-negative here, so the casts are exact.
    let ttl = Duration::new(ttl.seconds as u64, ttl.nanos as u32);
    if ttl > MAX_SESSION_TTL {
        return Err(invalid(format!(
            "ttl must be at most {} days",
            MAX_SESSION_TTL.as_secs() / 86_400
        )));
    }
    Ok(ttl)
}

fn attributes(attributes: HashMap<String, String>) -> Result<BTreeMap<String, String>, Status> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!("at most {MAX_ATTRIBUTES} attributes")));
    }
    if attributes.keys().any(String::is_empty) {
        return Err(invalid("attribute names must not be empty"));
    }
    let size: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ATTRIBUTES_SIZE {
        return Err(invalid(format!("attributes exceed {MAX_ATTRIBUTES_SIZE} bytes")));
    }
    Ok(attributes.into_iter().collect())
}

fn revocation_to_proto(revocation: &Revocation) -> idmesh_proto::v1::Revocation {
    idmesh_proto::v1::Revocation {
        reason: revocation.reason.clone(),
        revoked_at: Some(timestamp::to_proto(revocation.at)),
    }
}

fn session_to_proto(session: Session) -> idmesh_proto::v1::Session {
    idmesh_proto::v1::Session {
        directory_id: session.user.directory_id,
        user_id: session.user.user_id,
        attributes: session.attributes.into_iter().collect(),
        created: Some(timestamp::to_proto(session.created)),
        expires_at: Some(timestamp::to_proto(session.expires_at)),
        revocation: session.revocation.as_ref().map(revocation_to_proto),
        handle: session.id.handle(),
        id: session.id.to_string(),
    }
}

/// A session as listings show it: by its handle, without the id that is
/// its secret.
fn listed_session_to_proto(session: Session) -> idmesh_proto::v1::Session {
    idmesh_proto::v1::Session {
        id: String::new(),
        ..session_to_proto(session)
    }
}

fn event_to_proto(event: RevocationEvent) -> idmesh_proto::v1::RevocationEvent {
    idmesh_proto::v1::RevocationEvent {
        cursor: event.cursor.to_string(),
        directory_id: event.user.directory_id,
        user_id: event.user.user_id,
        session_id: event.session_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: event.revocation.reason,
        revoked_at: Some(timestamp::to_proto(event.revocation.at)),
    }
}

#[tonic::async_trait]
impl<S: SessionStore> SessionService for SessionApi<S> {
    async fn create_session(
        &self,
        request: Request<CreateSessionRequest>,
    ) -> Result<Response<idmesh_proto::v1::Session>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let user = user_ref(request.directory_id, request.user_id)?;
        let ttl = ttl(request.ttl)?;
        let attributes = attributes(request.attributes)?;
        let id = SessionId::generate(&user)
            .map_err(|err| idmesh_api::status::internal("session-service: session id", &err))?;
        let created = (self.clock)();
        let session = Session {
            id,
            user,
            attributes,
            created,
            expires_at: created + ttl,
            revocation: None,
        };
        let evicted = self.store.create(&session).await?;
        if evicted > 0 {
            metrics::counter!(crate::EVICTIONS_METRIC).increment(evicted);
            tracing::info!(
                directory_id = %session.user.directory_id,
                user_id = %session.user.user_id,
                evicted,
                "user at the session limit: sessions expiring first evicted"
            );
        }
        Ok(Response::new(session_to_proto(session)))
    }

    async fn check_session(
        &self,
        request: Request<CheckSessionRequest>,
    ) -> Result<Response<CheckSessionResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let request = request.into_inner();
        if request.session_id.is_empty() {
            return Err(invalid("session_id is required"));
        }
        let unknown = CheckSessionResponse {
            status: SessionStatus::Unknown.into(),
            session: None,
        };
        let Some(id) = SessionId::parse(&request.session_id) else {
            return Ok(Response::new(unknown));
        };
        let now = (self.clock)();
        let Some(session) = self.store.get(&id, now).await? else {
            return Ok(Response::new(unknown));
        };
        caller.require_directory(&session.user.directory_id)?;
        let status = match session.state(now) {
            SessionState::Valid => SessionStatus::Valid,
            SessionState::Revoked => SessionStatus::Revoked,
            SessionState::Expired => SessionStatus::Expired,
        };
        Ok(Response::new(CheckSessionResponse {
            status: status.into(),
            session: Some(session_to_proto(session)),
        }))
    }

    async fn check_token(&self, request: Request<CheckTokenRequest>) -> Result<Response<CheckTokenResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let user = user_ref(request.directory_id, request.user_id)?;
        let issued_at = request
            .issued_at
            .as_ref()
            .ok_or_else(|| invalid("issued_at is required"))
            .and_then(|ts| timestamp::from_proto(ts).ok_or_else(|| invalid("issued_at is out of range")))?;
        let watermark = self.store.watermark(&user, (self.clock)()).await?;
        let response = match watermark {
            Some(watermark) if revoked_by_watermark(issued_at, &watermark) => CheckTokenResponse {
                status: TokenStatus::Revoked.into(),
                revocation: Some(revocation_to_proto(&watermark)),
            },
            _ => CheckTokenResponse {
                status: TokenStatus::Valid.into(),
                revocation: None,
            },
        };
        Ok(Response::new(response))
    }

    async fn revoke_session(
        &self,
        request: Request<RevokeSessionRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        let limited = auth::caller(&request)?.clone();
        let request = request.into_inner();
        if request.session_id.is_empty() {
            return Err(invalid("session_id is required"));
        }
        let revocation = Revocation {
            reason: reason(request.reason)?,
            at: (self.clock)(),
        };
        let Some(id) = SessionId::parse(&request.session_id) else {
            return Err(not_found("no such session"));
        };
        // Only a directory-limited key pays for the extra read.
        if limited.directories.is_some()
            && let Some(session) = self.store.get(&id, revocation.at).await?
        {
            limited.require_directory(&session.user.directory_id)?;
        }
        self.revoke(&id, &revocation).await
    }

    async fn revoke_session_by_handle(
        &self,
        request: Request<RevokeSessionByHandleRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let user = user_ref(request.directory_id, request.user_id)?;
        let revocation = Revocation {
            reason: reason(request.reason)?,
            at: (self.clock)(),
        };
        let sessions = self.store.list_user_sessions(&user, revocation.at).await?;
        let Some(session) = sessions
            .into_iter()
            .find(|session| session.id.handle() == request.handle)
        else {
            return Err(not_found("no live session of this user has that handle"));
        };
        self.revoke(&session.id, &revocation).await
    }

    async fn revoke_user_sessions(
        &self,
        request: Request<RevokeUserSessionsRequest>,
    ) -> Result<Response<RevokeUserSessionsResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let user = user_ref(request.directory_id, request.user_id)?;
        let revocation = Revocation {
            reason: reason(request.reason)?,
            at: (self.clock)(),
        };
        let revoked = self.store.revoke_user(&user, &revocation).await?;
        Ok(Response::new(RevokeUserSessionsResponse {
            // A user never has 2^63 sessions.
            revoked_sessions: i64::try_from(revoked.revoked_sessions).unwrap_or(i64::MAX),
            revocation: Some(revocation_to_proto(&revoked.watermark)),
        }))
    }

    async fn list_user_sessions(
        &self,
        request: Request<ListUserSessionsRequest>,
    ) -> Result<Response<ListUserSessionsResponse>, Status> {
        auth::authorize(&request)?;
        let request = request.into_inner();
        let user = user_ref(request.directory_id, request.user_id)?;
        let sessions = self.store.list_user_sessions(&user, (self.clock)()).await?;
        Ok(Response::new(ListUserSessionsResponse {
            sessions: sessions.into_iter().map(listed_session_to_proto).collect(),
        }))
    }

    type WatchRevocationsStream = ReceiverStream<Result<WatchRevocationsResponse, Status>>;

    async fn watch_revocations(
        &self,
        request: Request<WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let directories = auth::caller(&request)?.directories.clone();
        let request = request.into_inner();
        let start = match request.cursor.as_str() {
            "" => None,
            cursor => Some(cursor.parse::<Cursor>().map_err(|err| invalid(err.to_string()))?),
        };
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        let watch = Watch {
            store: Arc::clone(&self.store),
            sender,
            directories,
        };
        tokio::spawn(watch.run(start, self.shutdown.clone()));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// One watcher's stream of revocations.
struct Watch<S> {
    store: Arc<S>,
    sender: mpsc::Sender<Result<WatchRevocationsResponse, Status>>,
    /// The directories whose revocations the watcher may see; `None` for
    /// every directory.
    directories: Option<BTreeSet<String>>,
}

/// Why a watch ended.
enum WatchEnd {
    /// The watcher hung up.
    Gone,
    /// The watch failed; the watcher is told why.
    Failed(Status),
}

impl From<StoreError> for WatchEnd {
    fn from(err: StoreError) -> WatchEnd {
        WatchEnd::Failed(err.into())
    }
}

impl<S: SessionStore> Watch<S> {
    async fn run(self, start: Option<Cursor>, shutdown: CancellationToken) {
        if let Err(WatchEnd::Failed(status)) = self.stream(start, shutdown).await {
            let _ = self.sender.send(Err(status)).await;
        }
    }

    /// Sends the log from `start` on, then follows the live feed. The feed
    /// is subscribed to before the log is read, so a revocation logged in
    /// between is in one or the other (or both: what the log already gave
    /// is skipped by cursor).
    async fn stream(&self, start: Option<Cursor>, shutdown: CancellationToken) -> Result<(), WatchEnd> {
        let mut live = self.store.subscribe().await?;
        let start = match start {
            Some(start) => start,
            None => self.store.log_end().await?,
        };
        let mut cursor = self.catch_up(start, true).await?;
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => {
                    return Err(WatchEnd::Failed(Status::unavailable(
                        "session-service is shutting down; watch again from the last cursor",
                    )));
                }
                () = self.sender.closed() => return Err(WatchEnd::Gone),
                received = live.recv() => received,
            };
            match received {
                Ok(event) if event.cursor > cursor => {
                    cursor = event.cursor;
                    self.send(vec![event], cursor, false).await?;
                }
                Ok(_) => {}
                // The watcher is slower than revocations come: the log has them.
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "a watcher fell behind; catching up from the log");
                    cursor = self.catch_up(cursor, false).await?;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(WatchEnd::Failed(Status::unavailable("the revocation feed closed")));
                }
            }
        }
    }

    /// Sends everything the log holds after `cursor`, in batches; with
    /// `first`, sends one message even if there is nothing, so the watcher
    /// learns where it stands. Returns the cursor of the last event sent.
    async fn catch_up(&self, mut cursor: Cursor, mut first: bool) -> Result<Cursor, WatchEnd> {
        loop {
            let events = self.store.read_log(cursor, WATCH_BATCH).await?;
            let full = events.len() == WATCH_BATCH;
            if let Some(last) = events.last() {
                cursor = last.cursor;
            }
            self.send(events, cursor, first).await?;
            first = false;
            if !full {
                return Ok(cursor);
            }
        }
    }

    /// Sends the events of `events` the watcher may see, unless there are
    /// none and the message is not the `first`.
    async fn send(&self, events: Vec<RevocationEvent>, cursor: Cursor, first: bool) -> Result<(), WatchEnd> {
        let events: Vec<_> = events
            .into_iter()
            .filter(|event| {
                self.directories
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(&event.user.directory_id))
            })
            .map(event_to_proto)
            .collect();
        if events.is_empty() && !first {
            return Ok(());
        }
        let message = WatchRevocationsResponse {
            events,
            cursor: cursor.to_string(),
        };
        self.sender.send(Ok(message)).await.map_err(|_| WatchEnd::Gone)
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::store::LIVE_BUFFER;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_watcher_that_falls_behind_the_live_feed_catches_up_from_the_log() {
        let now = OffsetDateTime::now_utc();
        let store = Arc::new(MemoryStore::new(
            10 * LIVE_BUFFER,
            crate::DEFAULT_MAX_SESSIONS_PER_USER,
            now,
        ));
        let (sender, mut receiver) = mpsc::channel(1);
        let watch = Watch {
            store: Arc::clone(&store),
            sender,
            directories: None,
        };
        tokio::spawn(watch.run(None, CancellationToken::new()));
        let first = receiver.recv().await.expect("a first message").expect("not an error");
        assert!(first.events.is_empty());

        // The test runtime has one thread: the watch cannot run until the
        // test awaits, so the live feed overflows and the watch lags.
        let user = UserRef {
            directory_id: "directory".into(),
            user_id: "user".into(),
        };
        let revocations = 2 * LIVE_BUFFER + 1;
        for i in 0..revocations {
            let revocation = Revocation {
                reason: i.to_string(),
                at: now,
            };
            store.revoke_user(&user, &revocation).await.expect("revoked");
        }
        let mut reasons = Vec::new();
        while reasons.len() < revocations {
            let message = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
                .await
                .expect("every revocation within 10 s")
                .expect("a message")
                .expect("not an error");
            reasons.extend(message.events.into_iter().map(|event| event.reason));
        }
        let expected: Vec<String> = (0..revocations).map(|i| i.to_string()).collect();
        assert_eq!(reasons, expected);
    }
}
