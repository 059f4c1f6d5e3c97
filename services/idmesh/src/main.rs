//! The `idmesh` command: run the mesh (`dev`, `serve`) and administer it
//! (`directory`, `token`).

mod admin;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use idmesh::{MeshConfig, Target};
use tokio_util::sync::CancellationToken;

/// Self-hosted SCIM 2.0 provisioning: receive users and groups from Okta,
/// Entra ID and other identity providers.
#[derive(Debug, Parser)]
#[command(name = "idmesh", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole mesh in one process, on SQLite unless told otherwise.
    Dev(DevArgs),
    /// Run the chosen services (one Kubernetes Deployment each, or all).
    Serve(ServeArgs),
    /// Create and list directories.
    #[command(subcommand)]
    Directory(admin::DirectoryCommand),
    /// Issue, list and revoke a directory's bearer tokens.
    #[command(subcommand)]
    Token(admin::TokenCommand),
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Where the SQLite database lives.
    #[arg(long, env = "IDMESH_DATA_DIR", default_value = ".idmesh")]
    data_dir: PathBuf,
    /// The SCIM endpoint's listen address.
    #[arg(long, env = "IDMESH_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Use this database instead of SQLite in the data dir (postgres://… or sqlite://…).
    #[arg(long, env = "IDMESH_DATABASE_URL")]
    database_url: Option<String>,
    /// directory-service's listen address, which the admin commands talk to.
    #[arg(long, env = "IDMESH_DIRECTORY_LISTEN_ADDR", default_value = admin::DEFAULT_DIRECTORY_ADDR)]
    directory_listen_addr: SocketAddr,
    /// user-service's listen address.
    #[arg(long, env = "IDMESH_USER_LISTEN_ADDR", default_value = "127.0.0.1:50052")]
    user_listen_addr: SocketAddr,
    /// group-service's listen address.
    #[arg(long, env = "IDMESH_GROUP_LISTEN_ADDR", default_value = "127.0.0.1:50054")]
    group_listen_addr: SocketAddr,
    /// session-service's listen address.
    #[arg(long, env = "IDMESH_SESSION_LISTEN_ADDR", default_value = "127.0.0.1:50053")]
    session_listen_addr: SocketAddr,
    /// Keep sessions in Redis (redis://… or redis+cluster://host:port,host:port,…)
    /// instead of in this process.
    #[arg(long, env = "IDMESH_REDIS_URL")]
    redis_url: Option<String>,
    /// Externally visible base URL, for meta.location (default: the request's Host).
    #[arg(long, env = "IDMESH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Above this many members, a group PATCH that names neither attributes
    /// nor excludedAttributes answers 204 No Content instead of the group.
    #[arg(long, env = "IDMESH_GROUP_PATCH_MEMBER_LIMIT", default_value_t = scim_gateway::DEFAULT_GROUP_PATCH_MEMBER_LIMIT)]
    group_patch_member_limit: u64,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Which services this process runs.
    #[arg(long, env = "IDMESH_TARGETS", value_delimiter = ',', required = true)]
    targets: Vec<Target>,
    /// postgres://… or sqlite://… (directories, users and groups).
    #[arg(long, env = "IDMESH_DATABASE_URL", default_value = "sqlite://.idmesh/idmesh.db")]
    database_url: String,
    /// The gateway's HTTP listen address.
    #[arg(long, env = "IDMESH_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// directory-service's gRPC listen address.
    #[arg(long, env = "IDMESH_DIRECTORY_LISTEN_ADDR", default_value = "0.0.0.0:50051")]
    directory_listen_addr: SocketAddr,
    /// user-service's gRPC listen address.
    #[arg(long, env = "IDMESH_USER_LISTEN_ADDR", default_value = "0.0.0.0:50052")]
    user_listen_addr: SocketAddr,
    /// group-service's gRPC listen address.
    #[arg(long, env = "IDMESH_GROUP_LISTEN_ADDR", default_value = "0.0.0.0:50054")]
    group_listen_addr: SocketAddr,
    /// session-service's gRPC listen address.
    #[arg(long, env = "IDMESH_SESSION_LISTEN_ADDR", default_value = "0.0.0.0:50053")]
    session_listen_addr: SocketAddr,
    /// Where session-service keeps sessions: redis://… for one Redis, or
    /// redis+cluster://host:port,host:port,… for a Redis Cluster. Without it,
    /// sessions stay in the process, which is right for one replica only.
    #[arg(long, env = "IDMESH_REDIS_URL")]
    redis_url: Option<String>,
    /// Where the gateway reaches directory-service, when it runs elsewhere.
    #[arg(long, env = "IDMESH_DIRECTORY_ADDR", default_value = admin::DEFAULT_DIRECTORY_ADDR)]
    directory_addr: String,
    /// Where the gateway and group-service reach user-service, when it runs
    /// elsewhere.
    #[arg(long, env = "IDMESH_USER_ADDR", default_value = "127.0.0.1:50052")]
    user_addr: String,
    /// Where the gateway and user-service reach group-service, when it runs
    /// elsewhere: deleting a user removes it from every group there.
    #[arg(long, env = "IDMESH_GROUP_ADDR", default_value = "127.0.0.1:50054")]
    group_addr: String,
    /// Where user-service reaches session-service, when it runs elsewhere:
    /// deactivating or deleting a user revokes their sessions there.
    #[arg(long, env = "IDMESH_SESSION_ADDR", default_value = "127.0.0.1:50053")]
    session_addr: String,
    /// Externally visible base URL, for meta.location (default: the request's Host).
    #[arg(long, env = "IDMESH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve Prometheus metrics at http://<addr>/metrics (e.g. the session
    /// revocation backlog); none without it.
    #[arg(long, env = "IDMESH_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Above this many members, a group PATCH that names neither attributes
    /// nor excludedAttributes answers 204 No Content instead of the group.
    #[arg(long, env = "IDMESH_GROUP_PATCH_MEMBER_LIMIT", default_value_t = scim_gateway::DEFAULT_GROUP_PATCH_MEMBER_LIMIT)]
    group_patch_member_limit: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => {
            idmesh_runtime::telemetry::init();
            dev(args).await
        }
        Command::Serve(args) => {
            idmesh_runtime::telemetry::init();
            serve(args).await
        }
        Command::Directory(command) => admin::directory(command).await,
        Command::Token(command) => admin::token(command).await,
    }
}

async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let database_url = args
        .database_url
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("idmesh.db").display()));
    let config = MeshConfig {
        database_url,
        redis_url: args.redis_url,
        http_addr: args.http_addr,
        directory_listen_addr: args.directory_listen_addr,
        user_listen_addr: args.user_listen_addr,
        group_listen_addr: args.group_listen_addr,
        session_listen_addr: args.session_listen_addr,
        directory_addr: args.directory_listen_addr.to_string(),
        user_addr: args.user_listen_addr.to_string(),
        group_addr: args.group_listen_addr.to_string(),
        session_addr: args.session_listen_addr.to_string(),
        public_url: args.public_url.clone(),
        group_patch_member_limit: args.group_patch_member_limit,
    };
    let shutdown = CancellationToken::new();
    idmesh_runtime::shutdown::cancel_on_signal(shutdown.clone());
    let mesh = idmesh::launch(&Target::ALL, config, shutdown).await?;
    // The bound addresses, not the requested ones: port 0 picks a free port.
    let http_addr = mesh.http_addr.unwrap_or(args.http_addr);
    let directory_addr = mesh.directory_addr.unwrap_or(args.directory_listen_addr);
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{http_addr}"));
    admin::announce_first_directory(&directory_addr.to_string(), &public_url).await?;
    mesh.wait().await
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(addr) = args.metrics_addr {
        idmesh_runtime::telemetry::serve_metrics(addr)?;
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    }
    let config = MeshConfig {
        database_url: args.database_url,
        redis_url: args.redis_url,
        http_addr: args.http_addr,
        directory_listen_addr: args.directory_listen_addr,
        user_listen_addr: args.user_listen_addr,
        group_listen_addr: args.group_listen_addr,
        session_listen_addr: args.session_listen_addr,
        directory_addr: args.directory_addr,
        user_addr: args.user_addr,
        group_addr: args.group_addr,
        session_addr: args.session_addr,
        public_url: args.public_url,
        group_patch_member_limit: args.group_patch_member_limit,
    };
    let shutdown = CancellationToken::new();
    idmesh_runtime::shutdown::cancel_on_signal(shutdown.clone());
    idmesh::launch(&args.targets, config, shutdown).await?.wait().await
}
