//! The Redis store: one Redis node, or a Redis Cluster.
//!
//! Keys, for a key prefix `P` and a user tag `T` ([`UserRef::tag`]):
//!
//! - `P:{T}:session:<id>`: a session (hash). Expires a day after the
//!   session does, so that an ended session is answered EXPIRED or REVOKED
//!   for a while before it is UNKNOWN.
//! - `P:{T}:sessions`: the user's live sessions (sorted set of ids scored by
//!   expiry), expiring with the user's longest session.
//! - `P:{T}:watermark`: when and why all the user's sessions were last
//!   revoked (hash), kept for [`MAX_SESSION_TTL`] after each revocation.
//!   A session created before it is revoked whether or not its own hash
//!   says so yet: revoking a user raises the watermark in one step, then
//!   marks the sessions in batches of [`REVOKE_BATCH`].
//! - `P:revocations`: the revocation log (a stream, trimmed to about the
//!   configured length); a stream entry id is a watch cursor. Each entry
//!   records the id before it, so that after trimming the oldest entry left
//!   says which ids are gone.
//!
//! The keys of one user share the hash tag `{T}`, so on Redis Cluster they
//! are in one slot and the Lua scripts that change several of them at once
//! work there too. The log is one key: every replica's watchers read the
//! same stream.
//!
//! Each store runs one task that follows the log with `XREAD BLOCK` on a
//! connection of its own (a blocking read would stall every other command
//! on the shared, multiplexed connection) and fans revocations out to
//! [`subscribe`](SessionStore::subscribe)rs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Script, ServerErrorKind, Value,
};
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{LIVE_BUFFER, RevokeOutcome, SessionStore, StoreError, UserRevocation};
use crate::model::{
    Cursor, ENDED_SESSION_RETENTION, MAX_SESSION_TTL, Revocation, RevocationEvent, SESSION_LIMIT_REASON, Session,
    SessionId, UserRef,
};

/// The URL scheme that selects Redis Cluster, followed by a comma-separated
/// list of seed nodes: `redis+cluster://[user:password@]host:port,host:port`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// How long a command may take before Redis counts as unreachable. Checks
/// answer UNAVAILABLE after this long rather than hang.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one `XREAD` of the log follower blocks waiting for revocations.
const FOLLOW_BLOCK: Duration = Duration::from_secs(5);
/// How many log entries the follower reads at once.
const FOLLOW_BATCH: usize = 256;
/// How long the follower waits before reconnecting after an error.
const FOLLOW_RETRY: Duration = Duration::from_millis(250);
/// How many index entries one call of revoke_user_batch.lua looks at: what
/// bounds the time one user's revocation holds Redis (or a cluster node).
pub(crate) const REVOKE_BATCH: usize = 100;
/// The most sessions one call of create_session.lua answers for eviction.
const EVICT_BATCH: usize = 100;
/// How many times a session creation evicts and tries again before it gives
/// up: only concurrent creations for the same user at its limit, or a limit
/// lowered far below what users have, take more than one.
const CREATE_ROUNDS: usize = 1_000;

/// Where Redis is, parsed from a URL.
#[derive(Clone)]
enum Endpoint {
    Single(Client),
    Cluster(Box<ClusterClient>),
}

impl Endpoint {
    /// `redis://…` (or `rediss://`, `unix://`) for one node;
    /// [`CLUSTER_SCHEME`] for a cluster.
    fn parse(url: &str) -> Result<Endpoint, RedisError> {
        let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
            return Ok(Endpoint::Single(Client::open(url)?));
        };
        let (credentials, nodes) = match rest.rsplit_once('@') {
            Some((credentials, nodes)) => (format!("{credentials}@"), nodes),
            None => (String::new(), rest),
        };
        let nodes: Vec<String> = nodes
            .trim_end_matches('/')
            .split(',')
            .map(|node| format!("redis://{credentials}{}", node.trim()))
            .collect();
        Ok(Endpoint::Cluster(Box::new(ClusterClient::new(nodes)?)))
    }

    /// The connection every command but the follower's shares. It connects
    /// on first use, and reconnects by itself, so the service starts and
    /// answers UNAVAILABLE while Redis is down.
    fn shared(&self) -> Result<Connection, RedisError> {
        Ok(match self {
            Endpoint::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    // Fail fast while Redis is down: a check waits for at most
                    // one more connection attempt, not a long backoff.
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                Connection::Single(ConnectionManager::new_lazy_with_config(client.clone(), config)?)
            }
            Endpoint::Cluster(client) => Connection::Cluster(
                client.get_pending_async_connection_with_config(
                    ClusterConfig::new()
                        .set_connection_timeout(CONNECTION_TIMEOUT)
                        .set_response_timeout(RESPONSE_TIMEOUT),
                ),
            ),
        })
    }

    /// A connection for the log follower alone, whose reads block.
    async fn dedicated(&self) -> Result<Connection, RedisError> {
        let response_timeout = FOLLOW_BLOCK + RESPONSE_TIMEOUT;
        Ok(match self {
            Endpoint::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_response_timeout(Some(response_timeout));
                let connection = client.get_multiplexed_async_connection_with_config(&config).await?;
                Connection::Dedicated(connection)
            }
            Endpoint::Cluster(client) => Connection::Cluster(
                client
                    .get_async_connection_with_config(
                        ClusterConfig::new()
                            .set_connection_timeout(CONNECTION_TIMEOUT)
                            .set_response_timeout(response_timeout),
                    )
                    .await?,
            ),
        })
    }
}

/// A connection to a Redis node or to a cluster; commands and scripts run on
/// either unchanged.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Dedicated(redis::aio::MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connection info: it may hold a password.
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Dedicated(_) => "Connection::Dedicated",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Dedicated(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Dedicated(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The names of the keys, under a prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn session_prefix(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:session:", self.prefix)
    }

    fn session(&self, id: &SessionId) -> String {
        format!("{}{id}", self.session_prefix(id.tag()))
    }

    fn user_sessions(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:sessions", self.prefix)
    }

    fn watermark(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:watermark", self.prefix)
    }

    fn log(&self) -> String {
        format!("{}:revocations", self.prefix)
    }
}

/// Sessions in Redis.
#[derive(Debug)]
pub struct RedisStore {
    connection: Connection,
    keys: Keys,
    log_capacity: usize,
    max_sessions_per_user: usize,
    live: broadcast::Sender<RevocationEvent>,
    /// Whether the log follower has started, i.e. knows where it reads from.
    following: watch::Receiver<bool>,
    scripts: Scripts,
    _follower: DropGuard,
}

#[derive(Debug)]
struct Scripts {
    create_session: Script,
    revoke_session: Script,
    revoke_user: Script,
    revoke_user_batch: Script,
    append_log: Script,
    read_log: Script,
}

impl Scripts {
    fn load() -> Scripts {
        Scripts {
            create_session: Script::new(include_str!("redis/create_session.lua")),
            revoke_session: Script::new(include_str!("redis/revoke_session.lua")),
            revoke_user: Script::new(include_str!("redis/revoke_user.lua")),
            revoke_user_batch: Script::new(include_str!("redis/revoke_user_batch.lua")),
            append_log: Script::new(include_str!("redis/append_log.lua")),
            read_log: read_log_script(),
        }
    }
}

fn read_log_script() -> Script {
    Script::new(include_str!("redis/read_log.lua"))
}

impl RedisStore {
    /// A store on the Redis at `url` (a `redis://` URL, or
    /// [`CLUSTER_SCHEME`] and a list of nodes), with every key under
    /// `key_prefix` and a log of about `log_capacity` revocations.
    ///
    /// Nothing connects yet: an unreachable Redis makes operations fail
    /// with [`StoreError::Unavailable`] until it is back. Fails only on a
    /// malformed URL. Must be called within a Tokio runtime: it starts the
    /// log follower, which stops when the store is dropped.
    pub fn open(
        url: &str,
        key_prefix: &str,
        log_capacity: usize,
        max_sessions_per_user: usize,
    ) -> Result<RedisStore, RedisError> {
        let endpoint = Endpoint::parse(url)?;
        let connection = endpoint.shared()?;
        let keys = Keys {
            prefix: key_prefix.to_owned(),
        };
        let live = broadcast::channel(LIVE_BUFFER).0;
        let stop = CancellationToken::new();
        let (started, following) = watch::channel(false);
        let follower = Follower {
            endpoint: endpoint.clone(),
            keys: keys.clone(),
            live: live.clone(),
            started,
            read_log: read_log_script(),
            position: None,
            failing: false,
        };
        tokio::spawn(follower.run(stop.clone()));
        Ok(RedisStore {
            connection,
            keys,
            log_capacity: log_capacity.max(1),
            max_sessions_per_user: max_sessions_per_user.max(1),
            live,
            following,
            scripts: Scripts::load(),
            _follower: stop.drop_guard(),
        })
    }

    /// Appends a revocation to the log.
    async fn log(
        &self,
        user: &UserRef,
        session_id: Option<&SessionId>,
        revocation: &Revocation,
    ) -> Result<(), StoreError> {
        self.scripts
            .append_log
            .key(self.keys.log())
            .arg(self.log_capacity)
            .arg("directory_id")
            .arg(&user.directory_id)
            .arg("user_id")
            .arg(&user.user_id)
            .arg("session_id")
            .arg(session_id.map_or("", SessionId::as_str))
            .arg("reason")
            .arg(&revocation.reason)
            .arg("revoked_at")
            .arg(micros(revocation.at))
            .invoke_async::<String>(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

impl SessionStore for RedisStore {
    async fn create(&self, session: &Session) -> Result<u64, StoreError> {
        let ttl = session.expires_at - session.created;
        let ttl_ms = ttl.whole_milliseconds().max(1);
        let attributes = serde_json::to_string(&session.attributes)
            .map_err(|err| StoreError::Internal(format!("attributes to JSON: {err}")))?;
        let eviction = Revocation {
            reason: SESSION_LIMIT_REASON.to_owned(),
            at: session.created,
        };
        let mut victims: Vec<String> = Vec::new();
        let mut evicted = 0;
        for _ in 0..CREATE_ROUNDS {
            let reply: Vec<String> = self
                .scripts
                .create_session
                .key(self.keys.session(&session.id))
                .key(self.keys.user_sessions(session.id.tag()))
                .arg(session.id.as_str())
                .arg(&session.user.directory_id)
                .arg(&session.user.user_id)
                .arg(micros(session.created))
                .arg(micros(session.expires_at))
                .arg(&attributes)
                .arg(ttl_ms + ENDED_SESSION_RETENTION.as_millis() as i128)
                .arg(ttl_ms)
                .arg(self.max_sessions_per_user)
                .arg(self.keys.session_prefix(session.id.tag()))
                .arg(SESSION_LIMIT_REASON)
                .arg(EVICT_BATCH)
                .arg(&victims)
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            let (outcome, rest) = match reply.as_slice() {
                [outcome, evicted_now, rest @ ..] => {
                    evicted += u64::try_from(number(evicted_now)?).unwrap_or(0);
                    (outcome.as_str(), rest)
                }
                _ => ("", &[][..]),
            };
            match outcome {
                "created" => return Ok(evicted),
                "full" => {
                    victims = rest.to_vec();
                    // Logged before they are revoked: see create_session.lua.
                    for victim in &victims {
                        let id = SessionId::parse(victim)
                            .ok_or_else(|| StoreError::Internal(format!("bad session id {victim:?} in an index")))?;
                        self.log(&session.user, Some(&id), &eviction).await?;
                    }
                }
                _ => {
                    return Err(StoreError::Internal(format!(
                        "unexpected reply {reply:?} from create_session.lua"
                    )));
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "the user's sessions stay at their limit of {} after {CREATE_ROUNDS} evictions; too many concurrent \
             sign-ins",
            self.max_sessions_per_user
        )))
    }

    async fn get(&self, id: &SessionId, _now: OffsetDateTime) -> Result<Option<Session>, StoreError> {
        // One slot (the user's tag): one node answers both, in order.
        let (fields, (at, reason)): (HashMap<String, String>, (Option<i64>, Option<String>)) = redis::pipe()
            .cmd("HGETALL")
            .arg(self.keys.session(id))
            .cmd("HMGET")
            .arg(self.keys.watermark(id.tag()))
            .arg("at")
            .arg("reason")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut session = session_from_fields(id.clone(), &fields)?;
        session.revoke_by_watermark(watermark(at, reason)?.as_ref());
        Ok(Some(session))
    }

    async fn watermark(&self, user: &UserRef, _now: OffsetDateTime) -> Result<Option<Revocation>, StoreError> {
        let (at, reason): (Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.watermark(&user.tag()))
            .arg("at")
            .arg("reason")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        watermark(at, reason)
    }

    async fn revoke_session(&self, id: &SessionId, revocation: &Revocation) -> Result<RevokeOutcome, StoreError> {
        let reply: Vec<String> = self
            .scripts
            .revoke_session
            .key(self.keys.session(id))
            .key(self.keys.user_sessions(id.tag()))
            .key(self.keys.watermark(id.tag()))
            .arg(id.as_str())
            .arg(micros(revocation.at))
            .arg(&revocation.reason)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        let (outcome, fields) = reply
            .split_first()
            .ok_or_else(|| StoreError::Internal("empty reply from revoke_session.lua".into()))?;
        match outcome.as_str() {
            "unknown" => Ok(RevokeOutcome::Unknown),
            "expired" => Ok(RevokeOutcome::Expired),
            _ => {
                let fields: HashMap<String, String> = fields
                    .chunks_exact(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                let session = session_from_fields(id.clone(), &fields)?;
                let first = session.revocation.clone().unwrap_or_else(|| revocation.clone());
                self.log(&session.user, Some(id), &first).await?;
                Ok(RevokeOutcome::Revoked(session))
            }
        }
    }

    /// Raises the watermark (which revokes every session created before it
    /// at once), logs the revocation, then marks the sessions in batches of
    /// [`REVOKE_BATCH`], each a script of its own, so that a user with many
    /// sessions never holds Redis for long. If Redis fails on the way, the
    /// revocation has happened but the error makes the caller (user-service's
    /// outbox) call again, which finishes the batches.
    async fn revoke_user(&self, user: &UserRef, revocation: &Revocation) -> Result<UserRevocation, StoreError> {
        let tag = user.tag();
        let mut connection = self.connection.clone();
        let (at, reason): (i64, String) = self
            .scripts
            .revoke_user
            .key(self.keys.watermark(&tag))
            .arg(micros(revocation.at))
            .arg(&revocation.reason)
            .arg(MAX_SESSION_TTL.as_millis() as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(store_error)?;
        let watermark = Revocation {
            reason,
            at: from_micros(at)?,
        };
        self.log(user, None, &watermark).await?;
        let mut revoked_sessions = 0;
        let mut first = 0;
        loop {
            let (revoked, kept, seen): (u64, usize, usize) = self
                .scripts
                .revoke_user_batch
                .key(self.keys.user_sessions(&tag))
                .arg(micros(revocation.at))
                .arg(at)
                .arg(&watermark.reason)
                .arg(self.keys.session_prefix(&tag))
                .arg(first)
                .arg(REVOKE_BATCH)
                .invoke_async(&mut connection)
                .await
                .map_err(store_error)?;
            revoked_sessions += revoked;
            first += kept;
            if seen < REVOKE_BATCH {
                break;
            }
        }
        Ok(UserRevocation {
            revoked_sessions,
            watermark,
        })
    }

    async fn list_user_sessions(&self, user: &UserRef, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let mut connection = self.connection.clone();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.user_sessions(&user.tag()))
            .arg(format!("({}", micros(now)))
            .arg("+inf")
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        let ids: Vec<SessionId> = ids.iter().filter_map(|id| SessionId::parse(id)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (at, reason): (Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.watermark(&user.tag()))
            .arg("at")
            .arg("reason")
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        let watermark = watermark(at, reason)?;
        let mut pipeline = redis::pipe();
        for id in &ids {
            pipeline.cmd("HGETALL").arg(self.keys.session(id));
        }
        let replies: Vec<HashMap<String, String>> = pipeline.query_async(&mut connection).await.map_err(store_error)?;
        let mut sessions = Vec::with_capacity(ids.len());
        for (id, fields) in ids.into_iter().zip(replies) {
            // Revoked since the index was read, or gone: not live.
            if !fields.is_empty() {
                let mut session = session_from_fields(id, &fields)?;
                session.revoke_by_watermark(watermark.as_ref());
                if session.revocation.is_none() {
                    sessions.push(session);
                }
            }
        }
        Ok(sessions)
    }

    async fn read_log(&self, after: Cursor, limit: usize) -> Result<Vec<RevocationEvent>, StoreError> {
        let (end, trimmed, entries) = read_log(
            &self.scripts.read_log,
            &self.keys,
            &mut self.connection.clone(),
            after,
            limit + 1,
        )
        .await?;
        if after > end {
            return Err(StoreError::CursorAhead(after));
        }
        if after < trimmed {
            return Err(StoreError::CursorTooOld(after));
        }
        Ok(entries
            .into_iter()
            .filter(|event| event.cursor > after)
            .take(limit)
            .collect())
    }

    async fn log_end(&self) -> Result<Cursor, StoreError> {
        let (end, _, _) = read_log(
            &self.scripts.read_log,
            &self.keys,
            &mut self.connection.clone(),
            Cursor::START,
            0,
        )
        .await?;
        Ok(end)
    }

    /// Waits (briefly) until the log follower has found where the log ends:
    /// a watcher that read the log before that could miss what was logged
    /// between its read and the follower's start.
    async fn subscribe(&self) -> Result<broadcast::Receiver<RevocationEvent>, StoreError> {
        let mut following = self.following.clone();
        match tokio::time::timeout(RESPONSE_TIMEOUT, following.wait_for(|following| *following)).await {
            Ok(Ok(_)) => Ok(self.live.subscribe()),
            _ => Err(StoreError::Unavailable("not following the revocation log yet".into())),
        }
    }

    async fn is_reachable(&self) -> bool {
        redis::cmd("PING")
            .query_async::<String>(&mut self.connection.clone())
            .await
            .is_ok()
    }
}

/// Runs read_log.lua: (newest id, newest trimmed id, up to `count` entries from `from` on).
async fn read_log(
    script: &Script,
    keys: &Keys,
    connection: &mut Connection,
    from: Cursor,
    count: usize,
) -> Result<(Cursor, Cursor, Vec<RevocationEvent>), StoreError> {
    type Entries = Vec<(String, HashMap<String, String>)>;
    let (end, trimmed, entries): (String, String, Entries) = script
        .key(keys.log())
        .arg(from.to_string())
        .arg(count)
        .invoke_async(connection)
        .await
        .map_err(store_error)?;
    Ok((stream_id(&end)?, stream_id(&trimmed)?, events(entries)?))
}

/// Follows the log, sending each revocation to the store's subscribers:
/// from the end of the log when it starts, then from the last revocation it
/// saw, so that reconnecting loses nothing.
struct Follower {
    endpoint: Endpoint,
    keys: Keys,
    live: broadcast::Sender<RevocationEvent>,
    /// Set once the follower knows where it reads from.
    started: watch::Sender<bool>,
    read_log: Script,
    /// The last revocation sent on, or where following started.
    position: Option<Cursor>,
    /// Whether the last attempt failed (and was logged).
    failing: bool,
}

impl Follower {
    /// Follows the log until `stop`, reconnecting after errors.
    async fn run(mut self, stop: CancellationToken) {
        loop {
            let err = tokio::select! {
                () = stop.cancelled() => return,
                err = self.follow() => err,
            };
            if !self.failing {
                tracing::warn!(error = %err, "cannot follow the Redis revocation log; retrying");
                self.failing = true;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(FOLLOW_RETRY) => {}
            }
        }
    }

    /// Connects and follows the log until something fails.
    async fn follow(&mut self) -> StoreError {
        let mut connection = match self.endpoint.dedicated().await {
            Ok(connection) => connection,
            Err(err) => return store_error(err),
        };
        let mut from = match self.position {
            Some(from) => from,
            None => match read_log(&self.read_log, &self.keys, &mut connection, Cursor::START, 0).await {
                Ok((end, _, _)) => end,
                Err(err) => return err,
            },
        };
        self.position = Some(from);
        self.started.send_replace(true);
        if self.failing {
            tracing::info!("following the Redis revocation log again");
            self.failing = false;
        }
        loop {
            type Reply = Option<Vec<(String, Vec<(String, HashMap<String, String>)>)>>;
            let reply: Reply = match redis::cmd("XREAD")
                .arg("COUNT")
                .arg(FOLLOW_BATCH)
                .arg("BLOCK")
                .arg(FOLLOW_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(self.keys.log())
                .arg(from.to_string())
                .query_async(&mut connection)
                .await
            {
                Ok(reply) => reply,
                Err(err) => return store_error(err),
            };
            for (id, fields) in reply.into_iter().flatten().flat_map(|(_, entries)| entries) {
                match event_from_fields(&id, &fields) {
                    Ok(event) => {
                        from = event.cursor;
                        // No receivers is fine: nobody is watching.
                        let _ = self.live.send(event);
                    }
                    // Someone else wrote into the log. Skip it, or it
                    // would be read again forever; watchers reading the
                    // log itself get an internal error for it.
                    Err(err) => {
                        tracing::error!(entry = id, error = %err, "skipping a malformed revocation log entry");
                        match stream_id(&id) {
                            Ok(cursor) => from = cursor,
                            Err(err) => return err,
                        }
                    }
                }
                self.position = Some(from);
            }
        }
    }
}

/// The revocations in stream entries.
fn events(entries: Vec<(String, HashMap<String, String>)>) -> Result<Vec<RevocationEvent>, StoreError> {
    entries
        .into_iter()
        .map(|(id, fields)| event_from_fields(&id, &fields))
        .collect()
}

fn event_from_fields(id: &str, fields: &HashMap<String, String>) -> Result<RevocationEvent, StoreError> {
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::Internal(format!("log entry {id} has no {name}")))
    };
    let session_id = match field("session_id")?.as_str() {
        "" => None,
        id => Some(SessionId::parse(id).ok_or_else(|| StoreError::Internal(format!("bad session id {id:?}")))?),
    };
    Ok(RevocationEvent {
        cursor: stream_id(id)?,
        user: UserRef {
            directory_id: field("directory_id")?.clone(),
            user_id: field("user_id")?.clone(),
        },
        session_id,
        revocation: Revocation {
            reason: field("reason")?.clone(),
            at: from_micros(number(field("revoked_at")?)?)?,
        },
    })
}

fn session_from_fields(id: SessionId, fields: &HashMap<String, String>) -> Result<Session, StoreError> {
    let field = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::Internal(format!("session {id} has no {name}")))
    };
    let attributes: BTreeMap<String, String> = serde_json::from_str(field("attributes")?)
        .map_err(|err| StoreError::Internal(format!("session {id} attributes: {err}")))?;
    let revocation = match fields.get("revoked_at") {
        None => None,
        Some(at) => Some(Revocation {
            reason: field("reason")?.clone(),
            at: from_micros(number(at)?)?,
        }),
    };
    Ok(Session {
        user: UserRef {
            directory_id: field("directory_id")?.clone(),
            user_id: field("user_id")?.clone(),
        },
        attributes,
        created: from_micros(number(field("created")?)?)?,
        expires_at: from_micros(number(field("expires_at")?)?)?,
        revocation,
        id,
    })
}

/// A watermark hash's `at` and `reason`, if it has one.
fn watermark(at: Option<i64>, reason: Option<String>) -> Result<Option<Revocation>, StoreError> {
    at.map(|at| {
        Ok(Revocation {
            reason: reason.unwrap_or_default(),
            at: from_micros(at)?,
        })
    })
    .transpose()
}

fn number(text: &str) -> Result<i64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Internal(format!("{text:?} is not a number")))
}

fn stream_id(text: &str) -> Result<Cursor, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Internal(format!("{text:?} is not a stream id")))
}

/// Microseconds since the Unix epoch: the precision of the service's clock,
/// and exact in a Lua number (a double) until the year 2255.
fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| StoreError::Internal(format!("{micros} µs is out of range")))
}

/// Unreachable, timed out, or failing over: UNAVAILABLE, so that callers
/// retry and checks fail closed. Anything else is a bug.
fn store_error(err: RedisError) -> StoreError {
    let unavailable = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_cluster_error()
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly
                )
        );
    if unavailable {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Internal(format!("Redis: {err}"))
    }
}
