//! Where sessions, revocation watermarks and the revocation log live: Redis
//! (one node or a cluster) in production, or an in-process store for a
//! single process. Both behave the same; the gRPC layer is generic over them.

pub mod memory;
pub mod redis;

use std::future::Future;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::model::{Cursor, Revocation, RevocationEvent, Session, SessionId, UserRef};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store is unreachable or did not answer in time.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// Revocations after this cursor were already dropped from the bounded log.
    #[error("revocations after {0} are no longer in the log")]
    CursorTooOld(Cursor),
    /// The cursor names a revocation that has not happened yet.
    #[error("cursor {0} is ahead of the revocation log")]
    CursorAhead(Cursor),
    /// Anything else: stored data this code did not write, or a bug.
    #[error("session store: {0}")]
    Internal(String),
}

/// What revoking one session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The session is revoked (by this call, or already before it: its
    /// revocation is then the first one).
    Revoked(Session),
    /// No such session, or it is forgotten.
    Unknown,
    /// The session expired before it could be revoked.
    Expired,
}

/// What revoking every session of a user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRevocation {
    /// How many live sessions were revoked.
    pub revoked_sessions: u64,
    /// The user's watermark now. Never lowered: if another revocation
    /// already set a later one (clocks differ between replicas), it stays;
    /// one at the same instant takes this revocation's reason.
    pub watermark: Revocation,
}

/// Storage for sessions. Every revocation is appended to a log that
/// [`read_log`](SessionStore::read_log) reads and
/// [`subscribe`](SessionStore::subscribe) follows, including revocations
/// made by other processes sharing the store.
///
/// `now` comes from the caller's clock, so expiry is testable without
/// sleeping; what a store forgets on its own (Redis key TTLs) it forgets
/// only after it no longer matters.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session. If its user already has as many live sessions
    /// as the store allows, those expiring first are evicted to make room:
    /// revoked with [`SESSION_LIMIT_REASON`](crate::model::SESSION_LIMIT_REASON)
    /// and logged like any revocation. Returns how many were evicted.
    fn create(&self, session: &Session) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The session, while it is remembered (until
    /// [`ENDED_SESSION_RETENTION`](crate::model::ENDED_SESSION_RETENTION)
    /// after it expires).
    fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// The user's revocation watermark, if the user was revoked within
    /// [`MAX_SESSION_TTL`](crate::model::MAX_SESSION_TTL).
    fn watermark(
        &self,
        user: &UserRef,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Revocation>, StoreError>> + Send;

    /// Revokes one session at `revocation.at` and logs it.
    fn revoke_session(
        &self,
        id: &SessionId,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<RevokeOutcome, StoreError>> + Send;

    /// Revokes every live session of `user` and raises the user's watermark
    /// to `revocation.at`, then logs it. The watermark rises in one step, and
    /// from then on every session created before it is revoked, so no
    /// session of the user can be created in between and survive.
    fn revoke_user(
        &self,
        user: &UserRef,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<UserRevocation, StoreError>> + Send;

    /// The user's live sessions at `now`, the one expiring first first.
    fn list_user_sessions(
        &self,
        user: &UserRef,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Up to `limit` logged revocations after `after`, in order.
    fn read_log(
        &self,
        after: Cursor,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RevocationEvent>, StoreError>> + Send;

    /// The cursor of the newest logged revocation: where a watch "from now"
    /// starts.
    fn log_end(&self) -> impl Future<Output = Result<Cursor, StoreError>> + Send;

    /// Revocations from now on, as they are logged. A receiver that falls
    /// behind gets `Lagged` and catches up with [`read_log`](SessionStore::read_log).
    ///
    /// Subscribe before reading the log: every revocation logged after a
    /// successful subscribe reaches the receiver, so what a read of the log
    /// that follows does not return, the receiver gets.
    fn subscribe(&self) -> impl Future<Output = Result<broadcast::Receiver<RevocationEvent>, StoreError>> + Send;

    /// Whether the store answers right now: what the service's health
    /// reports, so that a probe takes a replica cut off from Redis out of
    /// rotation.
    fn is_reachable(&self) -> impl Future<Output = bool> + Send;
}

/// How many revocations the live feed of a store buffers for a slow watcher
/// before the watcher must catch up from the log.
pub(crate) const LIVE_BUFFER: usize = 1024;
