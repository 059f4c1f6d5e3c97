//! The `idmesh` command: run the mesh (`dev`, `serve`), show its
//! configuration (`config print`) and administer it (`directory`, `token`,
//! `apikey`, `role`, `mapping`, `profile`, `events`, `webhook`).

mod admin;
mod config;
mod dev_state;
mod events;
mod roles;
mod webhooks;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use idmesh::Target;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode, Settings};
use crate::dev_state::DevState;

/// jemalloc gives memory back to the system after a burst (its background
/// threads purge freed pages after a second, `.cargo/config.toml`); glibc's
/// malloc kept most of a burst of large PATCHes for good. Not on MSVC, which
/// jemalloc does not support.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// sysexits.h's EX_USAGE: the command line or the configuration is wrong,
/// so restarting will not help.
const EX_USAGE: u8 = 64;

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
    /// The whole mesh in one process, on loopback, on SQLite unless told otherwise.
    Dev(Settings),
    /// Run the chosen services (one Kubernetes Deployment each, or all).
    Serve(ServeArgs),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create and list directories.
    #[command(subcommand)]
    Directory(admin::DirectoryCommand),
    /// Issue, list and revoke a directory's bearer tokens.
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Create, list and revoke the API keys gRPC callers present.
    #[command(subcommand)]
    Apikey(admin::ApiKeyCommand),
    /// Create, list and delete the platform's roles.
    #[command(subcommand)]
    Role(roles::RoleCommand),
    /// Set, show and preview a directory's group-to-role mapping.
    #[command(subcommand)]
    Mapping(roles::MappingCommand),
    /// Show a user's mapped profile and roles.
    #[command(subcommand)]
    Profile(roles::ProfileCommand),
    /// Follow a directory's change stream.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Register, list, remove and replay the webhooks that receive the
    /// change stream.
    #[command(subcommand)]
    Webhook(webhooks::WebhookCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Which services this process runs.
    #[arg(long, env = "IDMESH_TARGETS", value_delimiter = ',', required = true)]
    targets: Vec<Target>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML (defaults, file, IDMESH_*
    /// environment and flags applied), with passwords masked.
    Print {
        /// With `idmesh dev`'s defaults instead of `idmesh serve`'s.
        #[arg(long)]
        dev: bool,
        #[command(flatten)]
        settings: Settings,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are not errors.
            let code = if err.use_stderr() { EX_USAGE } else { 0 };
            if let Err(print_err) = err.print() {
                eprintln!("idmesh: {print_err}");
            }
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Dev(settings) => match configure(settings, Mode::Dev) {
            Ok(config) => with_telemetry(&config.clone(), dev(config)).await,
            Err(code) => return code,
        },
        Command::Serve(args) => match configure(args.settings, Mode::Serve) {
            Ok(config) => with_telemetry(&config, serve(&args.targets, config.clone())).await,
            Err(code) => return code,
        },
        Command::Config(ConfigCommand::Print { dev, settings }) => {
            let mode = if dev { Mode::Dev } else { Mode::Serve };
            match configure(settings, mode) {
                Ok(config) => print_config(&config),
                Err(code) => return code,
            }
        }
        Command::Directory(command) => admin::directory(command).await,
        Command::Token(command) => admin::token(command).await,
        Command::Apikey(command) => admin::api_key(command).await,
        Command::Role(command) => roles::role(command).await,
        Command::Mapping(command) => roles::mapping(command).await,
        Command::Profile(command) => roles::profile(command).await,
        Command::Events(command) => events::events(command).await,
        Command::Webhook(command) => webhooks::webhooks(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("idmesh: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The validated configuration, or the exit code after saying in one line
/// what is wrong with it.
fn configure(settings: Settings, mode: Mode) -> Result<Config, ExitCode> {
    config::load(settings, mode, config::EnvironmentKeys::from_env()).map_err(|err| {
        eprintln!("idmesh: invalid configuration: {err}");
        ExitCode::from(EX_USAGE)
    })
}

fn print_config(config: &Config) -> anyhow::Result<()> {
    print!("{}", config.to_masked_toml()?);
    Ok(())
}

/// Starts `targets` with `config`, serving metrics if configured.
async fn launch(targets: &[Target], config: &Config, shutdown: CancellationToken) -> anyhow::Result<idmesh::Mesh> {
    if let Some(addr) = config.metrics_addr {
        idmesh_runtime::telemetry::serve_metrics(addr)?;
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    }
    idmesh_runtime::shutdown::cancel_on_signal(shutdown.clone());
    idmesh::launch(targets, config.mesh(), shutdown).await
}

/// Runs `run` with logging and tracing set up as `config` says, and sends
/// the last spans before returning.
async fn with_telemetry<F>(config: &Config, run: F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let telemetry = idmesh_runtime::telemetry::init(config.log_format, config.otlp_endpoint.as_deref())?;
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(%endpoint, "exporting spans over OTLP");
    }
    let result = run.await;
    telemetry.shutdown();
    result
}

async fn dev(mut config: Config) -> anyhow::Result<()> {
    // The admin key is this data dir's: created on the first start and kept,
    // so the admin commands find it without flags.
    let admin_key = dev_state::admin_key(&config.data_dir)?;
    config.bootstrap_admin_key = Some(config::Secret(admin_key.clone()));
    let mesh = launch(&Target::ALL, &config, CancellationToken::new()).await?;
    // The bound addresses, not the configured ones: port 0 picks a free port.
    let bound = |addr: Option<std::net::SocketAddr>| addr.ok_or_else(|| anyhow::anyhow!("a target did not start"));
    let http_addr = bound(mesh.http_addr)?;
    let state = DevState {
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}")),
        http_addr,
        directory_addr: bound(mesh.directory_addr)?,
        user_addr: bound(mesh.user_addr)?,
        group_addr: bound(mesh.group_addr)?,
        session_addr: bound(mesh.session_addr)?,
        role_addr: bound(mesh.role_addr)?,
        event_addr: bound(mesh.event_addr)?,
    };
    tracing::info!(
        public_url = %state.public_url,
        http_addr = %state.http_addr,
        directory_addr = %state.directory_addr,
        user_addr = %state.user_addr,
        group_addr = %state.group_addr,
        session_addr = %state.session_addr,
        role_addr = %state.role_addr,
        event_addr = %state.event_addr,
        state_file = %dev_state::path(&config.data_dir).display(),
        "idmesh dev is listening"
    );
    // Written before the first line on stdout: whoever reads that line can
    // run the admin commands at once.
    dev_state::write(&config.data_dir, &state)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", dev_state::path(&config.data_dir).display()))?;
    let announced =
        admin::announce_first_directory(&state.directory_addr.to_string(), &state.public_url, &admin_key).await;
    let result = match announced {
        Ok(()) => mesh.wait().await,
        Err(err) => Err(err),
    };
    dev_state::remove(&config.data_dir);
    result
}

async fn serve(targets: &[Target], config: Config) -> anyhow::Result<()> {
    launch(targets, &config, CancellationToken::new()).await?.wait().await
}
