//! The in-process store: the embedded default when no Redis is configured.
//!
//! It behaves like the Redis store, but only for the process that holds it:
//! a second replica would have its own sessions and its own revocation log,
//! and a restart forgets everything (a watcher resuming from before the
//! restart is told its cursor is too old).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{LIVE_BUFFER, RevokeOutcome, SessionStore, StoreError, UserRevocation};
use crate::model::{
    Cursor, ENDED_SESSION_RETENTION, MAX_SESSION_TTL, Revocation, RevocationEvent, SESSION_LIMIT_REASON, Session,
    SessionId, SessionState, UserRef,
};

/// Sessions, watermarks and the revocation log of one process.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    max_sessions_per_user: usize,
    live: broadcast::Sender<RevocationEvent>,
}

#[derive(Debug)]
struct State {
    sessions: HashMap<SessionId, Session>,
    users: HashMap<UserRef, UserState>,
    /// What to forget when, oldest first: the in-process stand-in for Redis TTLs.
    forget: BTreeSet<(OffsetDateTime, Forget)>,
    log: VecDeque<RevocationEvent>,
    log_capacity: usize,
    /// The cursor of the newest revocation logged.
    log_end: Cursor,
    /// The newest cursor no longer in the log: this process's start, or the
    /// last revocation dropped to keep the log within its capacity.
    log_dropped: Cursor,
}

#[derive(Debug, Default)]
struct UserState {
    /// Sessions neither revoked nor forgotten (some may have expired).
    sessions: BTreeSet<SessionId>,
    watermark: Option<Revocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Forget {
    Session(SessionId),
    Watermark(UserRef),
}

impl MemoryStore {
    /// An empty store whose revocation log keeps the last `log_capacity`
    /// revocations, and which keeps at most `max_sessions_per_user` live
    /// sessions per user; `now` is where its log starts.
    pub fn new(log_capacity: usize, max_sessions_per_user: usize, now: OffsetDateTime) -> MemoryStore {
        let start = Cursor {
            millis: unix_millis(now),
            seq: 0,
        };
        MemoryStore {
            state: Mutex::new(State {
                sessions: HashMap::new(),
                users: HashMap::new(),
                forget: BTreeSet::new(),
                log: VecDeque::new(),
                log_capacity: log_capacity.max(1),
                log_end: start,
                log_dropped: start,
            }),
            max_sessions_per_user: max_sessions_per_user.max(1),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock panics short of a bug, and a store with a
        // half-made change is still better than none.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, with everything due at `now` forgotten.
    fn state_at(&self, now: OffsetDateTime) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.forget_until(now);
        state
    }
}

impl State {
    fn forget_until(&mut self, now: OffsetDateTime) {
        while let Some((at, what)) = self.forget.first().cloned() {
            if at > now {
                break;
            }
            self.forget.pop_first();
            match what {
                Forget::Session(id) => {
                    if let Some(session) = self.sessions.remove(&id)
                        && let Some(user) = self.users.get_mut(&session.user)
                    {
                        user.sessions.remove(&id);
                        if user.sessions.is_empty() && user.watermark.is_none() {
                            self.users.remove(&session.user);
                        }
                    }
                }
                Forget::Watermark(user_ref) => {
                    if let Some(user) = self.users.get_mut(&user_ref)
                        && user.watermark.as_ref().is_some_and(|w| w.at + MAX_SESSION_TTL <= now)
                    {
                        user.watermark = None;
                        if user.sessions.is_empty() {
                            self.users.remove(&user_ref);
                        }
                    }
                }
            }
        }
    }

    /// Appends a revocation to the log, dropping the oldest beyond capacity.
    fn log(&mut self, user: &UserRef, session_id: Option<&SessionId>, revocation: &Revocation) -> RevocationEvent {
        let millis = unix_millis(revocation.at);
        // Stream ids never go backwards, even if the clock does.
        self.log_end = if millis > self.log_end.millis {
            Cursor { millis, seq: 0 }
        } else {
            Cursor {
                millis: self.log_end.millis,
                seq: self.log_end.seq + 1,
            }
        };
        let event = RevocationEvent {
            cursor: self.log_end,
            user: user.clone(),
            session_id: session_id.cloned(),
            revocation: revocation.clone(),
        };
        self.log.push_back(event.clone());
        while self.log.len() > self.log_capacity {
            if let Some(dropped) = self.log.pop_front() {
                self.log_dropped = dropped.cursor;
            }
        }
        event
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<u64, StoreError> {
        let now = session.created;
        let mut state = self.state_at(now);
        let state = &mut *state;
        let mut live: Vec<(OffsetDateTime, SessionId)> = state
            .users
            .get(&session.user)
            .into_iter()
            .flat_map(|user| &user.sessions)
            .filter_map(|id| state.sessions.get(id))
            .filter(|session| session.state(now) == SessionState::Valid)
            .map(|session| (session.expires_at, session.id.clone()))
            .collect();
        live.sort();
        let excess = (live.len() + 1).saturating_sub(self.max_sessions_per_user);
        let eviction = Revocation {
            reason: SESSION_LIMIT_REASON.to_owned(),
            at: now,
        };
        for (_, id) in live.into_iter().take(excess) {
            if let Some(evicted) = state.sessions.get_mut(&id) {
                evicted.revocation = Some(eviction.clone());
            }
            if let Some(user) = state.users.get_mut(&session.user) {
                user.sessions.remove(&id);
            }
            let event = state.log(&session.user, Some(&id), &eviction);
            let _ = self.live.send(event);
        }
        state.forget.insert((
            session.expires_at + ENDED_SESSION_RETENTION,
            Forget::Session(session.id.clone()),
        ));
        state
            .users
            .entry(session.user.clone())
            .or_default()
            .sessions
            .insert(session.id.clone());
        state.sessions.insert(session.id.clone(), session.clone());
        Ok(u64::try_from(excess).unwrap_or(u64::MAX))
    }

    async fn get(&self, id: &SessionId, now: OffsetDateTime) -> Result<Option<Session>, StoreError> {
        Ok(self.state_at(now).sessions.get(id).cloned())
    }

    async fn watermark(&self, user: &UserRef, now: OffsetDateTime) -> Result<Option<Revocation>, StoreError> {
        Ok(self
            .state_at(now)
            .users
            .get(user)
            .and_then(|user| user.watermark.clone()))
    }

    async fn revoke_session(&self, id: &SessionId, revocation: &Revocation) -> Result<RevokeOutcome, StoreError> {
        let mut state = self.state_at(revocation.at);
        let Some(session) = state.sessions.get_mut(id) else {
            return Ok(RevokeOutcome::Unknown);
        };
        match session.state(revocation.at) {
            SessionState::Expired => return Ok(RevokeOutcome::Expired),
            SessionState::Valid => session.revocation = Some(revocation.clone()),
            SessionState::Revoked => {}
        }
        let session = session.clone();
        if let Some(user) = state.users.get_mut(&session.user) {
            user.sessions.remove(id);
        }
        let first = session.revocation.clone().unwrap_or_else(|| revocation.clone());
        let event = state.log(&session.user, Some(id), &first);
        // Sent under the lock, so the live feed is in log order. No
        // receivers is fine: nobody is watching.
        let _ = self.live.send(event);
        Ok(RevokeOutcome::Revoked(session))
    }

    async fn revoke_user(&self, user: &UserRef, revocation: &Revocation) -> Result<UserRevocation, StoreError> {
        let now = revocation.at;
        let mut state = self.state_at(now);
        let state = &mut *state;
        let user_state = state.users.entry(user.clone()).or_default();
        let mut revoked_sessions = 0;
        for id in std::mem::take(&mut user_state.sessions) {
            if let Some(session) = state.sessions.get_mut(&id)
                && session.state(now) == SessionState::Valid
            {
                session.revocation = Some(revocation.clone());
                revoked_sessions += 1;
            }
        }
        let watermark = match &user_state.watermark {
            Some(existing) if existing.at > now => existing.clone(),
            _ => revocation.clone(),
        };
        user_state.watermark = Some(watermark.clone());
        state
            .forget
            .insert((watermark.at + MAX_SESSION_TTL, Forget::Watermark(user.clone())));
        let event = state.log(user, None, &watermark);
        let _ = self.live.send(event);
        Ok(UserRevocation {
            revoked_sessions,
            watermark,
        })
    }

    async fn list_user_sessions(&self, user: &UserRef, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let state = self.state_at(now);
        let mut sessions: Vec<Session> = state
            .users
            .get(user)
            .into_iter()
            .flat_map(|user| &user.sessions)
            .filter_map(|id| state.sessions.get(id))
            .filter(|session| session.state(now) == SessionState::Valid)
            .cloned()
            .collect();
        sessions.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
        Ok(sessions)
    }

    async fn read_log(&self, after: Cursor, limit: usize) -> Result<Vec<RevocationEvent>, StoreError> {
        let state = self.lock();
        if after > state.log_end {
            return Err(StoreError::CursorAhead(after));
        }
        if after < state.log_dropped {
            return Err(StoreError::CursorTooOld(after));
        }
        let first = state.log.partition_point(|event| event.cursor <= after);
        Ok(state.log.range(first..).take(limit).cloned().collect())
    }

    async fn log_end(&self) -> Result<Cursor, StoreError> {
        Ok(self.lock().log_end)
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<RevocationEvent>, StoreError> {
        Ok(self.live.subscribe())
    }

    async fn is_reachable(&self) -> bool {
        true
    }
}
