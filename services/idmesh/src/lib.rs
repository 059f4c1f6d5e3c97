//! Runs any set of idmesh services in one process, the way Loki and Mimir
//! run as one binary with `-target`: `idmesh dev` runs them all, a Kubernetes
//! Deployment runs one. In-process services still talk real gRPC over
//! loopback, so every mode runs the same code path.

use std::net::SocketAddr;
use std::time::Duration;

use directory_service::BootstrapKey;
pub use directory_service::generate_api_key;
use idmesh_runtime::auth::{Credential, Scope, ServiceIdentity};

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A service the process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Target {
    /// The SCIM HTTP endpoint.
    Gateway,
    /// directory-service: directories and tokens.
    Directories,
    /// user-service: users.
    Users,
    /// group-service: groups and their members.
    Groups,
    /// session-service: sessions, revocation and the revocation watch.
    Sessions,
    /// role-mapping-service: roles, role and attribute mappings, effective
    /// roles and profiles.
    Roles,
    /// events-service: each directory's ordered change log, drained from
    /// user-service and group-service.
    Events,
}

impl Target {
    /// Every target: the whole mesh, as `idmesh dev` runs it.
    pub const ALL: [Target; 7] = [
        Target::Directories,
        Target::Users,
        Target::Groups,
        Target::Sessions,
        Target::Roles,
        Target::Events,
        Target::Gateway,
    ];
}

/// Where each target listens and how it reaches the others.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub database_url: String,
    /// Where session-service keeps sessions: `redis://…` or
    /// `redis+cluster://…`; `None` keeps them in the process.
    pub redis_url: Option<String>,
    /// The gateway's HTTP listen address.
    pub http_addr: SocketAddr,
    pub directory_listen_addr: SocketAddr,
    pub user_listen_addr: SocketAddr,
    pub group_listen_addr: SocketAddr,
    pub session_listen_addr: SocketAddr,
    pub role_listen_addr: SocketAddr,
    pub event_listen_addr: SocketAddr,
    /// Where the gateway reaches directory-service when it runs elsewhere.
    pub directory_addr: String,
    /// Where the gateway, group-service, role-mapping-service and
    /// events-service reach user-service when it runs elsewhere.
    pub user_addr: String,
    /// Where the gateway, user-service, role-mapping-service and
    /// events-service reach group-service when it runs elsewhere.
    pub group_addr: String,
    /// Where user-service and role-mapping-service reach session-service
    /// when it runs elsewhere.
    pub session_addr: String,
    /// Where events-service reaches role-mapping-service when it runs
    /// elsewhere; none: no role events.
    pub role_addr: Option<String>,
    /// Where role-mapping-service reaches events-service when it runs
    /// elsewhere; none: no role events and no revocations on role removal.
    pub event_addr: Option<String>,
    pub public_url: Option<String>,
    /// The member count above which the gateway answers a group PATCH with
    /// 204 (see [`scim_gateway::Config::group_patch_member_limit`]).
    pub group_patch_member_limit: u64,
    /// How many live sessions session-service keeps per user; creating one
    /// more evicts those expiring first.
    pub max_sessions_per_user: usize,
    /// How long events-service keeps events.
    pub event_retention: Duration,
    /// How long a WatchEvents stream stays silent before a heartbeat.
    pub event_heartbeat: Duration,
    /// How long a webhook delivery is retried before its endpoint is
    /// disabled.
    pub webhook_retry_window: Duration,
    /// Whether webhook endpoints may be on private networks.
    pub webhook_allow_private_networks: bool,
    /// This process's own API key, for its services' calls when
    /// directory-service runs elsewhere (with it, the services of a process
    /// that also runs directory-service get keys of their own).
    pub api_key: Option<String>,
    /// A key with every scope that directory-service installs at start.
    pub bootstrap_admin_key: Option<String>,
    /// Keys that directory-service installs at start for the services of
    /// other processes, each with its target's scopes (the Helm chart's
    /// per-component keys).
    pub service_keys: Vec<(Target, String)>,
    /// How long the services trust a resolved caller's key: how long a
    /// revoked key may keep working.
    pub key_cache_ttl: Duration,
    /// How long the gateway trusts a resolved SCIM bearer token: how long a
    /// revoked token keeps working, and a directory's new rate takes to
    /// apply.
    pub token_cache_ttl: Duration,
    /// The gateway's deadlines, concurrency and default directory rate.
    pub traffic: scim_gateway::Traffic,
    /// What one request may ask of the gateway and the services.
    pub limits: scim::Limits,
}

/// The name directory-service installs the bootstrap admin key under.
pub const BOOTSTRAP_ADMIN_KEY_NAME: &str = "bootstrap-admin";

/// The scopes each service's own key needs, and nothing more.
pub const GATEWAY_SCOPES: &[Scope] = &[
    Scope::ScimTokensResolve,
    Scope::UsersRead,
    Scope::UsersWrite,
    Scope::GroupsRead,
    Scope::GroupsWrite,
];
pub const USER_SERVICE_SCOPES: &[Scope] = &[Scope::ApiKeysAuthenticate, Scope::SessionsWrite, Scope::GroupsWrite];
pub const GROUP_SERVICE_SCOPES: &[Scope] = &[Scope::ApiKeysAuthenticate, Scope::UsersRead];
pub const SESSION_SERVICE_SCOPES: &[Scope] = &[Scope::ApiKeysAuthenticate];
pub const ROLE_SERVICE_SCOPES: &[Scope] = &[
    Scope::ApiKeysAuthenticate,
    Scope::UsersRead,
    Scope::GroupsRead,
    Scope::EventsRead,
    Scope::SessionsWrite,
];
pub const EVENT_SERVICE_SCOPES: &[Scope] = &[Scope::ApiKeysAuthenticate, Scope::EventsDrain];

impl Target {
    /// What this target's own key is called and may do.
    fn identity(self) -> Option<(&'static str, &'static [Scope])> {
        match self {
            Target::Gateway => Some(("idmesh:gateway", GATEWAY_SCOPES)),
            Target::Users => Some(("idmesh:user-service", USER_SERVICE_SCOPES)),
            Target::Groups => Some(("idmesh:group-service", GROUP_SERVICE_SCOPES)),
            Target::Sessions => Some(("idmesh:session-service", SESSION_SERVICE_SCOPES)),
            Target::Roles => Some(("idmesh:role-mapping-service", ROLE_SERVICE_SCOPES)),
            Target::Events => Some(("idmesh:events-service", EVENT_SERVICE_SCOPES)),
            Target::Directories => None,
        }
    }
}

impl MeshConfig {
    /// Every target on 127.0.0.1 with a port the OS picks, reaching the others
    /// at their bound addresses: how tests run a whole mesh side by side.
    pub fn loopback(database_url: String) -> MeshConfig {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        MeshConfig {
            database_url,
            redis_url: None,
            http_addr: any_port,
            directory_listen_addr: any_port,
            user_listen_addr: any_port,
            group_listen_addr: any_port,
            session_listen_addr: any_port,
            role_listen_addr: any_port,
            event_listen_addr: any_port,
            directory_addr: String::new(),
            user_addr: String::new(),
            group_addr: String::new(),
            session_addr: String::new(),
            role_addr: None,
            event_addr: None,
            public_url: None,
            group_patch_member_limit: scim_gateway::DEFAULT_GROUP_PATCH_MEMBER_LIMIT,
            max_sessions_per_user: session_service::DEFAULT_MAX_SESSIONS_PER_USER,
            event_retention: events_service::DEFAULT_RETENTION,
            event_heartbeat: events_service::DEFAULT_HEARTBEAT,
            webhook_retry_window: events_service::DEFAULT_WEBHOOK_RETRY_WINDOW,
            // Tests deliver to endpoints on loopback.
            webhook_allow_private_networks: true,
            api_key: None,
            bootstrap_admin_key: None,
            service_keys: Vec::new(),
            key_cache_ttl: idmesh_runtime::auth::resolve::DEFAULT_CACHE_TTL,
            token_cache_ttl: scim_gateway::DEFAULT_TOKEN_CACHE_TTL,
            // Tests send faster than any IdP; a test of the rate limit sets
            // its own.
            traffic: scim_gateway::Traffic {
                default_rate: scim_gateway::Rate {
                    per_second: std::num::NonZeroU32::MAX,
                    burst: std::num::NonZeroU32::MAX,
                },
                ..scim_gateway::Traffic::DEFAULT
            },
            limits: scim::Limits::DEFAULT,
        }
    }
}

/// The targets of a running process and the addresses they are bound to.
#[derive(Debug)]
pub struct Mesh {
    pub http_addr: Option<SocketAddr>,
    pub directory_addr: Option<SocketAddr>,
    pub user_addr: Option<SocketAddr>,
    pub group_addr: Option<SocketAddr>,
    pub session_addr: Option<SocketAddr>,
    pub role_addr: Option<SocketAddr>,
    pub event_addr: Option<SocketAddr>,
    tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
}

/// Binds every target's listener (so port 0 works and peers know the real
/// addresses), then starts the targets.
pub async fn launch(targets: &[Target], config: MeshConfig, shutdown: CancellationToken) -> anyhow::Result<Mesh> {
    async fn bind(wanted: bool, addr: SocketAddr) -> anyhow::Result<Option<TcpListener>> {
        if !wanted {
            return Ok(None);
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))?;
        Ok(Some(listener))
    }
    let directory_listener = bind(targets.contains(&Target::Directories), config.directory_listen_addr).await?;
    let user_listener = bind(targets.contains(&Target::Users), config.user_listen_addr).await?;
    let group_listener = bind(targets.contains(&Target::Groups), config.group_listen_addr).await?;
    let session_listener = bind(targets.contains(&Target::Sessions), config.session_listen_addr).await?;
    let role_listener = bind(targets.contains(&Target::Roles), config.role_listen_addr).await?;
    let event_listener = bind(targets.contains(&Target::Events), config.event_listen_addr).await?;
    let gateway_listener = bind(targets.contains(&Target::Gateway), config.http_addr).await?;

    let local = |listener: &Option<TcpListener>| listener.as_ref().and_then(|l| l.local_addr().ok());
    let mut mesh = Mesh {
        http_addr: local(&gateway_listener),
        directory_addr: local(&directory_listener),
        user_addr: local(&user_listener),
        group_addr: local(&group_listener),
        session_addr: local(&session_listener),
        role_addr: local(&role_listener),
        event_addr: local(&event_listener),
        tasks: JoinSet::new(),
        shutdown: shutdown.clone(),
    };

    // A peer in this process is reached at its bound address, any other at
    // the configured one.
    let user_addr = mesh
        .user_addr
        .map_or_else(|| config.user_addr.clone(), |a| a.to_string());
    let group_addr = mesh
        .group_addr
        .map_or_else(|| config.group_addr.clone(), |a| a.to_string());
    let session_addr = mesh
        .session_addr
        .map_or_else(|| config.session_addr.clone(), |a| a.to_string());
    let role_addr = mesh
        .role_addr
        .map(|a| a.to_string())
        .or_else(|| config.role_addr.clone());
    let event_addr = mesh
        .event_addr
        .map(|a| a.to_string())
        .or_else(|| config.event_addr.clone());

    let directory_addr = mesh
        .directory_addr
        .map_or_else(|| config.directory_addr.clone(), |a| a.to_string());
    // With directory-service in this process, every other service here gets
    // a fresh key of its own, with only its scopes, installed at start;
    // otherwise they all call as the process's configured key.
    let mut bootstrap_keys = Vec::new();
    let mut identity_of = |target: Target| -> anyhow::Result<ServiceIdentity> {
        let secret = match (&directory_listener, target.identity()) {
            (Some(_), Some((name, scopes))) => {
                let secret = directory_service::generate_api_key()?;
                bootstrap_keys.push(BootstrapKey {
                    name: name.to_owned(),
                    secret: secret.clone(),
                    scopes: scopes.to_vec(),
                });
                secret
            }
            _ => config.api_key.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "{target:?} needs an API key when directory-service runs in another process: \
                     set IDMESH_API_KEY_FILE or IDMESH_API_KEY"
                )
            })?,
        };
        Ok(ServiceIdentity {
            directory_addr: directory_addr.clone(),
            credential: Credential::new(&secret)?,
            key_cache_ttl: config.key_cache_ttl,
        })
    };
    let user_identity = user_listener.as_ref().map(|_| identity_of(Target::Users)).transpose()?;
    let group_identity = group_listener
        .as_ref()
        .map(|_| identity_of(Target::Groups))
        .transpose()?;
    let session_identity = session_listener
        .as_ref()
        .map(|_| identity_of(Target::Sessions))
        .transpose()?;
    let role_identity = role_listener.as_ref().map(|_| identity_of(Target::Roles)).transpose()?;
    let event_identity = event_listener
        .as_ref()
        .map(|_| identity_of(Target::Events))
        .transpose()?;
    let gateway_identity = gateway_listener
        .as_ref()
        .map(|_| identity_of(Target::Gateway))
        .transpose()?;
    // Keys for the services of other processes; a service of this process
    // has its fresh key above, under the same name.
    if directory_listener.is_some() {
        for (target, secret) in &config.service_keys {
            if let Some((name, scopes)) = target.identity().filter(|_| !targets.contains(target)) {
                bootstrap_keys.push(BootstrapKey {
                    name: name.to_owned(),
                    secret: secret.clone(),
                    scopes: scopes.to_vec(),
                });
            }
        }
    }
    if let Some(secret) = &config.bootstrap_admin_key {
        bootstrap_keys.push(BootstrapKey {
            name: BOOTSTRAP_ADMIN_KEY_NAME.to_owned(),
            secret: secret.clone(),
            scopes: Scope::ALL.to_vec(),
        });
    }

    if let Some(listener) = directory_listener {
        let config = directory_service::Config {
            database_url: config.database_url.clone(),
            bootstrap_keys,
            key_cache_ttl: config.key_cache_ttl,
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(directory_service::serve(listener, config, shutdown).await?) });
    }
    if let (Some(listener), Some(identity)) = (user_listener, user_identity) {
        let config = user_service::Config {
            identity,
            database_url: config.database_url.clone(),
            session_addr: session_addr.clone(),
            group_addr: group_addr.clone(),
            limits: config.limits,
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(user_service::serve(listener, config, shutdown).await?) });
    }
    if let (Some(listener), Some(identity)) = (group_listener, group_identity) {
        let config = group_service::Config {
            identity,
            database_url: config.database_url.clone(),
            user_addr: user_addr.clone(),
            limits: config.limits,
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(group_service::serve(listener, config, shutdown).await?) });
    }
    if let (Some(listener), Some(identity)) = (session_listener, session_identity) {
        let config = session_service::Config {
            max_sessions_per_user: config.max_sessions_per_user,
            ..session_service::Config::new(config.redis_url.clone(), identity)
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(session_service::serve(listener, config, shutdown).await?) });
    }
    if let (Some(listener), Some(identity)) = (role_listener, role_identity) {
        let config = role_mapping_service::Config {
            identity,
            database_url: config.database_url.clone(),
            user_addr: user_addr.clone(),
            group_addr: group_addr.clone(),
            session_addr,
            event_addr,
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(role_mapping_service::serve(listener, config, shutdown).await?) });
    }
    if let (Some(listener), Some(identity)) = (event_listener, event_identity) {
        let config = events_service::Config {
            identity,
            database_url: config.database_url.clone(),
            user_addr: user_addr.clone(),
            group_addr: group_addr.clone(),
            role_addr,
            retention: config.event_retention,
            heartbeat: config.event_heartbeat,
            webhook_retry_window: config.webhook_retry_window,
            webhook_allow_private_networks: config.webhook_allow_private_networks,
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(events_service::serve(listener, config, shutdown).await?) });
    }
    if let (Some(listener), Some(identity)) = (gateway_listener, gateway_identity) {
        let config = scim_gateway::Config {
            credential: identity.credential,
            token_cache_ttl: config.token_cache_ttl,
            directory_addr,
            user_addr,
            group_addr,
            public_url: config.public_url,
            group_patch_member_limit: config.group_patch_member_limit,
            traffic: config.traffic,
            limits: config.limits,
        };
        let shutdown = shutdown.clone();
        mesh.tasks
            .spawn(async move { Ok(scim_gateway::serve(listener, config, shutdown).await?) });
    }
    Ok(mesh)
}

impl Mesh {
    /// Waits until every target has stopped. The first target to fail stops
    /// the others, and its error is returned.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|result| result);
            if let Err(err) = result {
                self.shutdown.cancel();
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
