//! The session domain: users, sessions, revocations and the revocation log's
//! cursors, independent of gRPC and of where they are stored.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The longest a session may live; also how long a user's revocation
/// watermark is kept, so that it outlives every token tied to a session.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How many live sessions a user may have unless configured otherwise.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;

/// The reason a session evicted by the per-user limit is revoked with.
pub const SESSION_LIMIT_REASON: &str = "session limit reached";

/// How long an ended session (expired, or revoked) is remembered, so that
/// CheckSession can say EXPIRED or REVOKED rather than UNKNOWN.
pub const ENDED_SESSION_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The user a session belongs to: a user id within a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserRef {
    pub directory_id: String,
    pub user_id: String,
}

impl UserRef {
    /// 128 bits of SHA-256 over the pair, in hex. The Redis keys of one user
    /// share it as their hash tag (one Redis Cluster slot), and session ids
    /// carry it, so a session id leads to its user's slot. Hashing, rather
    /// than writing the ids into the tag, keeps ids containing `:` or braces
    /// from colliding or ending the tag early.
    pub fn tag(&self) -> String {
        let mut digest = Sha256::new();
        // Length-prefixed, so ("a:b", "c") and ("a", "b:c") differ.
        digest.update((self.directory_id.len() as u64).to_be_bytes());
        digest.update(self.directory_id.as_bytes());
        digest.update(self.user_id.as_bytes());
        hex::encode(&digest.finalize()[..TAG_BYTES])
    }
}

/// Bytes of the user tag and of a session id's random part.
const TAG_BYTES: usize = 16;
const RANDOM_BYTES: usize = 16;

/// A session id: the user's tag then 128 random bits, all lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// A new, unguessable id for a session of `user`.
    pub fn generate(user: &UserRef) -> Result<SessionId, getrandom::Error> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random)?;
        Ok(SessionId(format!("{}{}", user.tag(), hex::encode(random))))
    }

    /// The id, if `id` has the shape of one this service issues; anything
    /// else cannot name a session.
    pub fn parse(id: &str) -> Option<SessionId> {
        let well_formed = id.len() == 2 * (TAG_BYTES + RANDOM_BYTES)
            && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| SessionId(id.to_owned()))
    }

    /// The tag of the session's user (see [`UserRef::tag`]).
    pub fn tag(&self) -> &str {
        &self.0[..2 * TAG_BYTES]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The session's handle: what listings answer instead of the id. A
    /// one-way hash of the id, so it names the session (to revoke it) but
    /// cannot be turned back into the id that passes CheckSession.
    pub fn handle(&self) -> String {
        let digest = Sha256::digest(format!("idmesh session handle\0{}", self.0).as_bytes());
        format!("sh_{}", hex::encode(digest))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why and when something was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub reason: String,
    pub at: OffsetDateTime,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user: UserRef,
    pub attributes: BTreeMap<String, String>,
    pub created: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revocation: Option<Revocation>,
}

/// What a session is at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Valid,
    Revoked,
    Expired,
}

impl Session {
    /// Revokes the session by its user's `watermark` if it was live then
    /// (created before it, expiring after it) and has no earlier revocation
    /// of its own: how a user's revocation reaches sessions that the store
    /// has not marked yet.
    pub fn revoke_by_watermark(&mut self, watermark: Option<&Revocation>) {
        let Some(watermark) = watermark else { return };
        let earlier = self.revocation.as_ref().is_some_and(|own| own.at <= watermark.at);
        if self.created < watermark.at && watermark.at < self.expires_at && !earlier {
            self.revocation = Some(watermark.clone());
        }
    }

    /// Its state at `now`. A revoked session stays revoked after it expires:
    /// the revocation says more.
    pub fn state(&self, now: OffsetDateTime) -> SessionState {
        if self.revocation.is_some() {
            SessionState::Revoked
        } else if now >= self.expires_at {
            SessionState::Expired
        } else {
            SessionState::Valid
        }
    }
}

/// Whether a token issued at `issued_at` is revoked by the user's watermark:
/// issued at or before it. At, because token timestamps are usually whole
/// seconds, truncated: a token stamped in the second of the revocation may
/// have been issued just before it.
pub fn revoked_by_watermark(issued_at: OffsetDateTime, watermark: &Revocation) -> bool {
    issued_at <= watermark.at
}

/// A position in the revocation log: a Redis stream entry id, which the
/// in-process log imitates. Ordered as the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub millis: u64,
    pub seq: u64,
}

impl Cursor {
    /// Before every event: a watch from here replays the whole log.
    pub const START: Cursor = Cursor { millis: 0, seq: 0 };
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// A string that is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a revocation cursor")]
pub struct InvalidCursor(pub String);

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Cursor, InvalidCursor> {
        let invalid = || InvalidCursor(s.to_owned());
        let (millis, seq) = s.split_once('-').ok_or_else(invalid)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse::<u64>().map_err(|_| invalid())
        };
        Ok(Cursor {
            millis: number(millis)?,
            seq: number(seq)?,
        })
    }
}

/// One entry of the revocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    pub cursor: Cursor,
    pub user: UserRef,
    /// `None` when every session of the user was revoked and the watermark raised.
    pub session_id: Option<SessionId>,
    pub revocation: Revocation,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn user(directory_id: &str, user_id: &str) -> UserRef {
        UserRef {
            directory_id: directory_id.to_owned(),
            user_id: user_id.to_owned(),
        }
    }

    #[test]
    fn tags_are_stable_and_tell_apart_ids_that_concatenate_alike() {
        assert_eq!(user("d", "u").tag(), user("d", "u").tag());
        assert_ne!(user("a:b", "c").tag(), user("a", "b:c").tag());
        assert_ne!(user("ab", "c").tag(), user("a", "bc").tag());
        assert_eq!(user("d", "u").tag().len(), 32);
    }

    #[test]
    fn session_ids_carry_their_users_tag_and_parse_back() -> Result<(), getrandom::Error> {
        let alice = user("dir", "alice");
        let (a, b) = (SessionId::generate(&alice)?, SessionId::generate(&alice)?);
        assert_ne!(a, b);
        assert_eq!(a.tag(), alice.tag());
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
        Ok(())
    }

    #[test]
    fn strings_that_no_session_id_looks_like_do_not_parse() {
        let valid = "0123456789abcdef".repeat(4);
        assert!(SessionId::parse(&valid).is_some());
        for invalid in [
            String::new(),
            valid[1..].to_owned(),
            format!("{valid}0"),
            valid.to_uppercase(),
            format!("{}g", &valid[1..]),
            format!("{}é", &valid[2..]),
        ] {
            assert_eq!(SessionId::parse(&invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_order_like_stream_ids() {
        let cursor: Cursor = "1700000000000-12".parse().expect("a cursor");
        assert_eq!(cursor.to_string(), "1700000000000-12");
        assert!(cursor < "1700000000000-13".parse().expect("a cursor"));
        assert!(cursor < "1700000000001-0".parse().expect("a cursor"));
        assert!(Cursor::START < cursor);
        for invalid in ["", "12", "-1", "1-", "a-1", "1-+2", "1-2-3", "99999999999999999999-0"] {
            assert_eq!(invalid.parse::<Cursor>(), Err(InvalidCursor(invalid.to_owned())));
        }
    }

    #[test]
    fn a_revoked_session_stays_revoked_after_it_expires() {
        let created = datetime!(2026-01-01 00:00 UTC);
        let mut session = Session {
            id: SessionId("0".repeat(64)),
            user: user("d", "u"),
            attributes: BTreeMap::new(),
            created,
            expires_at: created + Duration::from_secs(60),
            revocation: None,
        };
        assert_eq!(session.state(created), SessionState::Valid);
        assert_eq!(session.state(session.expires_at), SessionState::Expired);
        session.revocation = Some(Revocation {
            reason: "logout".into(),
            at: created,
        });
        assert_eq!(session.state(session.expires_at), SessionState::Revoked);
    }

    #[test]
    fn the_watermark_revokes_tokens_issued_at_or_before_it() {
        let watermark = Revocation {
            reason: "deprovisioned".into(),
            at: datetime!(2026-01-01 12:00:00.5 UTC),
        };
        assert!(revoked_by_watermark(datetime!(2026-01-01 12:00:00 UTC), &watermark));
        assert!(revoked_by_watermark(watermark.at, &watermark));
        assert!(!revoked_by_watermark(datetime!(2026-01-01 12:00:01 UTC), &watermark));
    }
}
