//! What a check answers, in the client's own types rather than protobuf
//! messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

/// A user of a directory: whose sessions and tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRef {
    /// The directory (one customer's identity provider connection).
    pub directory_id: String,
    /// The user's id in the directory (`idmesh.v1.User.id`).
    pub user_id: String,
}

impl UserRef {
    /// The user `user_id` of the directory `directory_id`.
    pub fn new(directory_id: impl Into<String>, user_id: impl Into<String>) -> UserRef {
        UserRef {
            directory_id: directory_id.into(),
            user_id: user_id.into(),
        }
    }
}

/// Why and when something was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// What the revoker said, e.g. "user deactivated by the identity provider".
    pub reason: String,
    /// When, by session-service's clock.
    pub revoked_at: OffsetDateTime,
}

/// A session as session-service described it when it was valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// Whose session it is.
    pub user: UserRef,
    /// What the platform attached when it created the session.
    pub attributes: BTreeMap<String, String>,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it stops being valid.
    pub expires_at: OffsetDateTime,
}

/// What a session is, as far as the client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck {
    /// Neither revoked nor expired.
    Valid(Arc<Session>),
    /// Revoked, by a revocation of the session or of all its user's
    /// sessions.
    Revoked(Revocation),
    /// Past its expiry.
    Expired,
    /// Never issued by session-service, or forgotten since it ended.
    Unknown,
}

impl SessionCheck {
    /// Whether the session may be used: only [`SessionCheck::Valid`] says so.
    pub fn is_valid(&self) -> bool {
        matches!(self, SessionCheck::Valid(_))
    }
}

/// What a stateless token (a JWT the platform issued) is, as far as
/// revocation goes; its own expiry is the issuer's to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Issued after its user's last revocation, or the user was never revoked.
    Valid,
    /// Issued at or before its user's last revocation (the watermark).
    Revoked(Revocation),
}

impl TokenCheck {
    /// Whether the token may be used: only [`TokenCheck::Valid`] says so.
    pub fn is_valid(&self) -> bool {
        matches!(self, TokenCheck::Valid)
    }
}
