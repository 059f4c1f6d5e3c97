//! The local revocation view: the revocations the watch stream delivered,
//! and what session-service answered about sessions and users, combined so
//! that a repeated check needs no network round trip. No I/O; time is a
//! parameter.
//!
//! # Why a cached answer stays right
//!
//! Each watch message is applied in order and every revocation it carries
//! gets the next local number. An answer from session-service is kept with
//! the number of revocations applied when the question was sent (its
//! `as_of`). Session-service changes a session or watermark first and logs
//! the revocation after; so a revocation the answer does not reflect was
//! logged after the question was sent, reaches the view after that, and
//! has a number above `as_of`. A cached answer is therefore combined with
//! every revocation numbered above its `as_of` (conservatively: a user
//! revocation numbered above it revokes a cached session of that user even
//! if the session was created just after it).
//!
//! That holds only for revocations the view still remembers and for
//! answers asked after the watch began (both within one *epoch*, the span
//! of one unbroken log position). Forgetting a revocation (to bound
//! memory) raises a floor, and answers asked before the floor are no
//! longer trusted; a full resynchronisation starts a new epoch and forgets
//! every answer.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::model::{Revocation, Session, SessionCheck, TokenCheck, UserRef};

/// The longest a session may live at session-service (`CreateSession`
/// takes a TTL of at most 30 days), which also keeps a user's watermark that
/// long: a revocation older than this concerns no live session.
pub(crate) const MAX_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long an ended session's answer (revoked or expired) is kept after
/// the session's expiry, so that replaying it does not cost a round trip
/// each time.
const ENDED_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// How much the view may hold; each at least 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Sessions whose answers are cached.
    pub sessions: usize,
    /// Users whose watermarks are cached.
    pub users: usize,
    /// Revocations remembered from the watch stream.
    pub revocations: usize,
}

/// Where the view stood when a question went to session-service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    epoch: u64,
    applied: u64,
}

/// One revocation from the watch stream.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub user: UserRef,
    /// `None` when every session of the user was revoked and the
    /// watermark raised.
    pub session_id: Option<String>,
    pub revocation: Revocation,
}

#[derive(Debug)]
pub(crate) struct View {
    limits: Limits,
    /// Incremented by every full resynchronisation.
    epoch: u64,
    /// How many revocations this epoch has applied; `None` until its first
    /// watch message, before which nothing may be cached.
    applied: Option<u64>,
    /// Whether the watch is connected and caught up: only then may a cached
    /// answer say "valid".
    synced: bool,
    /// The number of the newest revocation forgotten; cached answers asked
    /// before it are not trusted.
    floor: u64,
    revoked_sessions: HashMap<String, SeenSession>,
    revoked_users: HashMap<UserRef, SeenUser>,
    /// The revocations above, oldest first, for forgetting them.
    seen: VecDeque<Seen>,
    sessions: HashMap<String, KnownSession>,
    /// The cached sessions by expiry, soonest first, for evicting them.
    session_expiry: BTreeSet<(OffsetDateTime, String)>,
    users: HashMap<UserRef, KnownUser>,
    /// The cached users by when they were cached, oldest first.
    user_age: BTreeMap<u64, UserRef>,
    next_user_age: u64,
}

#[derive(Debug)]
struct SeenSession {
    /// The newest revocation of the session.
    number: u64,
    /// Its first revocation, which session-service keeps.
    revocation: Revocation,
}

#[derive(Debug)]
struct SeenUser {
    /// The newest revocation of all the user's sessions.
    number: u64,
    /// The highest watermark seen; watermarks are never lowered.
    watermark: Revocation,
}

#[derive(Debug)]
struct Seen {
    number: u64,
    revoked_at: OffsetDateTime,
    what: Revoked,
}

#[derive(Debug)]
enum Revoked {
    Session(String),
    User(UserRef),
}

#[derive(Debug)]
struct KnownSession {
    expires_at: OffsetDateTime,
    state: KnownState,
}

#[derive(Debug)]
enum KnownState {
    /// Valid when asked, with the revocations applied at the time.
    Live { session: Arc<Session>, as_of: u64 },
    /// Revoked or expired: final.
    Ended(SessionCheck),
}

#[derive(Debug)]
struct KnownUser {
    watermark: Option<Revocation>,
    as_of: u64,
    age: u64,
}

impl View {
    pub(crate) fn new(limits: Limits) -> View {
        View {
            limits: Limits {
                sessions: limits.sessions.max(1),
                users: limits.users.max(1),
                revocations: limits.revocations.max(1),
            },
            epoch: 0,
            applied: None,
            synced: false,
            floor: 0,
            revoked_sessions: HashMap::new(),
            revoked_users: HashMap::new(),
            seen: VecDeque::new(),
            sessions: HashMap::new(),
            session_expiry: BTreeSet::new(),
            users: HashMap::new(),
            user_age: BTreeMap::new(),
            next_user_age: 0,
        }
    }

    /// Where the view stands, to pass back with the answer to a question
    /// sent now; `None` while the answer could not be cached.
    pub(crate) fn position(&self) -> Option<Position> {
        self.applied.map(|applied| Position {
            epoch: self.epoch,
            applied,
        })
    }

    pub(crate) fn set_synced(&mut self, synced: bool) {
        self.synced = synced;
    }

    /// Forgets everything, for a watch that starts over at the end of the
    /// log: what happened before it will never be delivered.
    pub(crate) fn restart(&mut self) {
        *self = View {
            epoch: self.epoch + 1,
            ..View::new(self.limits)
        };
    }

    /// Applies one watch message's revocations, in order (possibly none:
    /// a first message), then forgets what is due at `now`.
    pub(crate) fn apply(&mut self, events: impl IntoIterator<Item = Event>, now: OffsetDateTime) {
        let mut applied = self.applied.unwrap_or(0);
        for event in events {
            applied += 1;
            let revoked_at = event.revocation.revoked_at;
            let what = match event.session_id {
                Some(id) => {
                    self.revoked_sessions
                        .entry(id.clone())
                        .and_modify(|seen| seen.number = applied)
                        .or_insert(SeenSession {
                            number: applied,
                            revocation: event.revocation,
                        });
                    Revoked::Session(id)
                }
                None => {
                    let watermark = event.revocation;
                    self.revoked_users
                        .entry(event.user.clone())
                        .and_modify(|seen| {
                            seen.number = applied;
                            if watermark.revoked_at >= seen.watermark.revoked_at {
                                seen.watermark = watermark.clone();
                            }
                        })
                        .or_insert(SeenUser {
                            number: applied,
                            watermark,
                        });
                    Revoked::User(event.user)
                }
            };
            self.seen.push_back(Seen {
                number: applied,
                revoked_at,
                what,
            });
        }
        self.applied = Some(applied);
        self.forget(now);
    }

    /// Forgets revocations beyond the limit or older than any session can
    /// live, and answers about sessions that ended a while ago.
    fn forget(&mut self, now: OffsetDateTime) {
        while let Some(oldest) = self.seen.front() {
            let too_many = self.seen.len() > self.limits.revocations;
            let too_old = oldest.revoked_at + MAX_SESSION_TTL <= now;
            if !too_many && !too_old {
                break;
            }
            let Some(oldest) = self.seen.pop_front() else { break };
            self.floor = oldest.number;
            match oldest.what {
                Revoked::Session(id) => {
                    if self
                        .revoked_sessions
                        .get(&id)
                        .is_some_and(|s| s.number == oldest.number)
                    {
                        self.revoked_sessions.remove(&id);
                    }
                }
                Revoked::User(user) => {
                    if self.revoked_users.get(&user).is_some_and(|u| u.number == oldest.number) {
                        self.revoked_users.remove(&user);
                    }
                }
            }
        }
        while let Some((expires_at, _)) = self.session_expiry.first() {
            if *expires_at + ENDED_RETENTION > now {
                break;
            }
            if let Some((_, id)) = self.session_expiry.pop_first() {
                self.sessions.remove(&id);
            }
        }
    }

    /// The session's state from what the view holds, or `None` when only
    /// session-service can say.
    pub(crate) fn check_session(&self, id: &str, now: OffsetDateTime) -> Option<SessionCheck> {
        if let Some(seen) = self.revoked_sessions.get(id) {
            return Some(SessionCheck::Revoked(seen.revocation.clone()));
        }
        let known = self.sessions.get(id)?;
        match &known.state {
            KnownState::Ended(check) => Some(check.clone()),
            KnownState::Live { session, as_of } => {
                if let Some(revocation) = self.user_revoked_after(&session.user, *as_of) {
                    return Some(SessionCheck::Revoked(revocation));
                }
                if !self.synced || *as_of < self.floor {
                    return None;
                }
                if now >= session.expires_at {
                    Some(SessionCheck::Expired)
                } else {
                    Some(SessionCheck::Valid(Arc::clone(session)))
                }
            }
        }
    }

    fn user_revoked_after(&self, user: &UserRef, as_of: u64) -> Option<Revocation> {
        self.revoked_users
            .get(user)
            .filter(|seen| seen.number > as_of)
            .map(|seen| seen.watermark.clone())
    }

    /// Keeps session-service's answer about session `id`, asked at `asked`,
    /// and returns it combined with the revocations applied since.
    /// `expires_at` is the session's expiry, when the answer carried one.
    pub(crate) fn remember_session(
        &mut self,
        id: &str,
        answer: SessionCheck,
        expires_at: Option<OffsetDateTime>,
        asked: Option<Position>,
        now: OffsetDateTime,
    ) -> SessionCheck {
        if let Some(seen) = self.revoked_sessions.get(id) {
            return SessionCheck::Revoked(seen.revocation.clone());
        }
        let Some(as_of) = asked
            .filter(|asked| asked.epoch == self.epoch)
            .map(|asked| asked.applied)
        else {
            // Asked before this epoch's watch began: it may predate
            // revocations the view will never see. Answer, but do not keep.
            return answer;
        };
        let (state, expires_at) = match &answer {
            SessionCheck::Valid(session) => (
                KnownState::Live {
                    session: Arc::clone(session),
                    as_of,
                },
                session.expires_at,
            ),
            SessionCheck::Revoked(_) | SessionCheck::Expired => match expires_at {
                Some(expires_at) => (KnownState::Ended(answer.clone()), expires_at),
                None => return answer,
            },
            SessionCheck::Unknown => return answer,
        };
        self.forget(now);
        self.cache_session(id.to_owned(), KnownSession { expires_at, state });
        match answer {
            SessionCheck::Valid(session) => match self.user_revoked_after(&session.user, as_of) {
                Some(revocation) => SessionCheck::Revoked(revocation),
                None => SessionCheck::Valid(session),
            },
            ended => ended,
        }
    }

    fn cache_session(&mut self, id: String, known: KnownSession) {
        if let Some(old) = self.sessions.remove(&id) {
            self.session_expiry.remove(&(old.expires_at, id.clone()));
        }
        while self.sessions.len() >= self.limits.sessions {
            let Some((_, soonest)) = self.session_expiry.pop_first() else {
                break;
            };
            self.sessions.remove(&soonest);
        }
        self.session_expiry.insert((known.expires_at, id.clone()));
        self.sessions.insert(id, known);
    }

    /// Whether a token of `user` issued at `issued_at` is revoked, from
    /// what the view holds, or `None` when only session-service can say.
    pub(crate) fn check_token(&self, user: &UserRef, issued_at: OffsetDateTime) -> Option<TokenCheck> {
        if let Some(seen) = self.revoked_users.get(user)
            && issued_at <= seen.watermark.revoked_at
        {
            return Some(TokenCheck::Revoked(seen.watermark.clone()));
        }
        let known = self.users.get(user)?;
        if !self.synced || known.as_of < self.floor {
            return None;
        }
        Some(token_check(known.watermark.as_ref(), issued_at))
    }

    /// Keeps the user's watermark as session-service answered it (`None`:
    /// never revoked), asked at `asked`, and returns what it says of a token
    /// issued at `issued_at`, with the revocations applied since.
    pub(crate) fn remember_user(
        &mut self,
        user: &UserRef,
        watermark: Option<Revocation>,
        asked: Option<Position>,
        issued_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> TokenCheck {
        let mut check = token_check(watermark.as_ref(), issued_at);
        if let Some(seen) = self.revoked_users.get(user)
            && issued_at <= seen.watermark.revoked_at
        {
            check = TokenCheck::Revoked(seen.watermark.clone());
        }
        if let Some(asked) = asked.filter(|asked| asked.epoch == self.epoch) {
            self.forget(now);
            self.cache_user(user.clone(), watermark, asked.applied);
        }
        check
    }

    fn cache_user(&mut self, user: UserRef, watermark: Option<Revocation>, as_of: u64) {
        if let Some(old) = self.users.remove(&user) {
            self.user_age.remove(&old.age);
        }
        while self.users.len() >= self.limits.users {
            let Some((_, oldest)) = self.user_age.pop_first() else {
                break;
            };
            self.users.remove(&oldest);
        }
        let age = self.next_user_age;
        self.next_user_age += 1;
        self.user_age.insert(age, user.clone());
        self.users.insert(user, KnownUser { watermark, as_of, age });
    }
}

fn token_check(watermark: Option<&Revocation>, issued_at: OffsetDateTime) -> TokenCheck {
    match watermark {
        Some(watermark) if issued_at <= watermark.revoked_at => TokenCheck::Revoked(watermark.clone()),
        _ => TokenCheck::Valid,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const HOUR: Duration = Duration::from_secs(3600);
    const LIMITS: Limits = Limits {
        sessions: 100,
        users: 100,
        revocations: 100,
    };

    fn alice() -> UserRef {
        UserRef::new("directory", "alice")
    }

    fn session(id: &str, user: UserRef) -> Arc<Session> {
        Arc::new(Session {
            id: id.to_owned(),
            user,
            attributes: BTreeMap::new(),
            created: NOW - HOUR,
            expires_at: NOW + HOUR,
        })
    }

    fn revocation(reason: &str, revoked_at: OffsetDateTime) -> Revocation {
        Revocation {
            reason: reason.to_owned(),
            revoked_at,
        }
    }

    fn session_revoked(id: &str, user: UserRef, reason: &str) -> Event {
        Event {
            user,
            session_id: Some(id.to_owned()),
            revocation: revocation(reason, NOW),
        }
    }

    fn user_revoked(user: UserRef, at: OffsetDateTime) -> Event {
        Event {
            user,
            session_id: None,
            revocation: revocation("deprovisioned", at),
        }
    }

    /// A view whose watch has delivered its first message and caught up.
    fn live_view(limits: Limits) -> View {
        let mut view = View::new(limits);
        view.apply([], NOW);
        view.set_synced(true);
        view
    }

    fn remember_valid(view: &mut View, session: &Arc<Session>) -> SessionCheck {
        let asked = view.position();
        view.remember_session(&session.id, SessionCheck::Valid(Arc::clone(session)), None, asked, NOW)
    }

    #[test]
    fn a_valid_answer_is_answered_locally_only_while_the_watch_is_synced() {
        let mut view = live_view(LIMITS);
        let s = session("s1", alice());
        assert_eq!(view.check_session("s1", NOW), None, "never asked");
        assert!(remember_valid(&mut view, &s).is_valid());
        assert_eq!(view.check_session("s1", NOW), Some(SessionCheck::Valid(Arc::clone(&s))));

        view.set_synced(false);
        assert_eq!(
            view.check_session("s1", NOW),
            None,
            "the watch is down: ask the service"
        );
        view.set_synced(true);
        assert_eq!(view.check_session("s1", s.expires_at), Some(SessionCheck::Expired));
    }

    #[test]
    fn nothing_is_cached_before_the_first_watch_message() {
        let mut view = View::new(LIMITS);
        let s = session("s1", alice());
        let asked = view.position();
        assert_eq!(asked, None);
        assert!(
            view.remember_session("s1", SessionCheck::Valid(s), None, asked, NOW)
                .is_valid()
        );
        view.apply([], NOW);
        view.set_synced(true);
        assert_eq!(view.check_session("s1", NOW), None);
    }

    #[test]
    fn a_session_revoked_on_the_stream_is_revoked_locally_cached_or_not_synced_or_not() {
        let mut view = live_view(LIMITS);
        let s = session("s1", alice());
        remember_valid(&mut view, &s);
        view.apply([session_revoked("s1", alice(), "signed out")], NOW);
        view.apply([session_revoked("s1", alice(), "signed out again")], NOW);
        view.apply([session_revoked("s2", alice(), "stolen")], NOW);
        view.set_synced(false);
        assert_eq!(
            view.check_session("s1", NOW),
            Some(SessionCheck::Revoked(revocation("signed out", NOW))),
            "the first revocation, as session-service keeps it"
        );
        assert_eq!(
            view.check_session("s2", NOW),
            Some(SessionCheck::Revoked(revocation("stolen", NOW)))
        );
    }

    #[test]
    fn a_user_revocation_revokes_the_users_sessions_asked_about_before_it_only() {
        let mut view = live_view(LIMITS);
        let before = session("before", alice());
        let other_user = session("bob's", UserRef::new("directory", "bob"));
        remember_valid(&mut view, &before);
        remember_valid(&mut view, &other_user);
        view.apply([user_revoked(alice(), NOW)], NOW);
        let after = session("after", alice());
        remember_valid(&mut view, &after);

        assert_eq!(
            view.check_session("before", NOW),
            Some(SessionCheck::Revoked(revocation("deprovisioned", NOW)))
        );
        assert!(view.check_session("after", NOW).is_some_and(|c| c.is_valid()));
        assert!(view.check_session("bob's", NOW).is_some_and(|c| c.is_valid()));
    }

    #[test]
    fn an_answer_that_crossed_a_revocation_on_the_way_comes_out_revoked() {
        let mut view = live_view(LIMITS);
        let s = session("s1", alice());
        let t = session("t1", alice());
        let asked = view.position();
        // Both revocations reach the view while the questions are in flight.
        view.apply(
            [session_revoked("s1", alice(), "signed out"), user_revoked(alice(), NOW)],
            NOW,
        );
        for s in [s, t] {
            let check = view.remember_session(&s.id, SessionCheck::Valid(Arc::clone(&s)), None, asked, NOW);
            assert!(matches!(check, SessionCheck::Revoked(_)), "{check:?}");
            assert!(matches!(view.check_session(&s.id, NOW), Some(SessionCheck::Revoked(_))));
        }
    }

    #[test]
    fn revoked_and_expired_answers_are_kept_until_a_day_after_expiry() {
        let mut view = live_view(LIMITS);
        let asked = view.position();
        let revoked = SessionCheck::Revoked(revocation("signed out", NOW - HOUR));
        let expires_at = NOW + HOUR;
        view.remember_session("r", revoked.clone(), Some(expires_at), asked, NOW);
        view.remember_session("e", SessionCheck::Expired, Some(NOW), asked, NOW);
        view.remember_session("u", SessionCheck::Unknown, None, asked, NOW);
        view.set_synced(false);
        assert_eq!(view.check_session("r", NOW), Some(revoked));
        assert_eq!(view.check_session("e", NOW), Some(SessionCheck::Expired));
        assert_eq!(view.check_session("u", NOW), None, "unknown ids are not kept");

        view.apply([], NOW + ENDED_RETENTION);
        assert_eq!(view.check_session("e", NOW), None);
        assert!(view.check_session("r", NOW).is_some());
    }

    #[test]
    fn tokens_issued_at_or_before_the_users_watermark_are_revoked() {
        let mut view = live_view(LIMITS);
        let watermark = revocation("deprovisioned", NOW - HOUR);
        let asked = view.position();
        let check = view.remember_user(&alice(), Some(watermark.clone()), asked, NOW - HOUR, NOW);
        assert_eq!(check, TokenCheck::Revoked(watermark.clone()));
        assert_eq!(
            view.check_token(&alice(), NOW - HOUR),
            Some(TokenCheck::Revoked(watermark))
        );
        assert_eq!(view.check_token(&alice(), NOW), Some(TokenCheck::Valid));

        let bob = UserRef::new("directory", "bob");
        view.remember_user(&bob, None, asked, NOW, NOW);
        assert_eq!(view.check_token(&bob, NOW - HOUR), Some(TokenCheck::Valid));
        assert_eq!(view.check_token(&UserRef::new("other", "bob"), NOW), None);

        view.apply([user_revoked(bob.clone(), NOW)], NOW);
        view.set_synced(false);
        assert!(matches!(view.check_token(&bob, NOW), Some(TokenCheck::Revoked(_))));
        assert_eq!(
            view.check_token(&bob, NOW + HOUR),
            None,
            "after the watermark, unsynced"
        );
    }

    #[test]
    fn a_watermark_answer_that_crossed_a_raise_of_it_comes_out_revoked() {
        let mut view = live_view(LIMITS);
        let asked = view.position();
        view.apply([user_revoked(alice(), NOW)], NOW);
        let check = view.remember_user(&alice(), None, asked, NOW - HOUR, NOW);
        assert!(matches!(check, TokenCheck::Revoked(_)));
    }

    #[test]
    fn a_full_resync_forgets_everything_and_answers_asked_before_it() {
        let mut view = live_view(LIMITS);
        let s = session("s1", alice());
        remember_valid(&mut view, &s);
        view.apply([session_revoked("s2", alice(), "signed out")], NOW);
        let asked_before = view.position();

        view.restart();
        assert!(!view.synced);
        view.apply([], NOW);
        view.set_synced(true);
        assert_eq!(view.check_session("s1", NOW), None);
        assert_eq!(view.check_session("s2", NOW), None);
        view.remember_session(
            "s3",
            SessionCheck::Valid(session("s3", alice())),
            None,
            asked_before,
            NOW,
        );
        assert_eq!(view.check_session("s3", NOW), None, "asked in the previous epoch");
    }

    #[test]
    fn forgetting_a_revocation_untrusts_the_answers_asked_before_it() {
        let mut view = live_view(Limits {
            revocations: 2,
            ..LIMITS
        });
        let old = session("old", alice());
        remember_valid(&mut view, &old);
        let bob = UserRef::new("directory", "bob");
        let asked = view.position();
        view.remember_user(&bob, None, asked, NOW, NOW);
        view.apply([session_revoked("x", alice(), "1")], NOW);
        let newer = session("newer", alice());
        remember_valid(&mut view, &newer);
        view.apply(
            [session_revoked("y", alice(), "2"), session_revoked("z", alice(), "3")],
            NOW,
        );

        assert_eq!(view.revoked_sessions.len(), 2, "at most two revocations remembered");
        assert_eq!(view.check_session("x", NOW), None, "forgotten");
        assert_eq!(
            view.check_session("old", NOW),
            None,
            "asked before a forgotten revocation"
        );
        assert_eq!(view.check_token(&bob, NOW), None, "asked before a forgotten revocation");
        assert!(view.check_session("newer", NOW).is_some_and(|c| c.is_valid()));
    }

    #[test]
    fn revocations_older_than_the_longest_session_are_forgotten() {
        let mut view = live_view(LIMITS);
        view.apply([user_revoked(alice(), NOW)], NOW);
        view.apply([session_revoked("s1", alice(), "signed out")], NOW);
        assert_eq!(view.seen.len(), 2);
        view.apply([], NOW + MAX_SESSION_TTL);
        assert!(view.seen.is_empty() && view.revoked_users.is_empty() && view.revoked_sessions.is_empty());
    }

    #[test]
    fn cached_sessions_and_users_stay_within_their_limits() {
        let mut view = live_view(Limits {
            sessions: 2,
            users: 2,
            revocations: 100,
        });
        let asked = view.position();
        for (id, hours) in [("late", 3), ("soon", 1), ("middle", 2)] {
            let s = Arc::new(Session {
                expires_at: NOW + HOUR * hours,
                ..(*session(id, alice())).clone()
            });
            remember_valid(&mut view, &s);
        }
        assert_eq!(view.sessions.len(), 2);
        assert_eq!(view.session_expiry.len(), 2);
        assert_eq!(
            view.check_session("soon", NOW),
            None,
            "the soonest to expire goes first"
        );

        for user in ["a", "b", "a", "c"] {
            view.remember_user(&UserRef::new("d", user), None, asked, NOW, NOW);
        }
        assert_eq!((view.users.len(), view.user_age.len()), (2, 2));
        assert_eq!(
            view.check_token(&UserRef::new("d", "b"), NOW),
            None,
            "the oldest goes first"
        );
        assert!(view.check_token(&UserRef::new("d", "a"), NOW).is_some());
    }
}
