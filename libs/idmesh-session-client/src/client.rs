//! The client: a gRPC channel to session-service, the local view, and the
//! task that keeps the view fed from `WatchRevocations`.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use idmesh_api::timestamp;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_proto::v1::{CheckSessionRequest, CheckTokenRequest, SessionStatus, TokenStatus};
use idmesh_runtime::auth::{AuthChannel, Credential};
use idmesh_runtime::clock::{self, Clock};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::Status;
use tonic::transport::Endpoint;

use crate::Error;
use crate::follow::follow_revocations;
use crate::model::{Revocation, Session, SessionCheck, TokenCheck, UserRef};
use crate::view::{Limits, View};

/// How a [`SessionClient`] behaves. `Options::default()` suits most
/// services.
#[derive(Clone)]
pub struct Options {
    /// Most sessions whose answers are kept (default 100,000); when full,
    /// the session expiring soonest is dropped.
    pub max_cached_sessions: usize,
    /// Most users whose revocation watermarks are kept (default 100,000);
    /// when full, the one kept longest is dropped.
    pub max_cached_users: usize,
    /// Most revocations from the watch stream kept (default 100,000, what
    /// session-service's log keeps); beyond it, or after 30 days, the
    /// oldest is forgotten and answers asked before it are asked again.
    pub max_revocations: usize,
    /// How long a check over the network may take before it fails with
    /// [`Error::Unavailable`] (default 2 s).
    pub request_timeout: Duration,
    /// With [`SessionClient::connect`]: how often the connection is pinged
    /// (HTTP/2 keepalive, default 2 s) and how long a ping may go
    /// unanswered (default 3 s) before the connection counts as broken.
    /// Together they bound how long a silently broken connection goes
    /// unnoticed.
    pub keepalive_interval: Duration,
    /// See [`keepalive_interval`](Options::keepalive_interval).
    pub keepalive_timeout: Duration,
    /// How long to wait before watching again after the watch failed
    /// (default 100 ms), doubling on each failure in a row up to
    /// [`max_reconnect_delay`](Options::max_reconnect_delay) (default 5 s).
    pub reconnect_delay: Duration,
    /// See [`reconnect_delay`](Options::reconnect_delay).
    pub max_reconnect_delay: Duration,
    /// Where the time comes from, to tell expired sessions and forget old
    /// revocations (default: the system clock).
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_cached_sessions: 100_000,
            max_cached_users: 100_000,
            max_revocations: 100_000,
            request_timeout: Duration::from_secs(2),
            keepalive_interval: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(3),
            reconnect_delay: Duration::from_millis(100),
            max_reconnect_delay: Duration::from_secs(5),
            clock: clock::system(),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("max_cached_sessions", &self.max_cached_sessions)
            .field("max_cached_users", &self.max_cached_users)
            .field("max_revocations", &self.max_revocations)
            .field("request_timeout", &self.request_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .finish_non_exhaustive()
    }
}

/// A session-service client with a local revocation view. Cheap to clone:
/// clones share the view, the channel and the watch, which stops when the
/// last clone is dropped. See the [crate documentation](crate) for what its
/// answers guarantee.
#[derive(Debug, Clone)]
pub struct SessionClient {
    shared: Arc<Shared>,
    _watch: Arc<DropGuard>,
}

/// What the clients and the watch share.
#[derive(Debug)]
pub(crate) struct Shared {
    view: RwLock<View>,
    pub(crate) grpc: SessionServiceClient<AuthChannel>,
    /// Mirrors the view's synced flag, for [`SessionClient::synced`].
    synced: watch::Sender<bool>,
    pub(crate) options: Options,
}

impl Shared {
    pub(crate) fn view(&self) -> RwLockReadGuard<'_, View> {
        // A panic while holding the lock would be a bug in view.rs; the
        // view is still consistent enough to fail closed, since nothing
        // there marks a session valid without a complete update.
        self.view.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn view_mut(&self) -> RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        (self.options.clock)()
    }

    pub(crate) fn set_synced(&self, synced: bool) {
        self.view_mut().set_synced(synced);
        self.synced.send_replace(synced);
    }

    /// Runs a call, failing with DEADLINE_EXCEEDED after the request timeout.
    pub(crate) async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.options.request_timeout, call).await {
            Ok(response) => Ok(response?.into_inner()),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "session-service did not answer within {:?}",
                self.options.request_timeout
            ))),
        }
    }
}

impl SessionClient {
    /// A client of the session-service at `addr` (`host:port` or
    /// `http://host:port`), with HTTP/2 keepalive as `options` say. Nothing
    /// connects yet: the watch connects in the background and checks fail
    /// with [`Error::Unavailable`] while the service is unreachable. Every
    /// call carries `credential`, an API key with `sessions:check` and
    /// `revocations:watch` (and whatever else you call through
    /// [`SessionClient::grpc`]).
    ///
    /// Must be called within a Tokio runtime: it starts the watch.
    pub fn connect(addr: &str, credential: Credential, options: Options) -> Result<SessionClient, Error> {
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Endpoint::from_shared(uri).map_err(|source| Error::Address {
            addr: addr.to_owned(),
            source,
        })?;
        let channel = endpoint
            .connect_timeout(options.request_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(options.keepalive_interval)
            .keep_alive_timeout(options.keepalive_timeout)
            .keep_alive_while_idle(true)
            .connect_lazy();
        Ok(SessionClient::with_channel(
            AuthChannel::new(channel, credential),
            options,
        ))
    }

    /// A client over a channel of your own, calling with its credential
    /// ([`AuthChannel::new`]). Give it HTTP/2 keepalive
    /// (`Endpoint::http2_keep_alive_interval`, `keep_alive_while_idle`):
    /// without it, a silently broken connection is noticed only when the
    /// operating system gives up on it, and until then local answers can
    /// miss revocations.
    ///
    /// Must be called within a Tokio runtime: it starts the watch.
    pub fn with_channel(channel: AuthChannel, options: Options) -> SessionClient {
        let shared = Arc::new(Shared {
            view: RwLock::new(View::new(Limits {
                sessions: options.max_cached_sessions,
                users: options.max_cached_users,
                revocations: options.max_revocations,
            })),
            grpc: idmesh_runtime::with_message_limits!(SessionServiceClient::new(channel)),
            synced: watch::Sender::new(false),
            options,
        });
        let stop = CancellationToken::new();
        tokio::spawn(follow_revocations(Arc::clone(&shared), stop.clone()));
        SessionClient {
            shared,
            _watch: Arc::new(stop.drop_guard()),
        }
    }

    /// The session's state, from the local view when it can answer (no
    /// network), else from session-service, whose answer the view keeps.
    ///
    /// Fails closed: an error means the session's state is not known, and
    /// the session must not be accepted.
    pub async fn check_session(&self, session_id: &str) -> Result<SessionCheck, Error> {
        if let Some(check) = self.check_session_locally(session_id) {
            return Ok(check);
        }
        let asked = self.shared.view().position();
        let mut grpc = self.shared.grpc.clone();
        let response = self
            .shared
            .call(grpc.check_session(CheckSessionRequest {
                session_id: session_id.to_owned(),
            }))
            .await
            .map_err(Error::from_status)?;
        let (answer, expires_at) = match response.status() {
            SessionStatus::Valid => {
                let session = session_from_proto(response.session)?;
                let expires_at = session.expires_at;
                (SessionCheck::Valid(Arc::new(session)), Some(expires_at))
            }
            SessionStatus::Revoked => {
                let session = response
                    .session
                    .ok_or_else(|| Error::Protocol("a REVOKED answer without its session".into()))?;
                let revocation = session
                    .revocation
                    .ok_or_else(|| Error::Protocol("a REVOKED session without its revocation".into()))?;
                let revocation = revocation_from_proto(revocation.reason, revocation.revoked_at.as_ref())?;
                let expires_at = session.expires_at.as_ref().and_then(timestamp::from_proto);
                (SessionCheck::Revoked(revocation), expires_at)
            }
            SessionStatus::Expired => {
                let expires_at = response
                    .session
                    .and_then(|session| session.expires_at)
                    .as_ref()
                    .and_then(timestamp::from_proto);
                (SessionCheck::Expired, expires_at)
            }
            SessionStatus::Unknown => (SessionCheck::Unknown, None),
            SessionStatus::Unspecified => {
                return Err(Error::Protocol("CheckSession answered no status".into()));
            }
        };
        let now = self.shared.now();
        Ok(self
            .shared
            .view_mut()
            .remember_session(session_id, answer, expires_at, asked, now))
    }

    /// The session's state if the local view can tell without the network:
    /// revoked (as the watch stream said), or what session-service answered
    /// earlier combined with every revocation since, while the watch is
    /// synced. `None` otherwise; then [`check_session`](Self::check_session)
    /// asks session-service.
    pub fn check_session_locally(&self, session_id: &str) -> Option<SessionCheck> {
        let now = self.shared.now();
        self.shared.view().check_session(session_id, now)
    }

    /// Whether a stateless token of `user` issued at `issued_at` (a JWT's
    /// `iat`) is revoked by the user's watermark: from the local view when
    /// it can answer, else by asking session-service for the user's
    /// watermark, which the view keeps for the user's later tokens.
    ///
    /// Fails closed, like [`check_session`](Self::check_session). The
    /// token's own expiry is yours to check.
    pub async fn check_token(&self, user: &UserRef, issued_at: OffsetDateTime) -> Result<TokenCheck, Error> {
        if let Some(check) = self.check_token_locally(user, issued_at) {
            return Ok(check);
        }
        let asked = self.shared.view().position();
        let mut grpc = self.shared.grpc.clone();
        // A token issued at the epoch is revoked by any watermark there is,
        // so the answer says whether the user has one, and which.
        let response = self
            .shared
            .call(grpc.check_token(CheckTokenRequest {
                directory_id: user.directory_id.clone(),
                user_id: user.user_id.clone(),
                issued_at: Some(timestamp::to_proto(OffsetDateTime::UNIX_EPOCH)),
            }))
            .await
            .map_err(Error::from_status)?;
        let watermark = match response.status() {
            TokenStatus::Valid => None,
            TokenStatus::Revoked => {
                let revocation = response
                    .revocation
                    .ok_or_else(|| Error::Protocol("a REVOKED token without the watermark".into()))?;
                Some(revocation_from_proto(
                    revocation.reason,
                    revocation.revoked_at.as_ref(),
                )?)
            }
            TokenStatus::Unspecified => return Err(Error::Protocol("CheckToken answered no status".into())),
        };
        let now = self.shared.now();
        Ok(self
            .shared
            .view_mut()
            .remember_user(user, watermark, asked, issued_at, now))
    }

    /// Whether a token of `user` issued at `issued_at` is revoked, if the
    /// local view can tell without the network; `None` otherwise.
    pub fn check_token_locally(&self, user: &UserRef, issued_at: OffsetDateTime) -> Option<TokenCheck> {
        self.shared.view().check_token(user, issued_at)
    }

    /// Whether the watch is connected and has applied every revocation
    /// logged before it (re)connected: only then are cached answers
    /// "valid" given locally.
    pub fn is_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits until the watch is synced (see [`is_synced`](Self::is_synced)),
    /// e.g. before a service reports itself ready. Never returns while
    /// session-service stays unreachable: put a timeout around it.
    pub async fn synced(&self) {
        let mut synced = self.shared.synced.subscribe();
        // The sender lives in `self.shared`, so it cannot close here.
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// The plain gRPC client on the same channel, for the calls that change
    /// things (CreateSession, RevokeSession, RevokeUserSessions, ...).
    pub fn grpc(&self) -> SessionServiceClient<AuthChannel> {
        self.shared.grpc.clone()
    }
}

fn session_from_proto(session: Option<idmesh_proto::v1::Session>) -> Result<Session, Error> {
    let session = session.ok_or_else(|| Error::Protocol("a VALID answer without its session".into()))?;
    let time = |ts: Option<prost_types::Timestamp>, what: &str| {
        ts.as_ref()
            .and_then(timestamp::from_proto)
            .ok_or_else(|| Error::Protocol(format!("a session without a valid {what}")))
    };
    Ok(Session {
        created: time(session.created, "created")?,
        expires_at: time(session.expires_at, "expires_at")?,
        user: UserRef::new(session.directory_id, session.user_id),
        attributes: session.attributes.into_iter().collect(),
        id: session.id,
    })
}

/// A revocation from its protobuf parts; `revoked_at` is required.
pub(crate) fn revocation_from_proto(
    reason: String,
    revoked_at: Option<&prost_types::Timestamp>,
) -> Result<Revocation, Error> {
    let revoked_at = revoked_at
        .and_then(timestamp::from_proto)
        .ok_or_else(|| Error::Protocol("a revocation without a valid revoked_at".into()))?;
    Ok(Revocation { reason, revoked_at })
}
