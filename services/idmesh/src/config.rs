//! The one configuration of `idmesh dev` and `idmesh serve`, declared once:
//! defaults (which differ by mode) → an optional TOML file (`--config`,
//! `IDMESH_CONFIG`) → `IDMESH_*` environment → flags. clap already puts a
//! flag above its environment variable; [`load`] puts both above the file
//! and the file above the defaults, then validates everything at once, so
//! that a bad value stops the process before it binds a port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use idmesh::{MeshConfig, Target};
use idmesh_runtime::telemetry::LogFormat;
use serde::{Deserialize, Serialize};

/// The ports `idmesh serve` listens on unless told otherwise: fixed, since
/// Kubernetes Services name them.
const SERVE_DIRECTORY_PORT: u16 = 50051;
const SERVE_USER_PORT: u16 = 50052;
const SERVE_SESSION_PORT: u16 = 50053;
const SERVE_GROUP_PORT: u16 = 50054;
const SERVE_ROLE_PORT: u16 = 50055;
const SERVE_EVENT_PORT: u16 = 50056;
const HTTP_PORT: u16 = 8080;

/// How a masked secret reads in `idmesh config print`.
const MASK: &str = "***";

/// Every setting, as a flag with its `IDMESH_*` variable and as a key of the
/// TOML file (the same name, in snake_case). Unset is `None`: the layer
/// below decides. Values stay text here and are checked in [`load`], so that
/// a bad address in a flag, the environment or the file gets the same
/// one-line answer.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Settings {
    /// A TOML file of settings; flags and IDMESH_* variables override it.
    #[arg(long = "config", env = "IDMESH_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where the SQLite database (and `idmesh dev`'s dev.json) lives [default: .idmesh].
    #[arg(long, env = "IDMESH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://…, postgresql://… or sqlite://… [default: SQLite in the data dir].
    #[arg(long, env = "IDMESH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where session-service keeps sessions: redis://… (or rediss://) for one
    /// Redis, or redis+cluster://host:port,host:port,… for a Redis Cluster.
    /// Without it, sessions stay in the process, which is right for one
    /// replica only.
    #[arg(long, env = "IDMESH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// The gateway's HTTP listen address [default: 127.0.0.1:8080 in dev, 0.0.0.0:8080 in serve].
    #[arg(long, env = "IDMESH_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// directory-service's gRPC listen address [default: 127.0.0.1:0 in dev, 0.0.0.0:50051 in serve].
    #[arg(long, env = "IDMESH_DIRECTORY_LISTEN_ADDR")]
    pub directory_listen_addr: Option<String>,
    /// user-service's gRPC listen address [default: 127.0.0.1:0 in dev, 0.0.0.0:50052 in serve].
    #[arg(long, env = "IDMESH_USER_LISTEN_ADDR")]
    pub user_listen_addr: Option<String>,
    /// group-service's gRPC listen address [default: 127.0.0.1:0 in dev, 0.0.0.0:50054 in serve].
    #[arg(long, env = "IDMESH_GROUP_LISTEN_ADDR")]
    pub group_listen_addr: Option<String>,
    /// session-service's gRPC listen address [default: 127.0.0.1:0 in dev, 0.0.0.0:50053 in serve].
    #[arg(long, env = "IDMESH_SESSION_LISTEN_ADDR")]
    pub session_listen_addr: Option<String>,
    /// role-mapping-service's gRPC listen address [default: 127.0.0.1:0 in dev, 0.0.0.0:50055 in serve].
    #[arg(long, env = "IDMESH_ROLE_LISTEN_ADDR")]
    pub role_listen_addr: Option<String>,
    /// events-service's gRPC listen address [default: 127.0.0.1:0 in dev, 0.0.0.0:50056 in serve].
    #[arg(long, env = "IDMESH_EVENT_LISTEN_ADDR")]
    pub event_listen_addr: Option<String>,
    /// Where the gateway reaches directory-service when it runs in another
    /// process [default: 127.0.0.1:50051].
    #[arg(long, env = "IDMESH_DIRECTORY_ADDR")]
    pub directory_addr: Option<String>,
    /// Where the gateway, group-service and role-mapping-service reach
    /// user-service when it runs in another process [default: 127.0.0.1:50052].
    #[arg(long, env = "IDMESH_USER_ADDR")]
    pub user_addr: Option<String>,
    /// Where the gateway, user-service and role-mapping-service reach
    /// group-service when it runs in another process: deleting a user
    /// removes it from every group there [default: 127.0.0.1:50054].
    #[arg(long, env = "IDMESH_GROUP_ADDR")]
    pub group_addr: Option<String>,
    /// Where user-service reaches session-service when it runs in another
    /// process: deactivating or deleting a user revokes their sessions there
    /// [default: 127.0.0.1:50053].
    #[arg(long, env = "IDMESH_SESSION_ADDR")]
    pub session_addr: Option<String>,
    /// Where events-service reaches role-mapping-service when it runs in
    /// another process, to log role events [default: none, no role events].
    #[arg(long, env = "IDMESH_ROLE_ADDR")]
    pub role_addr: Option<String>,
    /// Where role-mapping-service reaches events-service when it runs in
    /// another process: the change log that role events and revocations
    /// on role removal are decided from [default: none, neither].
    #[arg(long, env = "IDMESH_EVENT_ADDR")]
    pub event_addr: Option<String>,
    /// Externally visible base URL (http or https), for meta.location
    /// [default: the request's Host].
    #[arg(long, env = "IDMESH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve Prometheus metrics at http://<addr>/metrics (requests by route
    /// and gRPC method, the revocation backlog, …); none without it.
    #[arg(long, env = "IDMESH_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Export spans over OTLP/gRPC to this collector, plain http://
    /// (http://otel-collector:4317); the OTEL_* variables refine it
    /// (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, …). None without it.
    #[arg(long, env = "IDMESH_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// How log lines are written to stderr: text, or json (one object per
    /// line, with the trace id, for log pipelines) [default: text].
    #[arg(long, env = "IDMESH_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Above this many members, a group PATCH that names neither attributes
    /// nor excludedAttributes answers 204 No Content instead of the group
    /// [default: 10000].
    #[arg(long, env = "IDMESH_GROUP_PATCH_MEMBER_LIMIT")]
    pub group_patch_member_limit: Option<u64>,
    /// How long the gateway gives a SCIM request, in seconds; past it the
    /// request is answered 503 with Retry-After [default: 20].
    #[arg(long, env = "IDMESH_REQUEST_TIMEOUT_SECONDS")]
    pub request_timeout_seconds: Option<u64>,
    /// How many SCIM requests the gateway runs at once; more are answered
    /// 503 with Retry-After [default: 256].
    #[arg(long, env = "IDMESH_MAX_CONCURRENT_REQUESTS")]
    pub max_concurrent_requests: Option<usize>,
    /// How many bytes of request bodies the gateway's running requests may
    /// carry together; a request that does not fit waits up to 2 s, then
    /// is answered 503 with Retry-After [default: 2097152].
    #[arg(long, env = "IDMESH_MAX_BODY_BYTES_IN_FLIGHT")]
    pub max_body_bytes_in_flight: Option<usize>,
    /// Requests a second each directory may send, sustained, unless it has
    /// its own rate (idmesh directory rate-limit) [default: 50].
    #[arg(long, env = "IDMESH_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,
    /// Requests each directory may send at once [default: 100].
    #[arg(long, env = "IDMESH_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Bytes of a request's or an answer's body, beyond each one's first
    /// so many, that count as one request more against the directory's
    /// rate, so that a directory sending megabytes is held to its share of
    /// the work [default: 16384].
    #[arg(long, env = "IDMESH_RATE_LIMIT_BYTES_PER_REQUEST")]
    pub rate_limit_bytes_per_request: Option<usize>,
    /// The largest body of a single-resource request, in bytes; larger is
    /// 413. No PATCH may grow a user or group past it either (400)
    /// [default: 1048576].
    #[arg(long, env = "IDMESH_MAX_DOCUMENT_BYTES")]
    pub max_document_bytes: Option<usize>,
    /// How deeply a request's JSON may nest [default: 16, at most 127].
    #[arg(long, env = "IDMESH_MAX_JSON_DEPTH")]
    pub max_json_depth: Option<usize>,
    /// Operations in one PATCH [default: 1000].
    #[arg(long, env = "IDMESH_MAX_PATCH_OPERATIONS")]
    pub max_patch_operations: Option<usize>,
    /// Values of one multi-valued attribute of a user or group, such as
    /// emails [default: 1000].
    #[arg(long, env = "IDMESH_MAX_ATTRIBUTE_VALUES")]
    pub max_attribute_values: Option<usize>,
    /// Members one request may add or remove [default: 10000].
    #[arg(long, env = "IDMESH_MAX_MEMBERS_PER_REQUEST")]
    pub max_members_per_request: Option<usize>,
    /// How many live sessions session-service keeps per user; creating one
    /// more evicts (revokes) the user's sessions that expire first
    /// [default: 100].
    #[arg(long, env = "IDMESH_MAX_SESSIONS_PER_USER")]
    pub max_sessions_per_user: Option<usize>,
    /// How many days events-service keeps events; a watch or list from an
    /// older sequence number is refused with "cursorExpired" [default: 30].
    #[arg(long, env = "IDMESH_EVENT_RETENTION_DAYS")]
    pub event_retention_days: Option<u32>,
    /// How many seconds a WatchEvents stream stays silent before it sends a
    /// heartbeat [default: 15].
    #[arg(long, env = "IDMESH_EVENT_HEARTBEAT_SECONDS")]
    pub event_heartbeat_seconds: Option<u64>,
    /// How many hours events-service retries a webhook delivery that keeps
    /// failing before it disables the endpoint [default: 72].
    #[arg(long, env = "IDMESH_WEBHOOK_RETRY_HOURS")]
    pub webhook_retry_hours: Option<u64>,
    /// Whether webhook endpoints may be on private networks (loopback,
    /// 10/8, 172.16/12, 192.168/16, link-local such as the cloud metadata
    /// endpoint, …) [default: true for `idmesh dev`, false for `idmesh
    /// serve`].
    #[arg(long, env = "IDMESH_WEBHOOK_ALLOW_PRIVATE_NETWORKS", value_name = "BOOL")]
    pub webhook_allow_private_networks: Option<bool>,
    /// A file holding this process's own API key, which its services call
    /// with when directory-service runs elsewhere. The key itself can come
    /// from IDMESH_API_KEY instead, never from a flag.
    #[arg(long, env = "IDMESH_API_KEY_FILE", value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// A file holding a key with every scope that directory-service installs
    /// at start (e.g. a mounted Kubernetes Secret). The key itself can come
    /// from IDMESH_BOOTSTRAP_ADMIN_KEY instead, never from a flag.
    #[arg(long, env = "IDMESH_BOOTSTRAP_ADMIN_KEY_FILE", value_name = "FILE")]
    pub bootstrap_admin_key_file: Option<PathBuf>,
    /// A directory of API key files named after the services' targets
    /// (gateway, users, groups, sessions, roles, events; e.g. a mounted
    /// Kubernetes Secret) that directory-service installs at start, each
    /// with only its service's scopes; each service's process then calls
    /// with its own file as IDMESH_API_KEY_FILE.
    #[arg(long, env = "IDMESH_SERVICE_KEYS_DIR", value_name = "DIR")]
    pub service_keys_dir: Option<PathBuf>,
}

/// The API keys given in the environment itself rather than in files
/// (`IDMESH_API_KEY`, `IDMESH_BOOTSTRAP_ADMIN_KEY`). There are no flags for
/// them: a flag's value shows in `ps`.
#[derive(Debug, Default, Clone)]
pub struct EnvironmentKeys {
    pub api_key: Option<Secret>,
    pub bootstrap_admin_key: Option<Secret>,
}

impl EnvironmentKeys {
    /// The keys in this process's environment.
    pub fn from_env() -> EnvironmentKeys {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map(Secret);
        EnvironmentKeys {
            api_key: var("IDMESH_API_KEY"),
            bootstrap_admin_key: var("IDMESH_BOOTSTRAP_ADMIN_KEY"),
        }
    }
}

/// An API key: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

/// Shortest key accepted from a file or the environment: `idmk_` and 256
/// bits in hex. Keys are stored as a fast hash, so they must be
/// unguessable.
const MIN_KEY_LEN: usize = 5 + 64;

/// Which command the configuration is for: they differ only in defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `idmesh dev`: everything on loopback, internal ports picked by the
    /// kernel (a fixed port in Linux's ephemeral range can be taken by any
    /// client socket).
    Dev,
    /// `idmesh serve`: every address, fixed ports.
    Serve,
}

/// The effective configuration, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    pub http_addr: SocketAddr,
    pub directory_listen_addr: SocketAddr,
    pub user_listen_addr: SocketAddr,
    pub group_listen_addr: SocketAddr,
    pub session_listen_addr: SocketAddr,
    pub role_listen_addr: SocketAddr,
    pub event_listen_addr: SocketAddr,
    pub directory_addr: String,
    pub user_addr: String,
    pub group_addr: String,
    pub session_addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    #[serde(serialize_with = "as_text")]
    pub log_format: LogFormat,
    pub group_patch_member_limit: u64,
    pub request_timeout_seconds: u64,
    pub max_concurrent_requests: usize,
    pub max_body_bytes_in_flight: usize,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub rate_limit_bytes_per_request: usize,
    pub max_document_bytes: usize,
    pub max_json_depth: usize,
    pub max_patch_operations: usize,
    pub max_attribute_values: usize,
    pub max_members_per_request: usize,
    pub max_sessions_per_user: usize,
    pub event_retention_days: u32,
    pub event_heartbeat_seconds: u64,
    pub webhook_retry_hours: u64,
    pub webhook_allow_private_networks: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_admin_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_keys_dir: Option<PathBuf>,
    /// From `api_key_file`, else `IDMESH_API_KEY`.
    #[serde(skip)]
    pub api_key: Option<Secret>,
    /// From `bootstrap_admin_key_file`, else `IDMESH_BOOTSTRAP_ADMIN_KEY`.
    #[serde(skip)]
    pub bootstrap_admin_key: Option<Secret>,
    /// The keys in `service_keys_dir`, by target.
    #[serde(skip)]
    pub service_keys: Vec<(Target, Secret)>,
}

/// Why the configuration cannot be used; each says which file or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}, line {line}: {message}")]
    Parse { path: String, line: usize, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("cannot print the configuration: {0}")]
    Print(#[from] toml::ser::Error),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Settings {
    /// Each setting of `self`, or else of `lower`.
    fn or(self, lower: Settings) -> Settings {
        Settings {
            config: self.config.or(lower.config),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            redis_url: self.redis_url.or(lower.redis_url),
            http_addr: self.http_addr.or(lower.http_addr),
            directory_listen_addr: self.directory_listen_addr.or(lower.directory_listen_addr),
            user_listen_addr: self.user_listen_addr.or(lower.user_listen_addr),
            group_listen_addr: self.group_listen_addr.or(lower.group_listen_addr),
            session_listen_addr: self.session_listen_addr.or(lower.session_listen_addr),
            role_listen_addr: self.role_listen_addr.or(lower.role_listen_addr),
            event_listen_addr: self.event_listen_addr.or(lower.event_listen_addr),
            directory_addr: self.directory_addr.or(lower.directory_addr),
            user_addr: self.user_addr.or(lower.user_addr),
            group_addr: self.group_addr.or(lower.group_addr),
            session_addr: self.session_addr.or(lower.session_addr),
            role_addr: self.role_addr.or(lower.role_addr),
            event_addr: self.event_addr.or(lower.event_addr),
            public_url: self.public_url.or(lower.public_url),
            metrics_addr: self.metrics_addr.or(lower.metrics_addr),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
            log_format: self.log_format.or(lower.log_format),
            group_patch_member_limit: self.group_patch_member_limit.or(lower.group_patch_member_limit),
            request_timeout_seconds: self.request_timeout_seconds.or(lower.request_timeout_seconds),
            max_concurrent_requests: self.max_concurrent_requests.or(lower.max_concurrent_requests),
            max_body_bytes_in_flight: self.max_body_bytes_in_flight.or(lower.max_body_bytes_in_flight),
            rate_limit_per_second: self.rate_limit_per_second.or(lower.rate_limit_per_second),
            rate_limit_burst: self.rate_limit_burst.or(lower.rate_limit_burst),
            rate_limit_bytes_per_request: self.rate_limit_bytes_per_request.or(lower.rate_limit_bytes_per_request),
            max_document_bytes: self.max_document_bytes.or(lower.max_document_bytes),
            max_json_depth: self.max_json_depth.or(lower.max_json_depth),
            max_patch_operations: self.max_patch_operations.or(lower.max_patch_operations),
            max_attribute_values: self.max_attribute_values.or(lower.max_attribute_values),
            max_members_per_request: self.max_members_per_request.or(lower.max_members_per_request),
            max_sessions_per_user: self.max_sessions_per_user.or(lower.max_sessions_per_user),
            event_retention_days: self.event_retention_days.or(lower.event_retention_days),
            event_heartbeat_seconds: self.event_heartbeat_seconds.or(lower.event_heartbeat_seconds),
            webhook_retry_hours: self.webhook_retry_hours.or(lower.webhook_retry_hours),
            webhook_allow_private_networks: self
                .webhook_allow_private_networks
                .or(lower.webhook_allow_private_networks),
            api_key_file: self.api_key_file.or(lower.api_key_file),
            bootstrap_admin_key_file: self.bootstrap_admin_key_file.or(lower.bootstrap_admin_key_file),
            service_keys_dir: self.service_keys_dir.or(lower.service_keys_dir),
        }
    }
}

/// The configuration from `flags` (flags and environment, as clap parsed
/// them) over the file they name, if any, over `mode`'s defaults.
pub fn load(flags: Settings, mode: Mode, keys: EnvironmentKeys) -> Result<Config, ConfigError> {
    let file = match &flags.config {
        Some(path) => read_file(path)?,
        None => Settings::default(),
    };
    resolve(flags.or(file), mode, keys)
}

/// The key in `file` if one is named, else the one from the environment;
/// either must look like a key.
fn api_key(key: &'static str, file: Option<&Path>, from_env: Option<Secret>) -> Result<Option<Secret>, ConfigError> {
    let secret = match file {
        Some(path) => Secret(
            std::fs::read_to_string(path)
                .map_err(|err| invalid(key, format!("cannot read {}: {err}", path.display())))?
                .trim()
                .to_owned(),
        ),
        None => match from_env {
            Some(secret) => Secret(secret.0.trim().to_owned()),
            None => return Ok(None),
        },
    };
    let well_formed = secret.0.starts_with("idmk_")
        && secret.0.len() >= MIN_KEY_LEN
        && secret.0.bytes().all(|b| b.is_ascii_graphic());
    if !well_formed {
        return Err(invalid(
            key,
            "an API key is `idmk_` and at least 64 more printable characters (256 random bits in hex)",
        ));
    }
    Ok(Some(secret))
}

fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_file(&text, path)
}

fn parse_file(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    toml::from_str(text).map_err(|err| {
        let message = err.message().trim().to_owned();
        let line = unknown_key_line(text, &message).unwrap_or_else(|| {
            err.span()
                .map_or(1, |span| text[..span.start.min(text.len())].lines().count().max(1))
        });
        ConfigError::Parse {
            path: path.display().to_string(),
            line,
            message,
        }
    })
}

/// The line of the key an "unknown field" error names: toml reports such
/// an error against the whole table, which would point at line 1.
fn unknown_key_line(text: &str, message: &str) -> Option<usize> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    let index = text.lines().position(|line| {
        line.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })?;
    Some(index + 1)
}

/// Fills what is unset with `mode`'s defaults and checks every value.
fn resolve(settings: Settings, mode: Mode, keys: EnvironmentKeys) -> Result<Config, ConfigError> {
    let host: [u8; 4] = match mode {
        Mode::Dev => [127, 0, 0, 1],
        Mode::Serve => [0, 0, 0, 0],
    };
    let listen_default = |serve_port: u16| {
        let port = if mode == Mode::Dev { 0 } else { serve_port };
        SocketAddr::from((host, port))
    };
    let listen = |key: &'static str, value: Option<String>, default: SocketAddr| {
        value.map_or(Ok(default), |value| socket_addr(key, &value))
    };
    let peer = |key: &'static str, value: Option<String>, port: u16| match value {
        Some(value) => grpc_addr(key, &value),
        None => Ok(format!("127.0.0.1:{port}")),
    };

    let data_dir = settings.data_dir.unwrap_or_else(|| PathBuf::from(".idmesh"));
    if data_dir.as_os_str().is_empty() {
        return Err(invalid("data_dir", "must not be empty"));
    }
    let database_url = match settings.database_url {
        Some(url) => database_url(&url)?,
        None => format!("sqlite://{}", data_dir.join("idmesh.db").display()),
    };
    let limit = settings
        .group_patch_member_limit
        .unwrap_or(scim_gateway::DEFAULT_GROUP_PATCH_MEMBER_LIMIT);
    if limit == 0 {
        return Err(invalid(
            "group_patch_member_limit",
            "must be at least 1 (0 would answer every group PATCH with 204)",
        ));
    }
    let traffic = scim_gateway::Traffic::DEFAULT;
    let limits = scim::Limits::DEFAULT;
    let max_sessions_per_user = settings
        .max_sessions_per_user
        .unwrap_or(session_service::DEFAULT_MAX_SESSIONS_PER_USER);
    if max_sessions_per_user == 0 {
        return Err(invalid(
            "max_sessions_per_user",
            "must be at least 1 (0 would evict every session as it is created)",
        ));
    }
    Ok(Config {
        request_timeout_seconds: within(
            "request_timeout_seconds",
            settings.request_timeout_seconds,
            traffic.request_timeout.as_secs(),
            1..=MAX_REQUEST_TIMEOUT_SECONDS,
        )?,
        max_concurrent_requests: within(
            "max_concurrent_requests",
            settings.max_concurrent_requests,
            traffic.max_concurrent_requests,
            1..=tokio::sync::Semaphore::MAX_PERMITS,
        )?,
        // A request takes its body's bytes as permits, which tokio counts
        // in a u32.
        max_body_bytes_in_flight: within(
            "max_body_bytes_in_flight",
            settings.max_body_bytes_in_flight,
            traffic.max_body_bytes_in_flight,
            1..=u32::MAX as usize,
        )?,
        rate_limit_per_second: within(
            "rate_limit_per_second",
            settings.rate_limit_per_second,
            traffic.default_rate.per_second.get(),
            1..=u32::MAX,
        )?,
        rate_limit_burst: within(
            "rate_limit_burst",
            settings.rate_limit_burst,
            traffic.default_rate.burst.get(),
            1..=u32::MAX,
        )?,
        rate_limit_bytes_per_request: within(
            "rate_limit_bytes_per_request",
            settings.rate_limit_bytes_per_request,
            traffic.bytes_per_request.get(),
            1..=usize::MAX,
        )?,
        max_document_bytes: within(
            "max_document_bytes",
            settings.max_document_bytes,
            limits.max_document_bytes,
            1..=MAX_DOCUMENT_BYTES,
        )?,
        max_json_depth: within(
            "max_json_depth",
            settings.max_json_depth,
            limits.max_json_depth,
            1..=scim::Limits::JSON_DEPTH_CEILING,
        )?,
        max_patch_operations: within(
            "max_patch_operations",
            settings.max_patch_operations,
            limits.max_patch_operations,
            1..=usize::MAX,
        )?,
        max_attribute_values: within(
            "max_attribute_values",
            settings.max_attribute_values,
            limits.max_attribute_values,
            1..=usize::MAX,
        )?,
        max_members_per_request: within(
            "max_members_per_request",
            settings.max_members_per_request,
            limits.max_members_per_request,
            1..=usize::MAX,
        )?,
        database_url,
        redis_url: settings.redis_url.as_deref().map(redis_url).transpose()?,
        http_addr: listen("http_addr", settings.http_addr, SocketAddr::from((host, HTTP_PORT)))?,
        directory_listen_addr: listen(
            "directory_listen_addr",
            settings.directory_listen_addr,
            listen_default(SERVE_DIRECTORY_PORT),
        )?,
        user_listen_addr: listen(
            "user_listen_addr",
            settings.user_listen_addr,
            listen_default(SERVE_USER_PORT),
        )?,
        group_listen_addr: listen(
            "group_listen_addr",
            settings.group_listen_addr,
            listen_default(SERVE_GROUP_PORT),
        )?,
        session_listen_addr: listen(
            "session_listen_addr",
            settings.session_listen_addr,
            listen_default(SERVE_SESSION_PORT),
        )?,
        role_listen_addr: listen(
            "role_listen_addr",
            settings.role_listen_addr,
            listen_default(SERVE_ROLE_PORT),
        )?,
        event_listen_addr: listen(
            "event_listen_addr",
            settings.event_listen_addr,
            listen_default(SERVE_EVENT_PORT),
        )?,
        event_retention_days: within(
            "event_retention_days",
            settings.event_retention_days,
            DEFAULT_EVENT_RETENTION_DAYS,
            1..=MAX_EVENT_RETENTION_DAYS,
        )?,
        event_heartbeat_seconds: within(
            "event_heartbeat_seconds",
            settings.event_heartbeat_seconds,
            events_service::DEFAULT_HEARTBEAT.as_secs(),
            1..=MAX_EVENT_HEARTBEAT_SECONDS,
        )?,
        webhook_retry_hours: within(
            "webhook_retry_hours",
            settings.webhook_retry_hours,
            events_service::DEFAULT_WEBHOOK_RETRY_WINDOW.as_secs() / 3600,
            1..=MAX_WEBHOOK_RETRY_HOURS,
        )?,
        // A local `idmesh dev` delivers to endpoints on the same machine.
        webhook_allow_private_networks: settings.webhook_allow_private_networks.unwrap_or(mode == Mode::Dev),
        directory_addr: peer("directory_addr", settings.directory_addr, SERVE_DIRECTORY_PORT)?,
        user_addr: peer("user_addr", settings.user_addr, SERVE_USER_PORT)?,
        group_addr: peer("group_addr", settings.group_addr, SERVE_GROUP_PORT)?,
        session_addr: peer("session_addr", settings.session_addr, SERVE_SESSION_PORT)?,
        role_addr: settings
            .role_addr
            .map(|value| grpc_addr("role_addr", &value))
            .transpose()?,
        event_addr: settings
            .event_addr
            .map(|value| grpc_addr("event_addr", &value))
            .transpose()?,
        public_url: settings.public_url.as_deref().map(public_url).transpose()?,
        metrics_addr: settings
            .metrics_addr
            .map(|value| socket_addr("metrics_addr", &value))
            .transpose()?,
        otlp_endpoint: settings.otlp_endpoint.as_deref().map(otlp_endpoint).transpose()?,
        log_format: settings
            .log_format
            .map(|value| value.parse().map_err(|reason| invalid("log_format", reason)))
            .transpose()?
            .unwrap_or_default(),
        group_patch_member_limit: limit,
        max_sessions_per_user,
        data_dir,
        api_key: api_key("api_key_file", settings.api_key_file.as_deref(), keys.api_key)?,
        bootstrap_admin_key: api_key(
            "bootstrap_admin_key_file",
            settings.bootstrap_admin_key_file.as_deref(),
            keys.bootstrap_admin_key,
        )?,
        service_keys: settings
            .service_keys_dir
            .as_deref()
            .map(service_keys)
            .transpose()?
            .unwrap_or_default(),
        api_key_file: settings.api_key_file,
        bootstrap_admin_key_file: settings.bootstrap_admin_key_file,
        service_keys_dir: settings.service_keys_dir,
    })
}

/// The keys in `dir`, one file per target named after it. Hidden entries
/// (a mounted Secret's `..data` and its timestamped directory) are not
/// keys; any other name must be a target that calls other services.
fn service_keys(dir: &Path) -> Result<Vec<(Target, Secret)>, ConfigError> {
    const KEY: &str = "service_keys_dir";
    let unreadable = |err: std::io::Error| invalid(KEY, format!("cannot read {}: {err}", dir.display()));
    let mut names = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    names.sort();
    let mut keys = Vec::new();
    for name in names {
        if name.starts_with('.') {
            continue;
        }
        let target = <Target as clap::ValueEnum>::from_str(&name, false)
            .ok()
            .filter(|target| *target != Target::Directories)
            .ok_or_else(|| {
                invalid(
                    KEY,
                    format!("{name:?} in {} is not a service that needs a key (gateway, users, groups, sessions, roles, events)", dir.display()),
                )
            })?;
        let secret = api_key(KEY, Some(&dir.join(&name)), None)?.ok_or_else(|| invalid(KEY, "no key"))?;
        keys.push((target, secret));
    }
    Ok(keys)
}

/// How many days events are kept by default, and at most.
const DEFAULT_EVENT_RETENTION_DAYS: u32 = 30;
const MAX_EVENT_RETENTION_DAYS: u32 = 3_650;

/// The longest silence between heartbeats: load balancers and proxies
/// close idle streams after a few minutes.
const MAX_EVENT_HEARTBEAT_SECONDS: u64 = 300;
/// Thirty days: past that, an endpoint is better disabled and replayed.
const MAX_WEBHOOK_RETRY_HOURS: u64 = 30 * 24;

/// The longest request deadline accepted: IdPs give up long before.
const MAX_REQUEST_TIMEOUT_SECONDS: u64 = 300;

/// The largest document accepted: a document travels to its service in one
/// gRPC message, which tonic limits to 4 MiB.
const MAX_DOCUMENT_BYTES: usize = 2 * 1_048_576;

/// `value`, or `default` when unset, if it lies in `range`.
fn within<T>(
    key: &'static str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    let value = value.unwrap_or(default);
    if !range.contains(&value) {
        return Err(invalid(
            key,
            format!(
                "{value} is out of range: it must be between {} and {}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

fn socket_addr(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| invalid(key, format!("{value:?} is not a socket address (expected ip:port)")))
}

fn url(key: &'static str, value: &str) -> Result<url::Url, ConfigError> {
    url::Url::parse(value).map_err(|err| invalid(key, format!("{:?} is not a URL: {err}", mask(value))))
}

fn with_host(key: &'static str, value: &str) -> Result<url::Url, ConfigError> {
    let parsed = url(key, value)?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(key, format!("{:?} has no host", mask(value))));
    }
    Ok(parsed)
}

fn public_url(value: &str) -> Result<String, ConfigError> {
    const KEY: &str = "public_url";
    let parsed = with_host(KEY, value)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(KEY, format!("{value:?} must be an http:// or https:// URL")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(KEY, format!("{value:?} must have no query or fragment")));
    }
    Ok(value.to_owned())
}

fn otlp_endpoint(value: &str) -> Result<String, ConfigError> {
    const KEY: &str = "otlp_endpoint";
    // The exporter speaks plain HTTP/2: a collector on the node or in the
    // pod, which forwards over TLS if it must.
    if with_host(KEY, value)?.scheme() != "http" {
        return Err(invalid(
            KEY,
            format!("{value:?} must be the http:// URL of an OTLP/gRPC collector"),
        ));
    }
    Ok(value.to_owned())
}

/// Writes `format` into the printed configuration as its name.
fn as_text<S: serde::Serializer>(format: &LogFormat, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(format.as_str())
}

fn database_url(value: &str) -> Result<String, ConfigError> {
    const KEY: &str = "database_url";
    if let Some(path) = value.strip_prefix("sqlite:") {
        if path.trim_start_matches('/').is_empty() {
            return Err(invalid(KEY, format!("{value:?} names no SQLite file")));
        }
        return Ok(value.to_owned());
    }
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        with_host(KEY, value)?;
        return Ok(value.to_owned());
    }
    Err(invalid(
        KEY,
        format!(
            "{:?} must start with postgres://, postgresql:// or sqlite://",
            mask(value)
        ),
    ))
}

fn redis_url(value: &str) -> Result<String, ConfigError> {
    const KEY: &str = "redis_url";
    if let Some(rest) = value.strip_prefix("redis+cluster://") {
        let nodes = rest.rsplit_once('@').map_or(rest, |(_, nodes)| nodes);
        let nodes = nodes.trim_end_matches('/');
        if nodes.is_empty() {
            return Err(invalid(KEY, format!("{:?} names no cluster node", mask(value))));
        }
        for node in nodes.split(',') {
            host_port(node.trim()).ok_or_else(|| {
                invalid(
                    KEY,
                    format!("cluster node {node:?} in {:?} is not host:port", mask(value)),
                )
            })?;
        }
        return Ok(value.to_owned());
    }
    if value.starts_with("redis://") || value.starts_with("rediss://") {
        with_host(KEY, value)?;
        return Ok(value.to_owned());
    }
    Err(invalid(
        KEY,
        format!(
            "{:?} must start with redis://, rediss:// or redis+cluster://",
            mask(value)
        ),
    ))
}

/// A peer's gRPC address: `host:port`, or an `http(s)://host:port` URI.
fn grpc_addr(key: &'static str, value: &str) -> Result<String, ConfigError> {
    let valid = if value.contains("://") {
        url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
    } else {
        host_port(value).is_some()
    };
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            key,
            format!("{value:?} is not a gRPC address (expected host:port or http://host:port)"),
        ))
    }
}

fn host_port(value: &str) -> Option<(&str, u16)> {
    let (host, port) = value.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && !host.contains(['/', '@', ' '])).then_some((host, port))
}

/// `url` with the password of its user info, and any `password=` query
/// parameter, replaced by `***`.
pub fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:{MASK}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}={MASK}"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl Config {
    /// The configuration as a TOML file that [`load`] reads back, with the
    /// secrets in the database and Redis URLs masked.
    pub fn to_masked_toml(&self) -> Result<String, ConfigError> {
        let masked = Config {
            database_url: mask(&self.database_url),
            redis_url: self.redis_url.as_deref().map(mask),
            ..self.clone()
        };
        let mut text = toml::to_string(&masked)?;
        // The keys themselves are never printed; say only that they are set.
        for (name, set) in [
            ("api_key", self.api_key.is_some()),
            ("bootstrap_admin_key", self.bootstrap_admin_key.is_some()),
        ] {
            if set {
                text.push_str(&format!("# {name} = \"{MASK}\"\n"));
            }
        }
        Ok(text)
    }

    /// What [`idmesh::launch`] needs.
    pub fn mesh(&self) -> MeshConfig {
        MeshConfig {
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            http_addr: self.http_addr,
            directory_listen_addr: self.directory_listen_addr,
            user_listen_addr: self.user_listen_addr,
            group_listen_addr: self.group_listen_addr,
            session_listen_addr: self.session_listen_addr,
            role_listen_addr: self.role_listen_addr,
            event_listen_addr: self.event_listen_addr,
            directory_addr: self.directory_addr.clone(),
            user_addr: self.user_addr.clone(),
            group_addr: self.group_addr.clone(),
            session_addr: self.session_addr.clone(),
            role_addr: self.role_addr.clone(),
            event_addr: self.event_addr.clone(),
            public_url: self.public_url.clone(),
            group_patch_member_limit: self.group_patch_member_limit,
            max_sessions_per_user: self.max_sessions_per_user,
            event_retention: std::time::Duration::from_secs(u64::from(self.event_retention_days) * 24 * 60 * 60),
            event_heartbeat: std::time::Duration::from_secs(self.event_heartbeat_seconds),
            webhook_retry_window: std::time::Duration::from_secs(self.webhook_retry_hours * 60 * 60),
            webhook_allow_private_networks: self.webhook_allow_private_networks,
            api_key: self.api_key.as_ref().map(|secret| secret.0.clone()),
            bootstrap_admin_key: self.bootstrap_admin_key.as_ref().map(|secret| secret.0.clone()),
            service_keys: self
                .service_keys
                .iter()
                .map(|(target, secret)| (*target, secret.0.clone()))
                .collect(),
            key_cache_ttl: idmesh_runtime::auth::resolve::DEFAULT_CACHE_TTL,
            token_cache_ttl: scim_gateway::DEFAULT_TOKEN_CACHE_TTL,
            traffic: scim_gateway::Traffic {
                request_timeout: std::time::Duration::from_secs(self.request_timeout_seconds),
                max_concurrent_requests: self.max_concurrent_requests,
                max_body_bytes_in_flight: self.max_body_bytes_in_flight,
                default_rate: scim_gateway::Rate {
                    per_second: nonzero(self.rate_limit_per_second),
                    burst: nonzero(self.rate_limit_burst),
                },
                bytes_per_request: std::num::NonZeroUsize::new(self.rate_limit_bytes_per_request)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            },
            limits: scim::Limits {
                max_document_bytes: self.max_document_bytes,
                max_json_depth: self.max_json_depth,
                max_patch_operations: self.max_patch_operations,
                max_attribute_values: self.max_attribute_values,
                max_members_per_request: self.max_members_per_request,
            },
        }
    }
}

/// A rate [`resolve`] checked to be at least 1.
fn nonzero(value: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(value).unwrap_or(std::num::NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Settings {
        parse_file(text, Path::new("idmesh.toml")).expect("a valid file")
    }

    fn invalid_key(settings: Settings, mode: Mode) -> &'static str {
        match resolve(settings, mode, EnvironmentKeys::default()) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    #[test]
    fn flags_and_environment_win_over_the_file_and_the_file_over_the_defaults() {
        let flags = Settings {
            public_url: Some("https://flag.example.com".into()),
            ..Settings::default()
        };
        let file = file(
            r#"
            public_url = "https://file.example.com"
            http_addr = "127.0.0.1:9090"
            group_patch_member_limit = 50
            "#,
        );
        let config = resolve(flags.or(file), Mode::Serve, EnvironmentKeys::default()).expect("valid");
        assert_eq!(config.public_url.as_deref(), Some("https://flag.example.com"));
        assert_eq!(config.http_addr, "127.0.0.1:9090".parse().expect("an address"));
        assert_eq!(config.group_patch_member_limit, 50);
        assert_eq!(config.user_listen_addr, "0.0.0.0:50052".parse().expect("an address"));
        assert_eq!(config.metrics_addr, None);
        assert_eq!(config.otlp_endpoint, None);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn dev_binds_loopback_with_kernel_picked_internal_ports_and_serve_binds_everything_on_fixed_ports() {
        let dev = resolve(Settings::default(), Mode::Dev, EnvironmentKeys::default()).expect("valid");
        assert_eq!(dev.http_addr, "127.0.0.1:8080".parse().expect("an address"));
        for addr in [
            dev.directory_listen_addr,
            dev.user_listen_addr,
            dev.group_listen_addr,
            dev.session_listen_addr,
            dev.role_listen_addr,
            dev.event_listen_addr,
        ] {
            assert_eq!(addr, "127.0.0.1:0".parse().expect("an address"));
        }
        let serve = resolve(Settings::default(), Mode::Serve, EnvironmentKeys::default()).expect("valid");
        assert_eq!(serve.http_addr, "0.0.0.0:8080".parse().expect("an address"));
        assert_eq!(
            [
                serve.directory_listen_addr.port(),
                serve.user_listen_addr.port(),
                serve.session_listen_addr.port(),
                serve.group_listen_addr.port(),
                serve.role_listen_addr.port(),
                serve.event_listen_addr.port(),
            ],
            [50051, 50052, 50053, 50054, 50055, 50056]
        );
        // A local dev delivers webhooks to the same machine; serve only to
        // public addresses unless told otherwise.
        assert!(dev.webhook_allow_private_networks);
        assert!(!serve.webhook_allow_private_networks);
        assert!(serve.directory_listen_addr.ip().is_unspecified());
    }

    #[test]
    fn the_default_database_is_sqlite_in_the_data_dir_wherever_the_data_dir_is_set() {
        let config = resolve(
            file(r#"data_dir = "/srv/idmesh""#),
            Mode::Dev,
            EnvironmentKeys::default(),
        )
        .expect("valid");
        assert_eq!(config.database_url, "sqlite:///srv/idmesh/idmesh.db");
        let config = resolve(Settings::default(), Mode::Serve, EnvironmentKeys::default()).expect("valid");
        assert_eq!(config.database_url, "sqlite://.idmesh/idmesh.db");
    }

    #[test]
    fn service_keys_are_read_by_target_name_skipping_a_mounted_secrets_hidden_entries() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = |n: u8| format!("idmk_{}", format!("{n:02x}").repeat(32));
        std::fs::write(dir.path().join("users"), format!("{}\n", key(1))).expect("written");
        std::fs::write(dir.path().join("events"), key(2)).expect("written");
        std::fs::create_dir(dir.path().join("..2026_12_06")).expect("a hidden directory");
        let settings = Settings {
            service_keys_dir: Some(dir.path().to_owned()),
            ..Settings::default()
        };
        let config = resolve(settings.clone(), Mode::Serve, EnvironmentKeys::default()).expect("valid");
        assert_eq!(
            config.service_keys,
            [(Target::Events, Secret(key(2))), (Target::Users, Secret(key(1)))]
        );
        assert_eq!(
            config.mesh().service_keys,
            [(Target::Events, key(2)), (Target::Users, key(1))]
        );

        for (name, content) in [
            ("payroll", key(3)),
            ("directories", key(3)),
            ("groups", "idmk_short".to_owned()),
        ] {
            let bad = tempfile::tempdir().expect("a temporary directory");
            std::fs::write(bad.path().join(name), content).expect("written");
            let settings = Settings {
                service_keys_dir: Some(bad.path().to_owned()),
                ..Settings::default()
            };
            assert_eq!(invalid_key(settings, Mode::Serve), "service_keys_dir", "{name}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let with = |f: fn(&mut Settings)| {
            let mut settings = Settings::default();
            f(&mut settings);
            settings
        };
        let cases = [
            (with(|s| s.public_url = Some("not a url".into())), "public_url"),
            (with(|s| s.public_url = Some("ftp://example.com".into())), "public_url"),
            (
                with(|s| s.public_url = Some("https://example.com/?x=1".into())),
                "public_url",
            ),
            (
                with(|s| s.database_url = Some("mysql://db/idmesh".into())),
                "database_url",
            ),
            (with(|s| s.database_url = Some("postgres://".into())), "database_url"),
            (with(|s| s.database_url = Some("sqlite://".into())), "database_url"),
            (with(|s| s.redis_url = Some("http://redis:6379".into())), "redis_url"),
            (
                with(|s| s.redis_url = Some("redis+cluster://a:1,b".into())),
                "redis_url",
            ),
            (with(|s| s.http_addr = Some("localhost".into())), "http_addr"),
            (
                with(|s| s.session_listen_addr = Some("127.0.0.1:99999".into())),
                "session_listen_addr",
            ),
            (with(|s| s.metrics_addr = Some(":9000".into())), "metrics_addr"),
            (
                with(|s| s.otlp_endpoint = Some("otel-collector:4317".into())),
                "otlp_endpoint",
            ),
            (
                with(|s| s.otlp_endpoint = Some("https://collector:4317".into())),
                "otlp_endpoint",
            ),
            (with(|s| s.log_format = Some("logfmt".into())), "log_format"),
            (with(|s| s.user_addr = Some("user-service".into())), "user_addr"),
            (
                with(|s| s.group_patch_member_limit = Some(0)),
                "group_patch_member_limit",
            ),
            (with(|s| s.max_sessions_per_user = Some(0)), "max_sessions_per_user"),
            (with(|s| s.event_retention_days = Some(0)), "event_retention_days"),
            (
                with(|s| s.event_heartbeat_seconds = Some(301)),
                "event_heartbeat_seconds",
            ),
            (with(|s| s.webhook_retry_hours = Some(0)), "webhook_retry_hours"),
        ];
        for (settings, key) in cases {
            assert_eq!(invalid_key(settings, Mode::Serve), key);
        }
    }

    #[test]
    fn good_values_pass_unchanged() {
        let settings = file(
            r#"
            database_url = "postgresql://app:pw@db.internal:5432/idmesh?sslmode=require"
            redis_url = "redis+cluster://:pw@10.0.0.1:7001,10.0.0.2:7001"
            public_url = "https://scim.example.com/"
            directory_addr = "http://directory-service:50051"
            user_addr = "user-service:50052"
            role_addr = "role-mapping-service:50055"
            metrics_addr = "[::]:9090"
            otlp_endpoint = "http://otel-collector.monitoring:4317"
            log_format = "json"
            "#,
        );
        let config = resolve(settings, Mode::Serve, EnvironmentKeys::default()).expect("valid");
        assert_eq!(
            config.otlp_endpoint.as_deref(),
            Some("http://otel-collector.monitoring:4317")
        );
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.database_url,
            "postgresql://app:pw@db.internal:5432/idmesh?sslmode=require"
        );
        assert_eq!(config.directory_addr, "http://directory-service:50051");
        assert_eq!(config.role_addr.as_deref(), Some("role-mapping-service:50055"));
        assert_eq!(config.event_addr, None, "no default: without it, no role events");
        assert_eq!(config.public_url.as_deref(), Some("https://scim.example.com/"));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_with_its_line() {
        let err = parse_file(
            "http_addr = \"127.0.0.1:1\"\ndatabse_url = \"x\"\n",
            Path::new("f.toml"),
        )
        .expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains("line 2") && text.contains("databse_url"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn the_config_key_itself_is_not_a_file_key() {
        parse_file("config = \"other.toml\"", Path::new("f.toml")).expect_err("no nesting of files");
    }

    #[test]
    fn secrets_in_urls_are_masked() {
        assert_eq!(
            mask("postgres://app:s3cret@db:5432/idmesh"),
            "postgres://app:***@db:5432/idmesh"
        );
        assert_eq!(mask("redis://:hunter2@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(
            mask("redis+cluster://:pw@a:7001,b:7001"),
            "redis+cluster://:***@a:7001,b:7001"
        );
        assert_eq!(
            mask("postgres://db/idmesh?user=app&password=s3cret"),
            "postgres://db/idmesh?user=app&password=***"
        );
        assert_eq!(mask("sqlite://.idmesh/idmesh.db"), "sqlite://.idmesh/idmesh.db");
    }

    #[test]
    fn the_printed_configuration_reads_back_as_the_same_configuration() {
        let config = resolve(
            file(r#"public_url = "https://scim.example.com""#),
            Mode::Dev,
            EnvironmentKeys::default(),
        )
        .expect("valid");
        let printed = config.to_masked_toml().expect("TOML");
        let again = resolve(
            parse_file(&printed, Path::new("printed.toml")).expect("valid"),
            Mode::Serve,
            EnvironmentKeys::default(),
        )
        .expect("valid");
        assert_eq!(again, config);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    fn key() -> String {
        format!("idmk_{}", "ab".repeat(32))
    }

    #[test]
    fn keys_come_from_files_or_the_environment_and_are_never_printed() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("api-key");
        std::fs::write(&path, format!("{}\n", key())).expect("written");
        let settings = Settings {
            api_key_file: Some(path.clone()),
            ..Settings::default()
        };
        let environment = EnvironmentKeys {
            api_key: None,
            bootstrap_admin_key: Some(Secret(key())),
        };
        let config = resolve(settings, Mode::Serve, environment).expect("valid");
        assert_eq!(config.api_key, Some(Secret(key())));
        assert_eq!(config.bootstrap_admin_key, Some(Secret(key())));

        let printed = config.to_masked_toml().expect("printable");
        assert!(!printed.contains(&key()), "{printed}");
        assert!(printed.contains("# api_key = \"***\""), "{printed}");
        assert!(printed.contains("# bootstrap_admin_key = \"***\""), "{printed}");
        assert!(!format!("{config:?}").contains(&key()));
    }

    #[test]
    fn a_short_or_unprefixed_key_is_refused() {
        for bad in [
            "idmk_short",
            "not-a-key-at-all-but-long-enough-to-pass-a-length-check-xxxxxxxxxxxxxxx",
        ] {
            let environment = EnvironmentKeys {
                api_key: Some(Secret(bad.to_owned())),
                bootstrap_admin_key: None,
            };
            let err = resolve(Settings::default(), Mode::Serve, environment).expect_err("invalid");
            assert!(err.to_string().starts_with("api_key_file:"), "{err}");
            assert!(!err.to_string().contains(bad));
        }
    }
}
