//! A client of idmesh session-service for the platform's internal services:
//! "is this session still valid?" and "was this user's token issued before
//! they were revoked?", answered from a local view in memory, so that a
//! repeated check costs no network round trip.
//!
//! # How it answers
//!
//! A [`SessionClient`] follows `WatchRevocations` in the background and
//! remembers every revocation it delivers. The watch only says what was
//! revoked, never what is valid, so the first check of a session asks
//! session-service (`CheckSession`), and the first check of a user's token
//! asks for the user's revocation watermark (`CheckToken`); the client
//! keeps both answers. A later check of the same session or user is
//! answered locally from the kept answer combined with every revocation
//! the watch has delivered since that answer was asked for.
//!
//! # What its answers guarantee
//!
//! - **Revoked stays revoked.** A session or token that the watch said was
//!   revoked is answered REVOKED locally, whatever the state of the watch.
//! - **VALID only while synced.** A local VALID is given only while the
//!   watch is *synced*: connected, and having applied every revocation
//!   session-service logged before the watch (re)connected. It reflects
//!   every revocation logged before the kept answer was asked for (the
//!   service answered from a state that included them) and every one
//!   delivered since; what it can miss is a revocation logged but not yet
//!   delivered: the watch's latency, a few milliseconds on a healthy
//!   connection (`docs/benchmarks.md` has the numbers). A user's revocation
//!   delivered after a session's answer was asked for revokes that session
//!   locally, even if the session was created just after it: when the order
//!   cannot be told, the client errs on the side of revoked.
//! - **Fail closed while not synced.** When the watch fails, local VALID
//!   answers stop at once: checks ask session-service again, and fail with
//!   [`Error::Unavailable`] if it cannot answer. Every error means "do not
//!   accept". A connection that breaks silently (no reset, no error) is
//!   noticed by HTTP/2 keepalive within
//!   [`Options::keepalive_interval`] + [`Options::keepalive_timeout`]
//!   (5 s by default); until then, revocations can be missed.
//! - **Resumes without losing anything.** After a failure the watch
//!   resumes from the cursor of the last message it applied, and the
//!   service sends everything logged since. If the service no longer has
//!   it (its log is bounded, about the last 100,000 revocations; or an
//!   in-process session-service restarted), the client forgets every kept
//!   answer and revocation, watches from the end of the log, and asks
//!   session-service again for each session and user: nothing from before
//!   the gap is trusted.
//! - **Expiry by the client's clock.** A kept VALID session is EXPIRED
//!   locally from its `expires_at`, by [`Options::clock`].
//!
//! # Memory
//!
//! Bounded by [`Options`]: at most `max_cached_sessions` sessions (the one
//! expiring soonest is dropped first, ended ones a day after expiry),
//! `max_cached_users` watermarks (oldest first) and `max_revocations`
//! revocations (oldest first, and all older than 30 days, the longest a
//! session lives). Forgetting a revocation makes the answers kept before it
//! untrusted: they are asked again, never answered without it.
//!
//! # Limits
//!
//! The revocation log has no identity of its own: if session-service's
//! Redis loses its data (a restart without persistence) and new revocations
//! are logged before the client resumes, the client cannot tell the log
//! restarted. Sessions lost that way stay VALID in the view until they
//! expire. Run Redis with persistence.
//!
//! # Example
//!
//! ```no_run
//! use idmesh_session_client::{Options, SessionCheck, SessionClient, UserRef};
//! use time::OffsetDateTime;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // This service's own API key: sessions:check and revocations:watch.
//! let key = std::fs::read_to_string("/var/run/secrets/idmesh/api-key")?;
//! let credential = idmesh_runtime::auth::Credential::new(&key)?;
//! let sessions = SessionClient::connect("http://session-service:50053", credential, Options::default())?;
//! // Optional: wait until local answers are possible before taking traffic.
//! tokio::time::timeout(std::time::Duration::from_secs(5), sessions.synced()).await.ok();
//!
//! // A session id from a cookie: the first check asks session-service, the
//! // next ones are answered in memory until a revocation arrives.
//! match sessions.check_session("3f2a…").await {
//!     Ok(SessionCheck::Valid(session)) => println!("signed in as {}", session.user.user_id),
//!     Ok(other) => println!("sign in again: {other:?}"),
//!     // Fail closed: the state is not known.
//!     Err(err) => println!("sign in again: {err}"),
//! }
//!
//! // A JWT the platform issued: revoked if issued at or before the user's
//! // last revocation.
//! let user = UserRef::new("directory-id", "user-id");
//! let issued_at = OffsetDateTime::now_utc();
//! let accepted = sessions.check_token(&user, issued_at).await.is_ok_and(|check| check.is_valid());
//! # let _ = accepted;
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod follow;
mod model;
mod view;

pub use client::{Options, SessionClient};
pub use error::Error;
pub use model::{Revocation, Session, SessionCheck, TokenCheck, UserRef};
