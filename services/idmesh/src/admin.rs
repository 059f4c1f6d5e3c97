//! The admin commands people type: directories, their tokens and API keys,
//! over gRPC to a running directory-service, calling with an admin API key
//! (roles, mappings and profiles are in [`crate::roles`], to
//! role-mapping-service).
//! Without an address and a key they talk to the `idmesh dev` whose data dir
//! they are pointed at, with its admin key (see [`crate::dev_state`]).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use idmesh_proto::v1::api_key_service_client::ApiKeyServiceClient;
use idmesh_proto::v1::directory_service_client::DirectoryServiceClient;
use idmesh_proto::v1::event_service_client::EventServiceClient;
use idmesh_proto::v1::role_mapping_service_client::RoleMappingServiceClient;
use idmesh_proto::v1::webhook_service_client::WebhookServiceClient;
use idmesh_proto::v1::{
    ApiKey, CreateApiKeyRequest, CreateDirectoryRequest, Directory, IssueTokenRequest, ListApiKeysRequest,
    ListDirectoriesRequest, ListTokensRequest, RateLimit, RevokeApiKeyRequest, RevokeTokenRequest, SetRateLimitRequest,
    Token,
};
use idmesh_runtime::auth::{AuthChannel, Credential};
use serde_json::json;

/// Where `idmesh serve` runs directory-service by default.
const DEFAULT_DIRECTORY_ADDR: &str = "127.0.0.1:50051";
/// Where `idmesh serve` runs role-mapping-service by default.
const DEFAULT_ROLE_ADDR: &str = "127.0.0.1:50055";
/// Where `idmesh serve` runs events-service by default.
const DEFAULT_EVENT_ADDR: &str = "127.0.0.1:50056";
/// Where the gateway listens by default.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Args)]
pub struct Connection {
    /// directory-service's gRPC address [default: the running `idmesh dev`'s
    /// (from <data dir>/dev.json), else 127.0.0.1:50051].
    #[arg(long, env = "IDMESH_DIRECTORY_ADDR")]
    directory_addr: Option<String>,
    /// role-mapping-service's gRPC address, for the role, mapping and
    /// profile commands [default: the running `idmesh dev`'s, else
    /// 127.0.0.1:50055].
    #[arg(long, env = "IDMESH_ROLE_ADDR")]
    role_addr: Option<String>,
    /// events-service's gRPC address, for `idmesh events` [default: the
    /// running `idmesh dev`'s, else 127.0.0.1:50056].
    #[arg(long, env = "IDMESH_EVENT_ADDR")]
    event_addr: Option<String>,
    /// The SCIM endpoint's public base URL, to print SCIM base URLs [default:
    /// the running `idmesh dev`'s, else http://127.0.0.1:8080].
    #[arg(long, env = "IDMESH_PUBLIC_URL")]
    public_url: Option<String>,
    /// The data dir of the `idmesh dev` to talk to when no address is given.
    #[arg(long, env = "IDMESH_DATA_DIR", default_value = ".idmesh")]
    data_dir: PathBuf,
    /// A file holding the API key to call with [default: IDMESH_API_KEY,
    /// else the `idmesh dev`'s admin key, <data dir>/api-key].
    #[arg(long, env = "IDMESH_API_KEY_FILE", value_name = "FILE")]
    api_key_file: Option<PathBuf>,
}

/// Where the admin commands send their calls and what base URL they print.
#[derive(Debug)]
pub(crate) struct Endpoint {
    directory_addr: String,
    role_addr: String,
    event_addr: String,
    public_url: String,
    credential: Credential,
    /// Where the addresses came from, when not from flags or defaults.
    found_in: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Create a directory and issue its first bearer token.
    Create {
        #[arg(long)]
        name: String,
        /// Print {"id", "scim_base_url", "token"} as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List directories with their SCIM base URLs and their own rates.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Set the rate at which the SCIM gateway accepts a directory's
    /// requests, or return it to the deployment's default; gateways apply
    /// it within 10 seconds.
    RateLimit {
        /// The directory's id (see `idmesh directory list`).
        directory_id: String,
        /// Requests a second, sustained.
        #[arg(
            long,
            requires = "burst",
            required_unless_present = "default",
            value_parser = clap::value_parser!(u32).range(1..),
        )]
        per_second: Option<u32>,
        /// Requests at once.
        #[arg(long, requires = "per_second", value_parser = clap::value_parser!(u32).range(1..))]
        burst: Option<u32>,
        /// Drop the directory's own rate: the deployment's default applies
        /// (rate_limit_per_second and rate_limit_burst).
        #[arg(long, conflicts_with_all = ["per_second", "burst"])]
        default: bool,
        /// Print the directory as JSON, as `directory list --json` does.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a bearer token (a directory has at most two live tokens).
    Issue {
        #[arg(long)]
        directory: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Make the token expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke a token by its id (see `idmesh token list`).
    Revoke {
        #[arg(long)]
        directory: String,
        #[arg(long)]
        token: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List a directory's tokens (never their secrets).
    List {
        #[arg(long)]
        directory: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

impl Connection {
    /// An explicit address wins, with the explicit or default public URL:
    /// the dev state file describes only the `idmesh dev` it belongs to.
    /// Without one, the running `idmesh dev`'s addresses, else the defaults.
    pub(crate) fn endpoint(self) -> anyhow::Result<Endpoint> {
        let credential = Credential::new(&self.api_key()?)?;
        if let Some(directory_addr) = self.directory_addr {
            return Ok(Endpoint {
                directory_addr,
                role_addr: self.role_addr.unwrap_or_else(|| DEFAULT_ROLE_ADDR.to_owned()),
                event_addr: self.event_addr.unwrap_or_else(|| DEFAULT_EVENT_ADDR.to_owned()),
                public_url: self.public_url.unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()),
                credential,
                found_in: None,
            });
        }
        Ok(match crate::dev_state::read(&self.data_dir)? {
            Some(state) => Endpoint {
                directory_addr: state.directory_addr.to_string(),
                role_addr: self.role_addr.unwrap_or_else(|| state.role_addr.to_string()),
                event_addr: self.event_addr.unwrap_or_else(|| state.event_addr.to_string()),
                public_url: self.public_url.unwrap_or(state.public_url),
                credential,
                found_in: Some(crate::dev_state::path(&self.data_dir)),
            },
            None => Endpoint {
                directory_addr: DEFAULT_DIRECTORY_ADDR.to_owned(),
                role_addr: self.role_addr.unwrap_or_else(|| DEFAULT_ROLE_ADDR.to_owned()),
                event_addr: self.event_addr.unwrap_or_else(|| DEFAULT_EVENT_ADDR.to_owned()),
                public_url: self.public_url.unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()),
                credential,
                found_in: None,
            },
        })
    }

    /// The key named by `--api-key-file`, else `IDMESH_API_KEY`, else the
    /// `idmesh dev`'s admin key.
    fn api_key(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.api_key_file {
            let key = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(key.trim().to_owned());
        }
        if let Ok(key) = std::env::var("IDMESH_API_KEY")
            && !key.trim().is_empty()
        {
            return Ok(key.trim().to_owned());
        }
        crate::dev_state::read_admin_key(&self.data_dir)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no API key: pass --api-key-file or set IDMESH_API_KEY (no `idmesh dev` key in {})",
                crate::dev_state::api_key_path(&self.data_dir).display()
            )
        })
    }
}

impl Endpoint {
    fn client(&self) -> anyhow::Result<DirectoryServiceClient<AuthChannel>> {
        let channel = idmesh_runtime::grpc::authed_channel(&self.directory_addr, &self.credential)?;
        Ok(idmesh_runtime::with_message_limits!(DirectoryServiceClient::new(
            channel
        )))
    }

    fn api_keys(&self) -> anyhow::Result<ApiKeyServiceClient<AuthChannel>> {
        let channel = idmesh_runtime::grpc::authed_channel(&self.directory_addr, &self.credential)?;
        Ok(idmesh_runtime::with_message_limits!(ApiKeyServiceClient::new(channel)))
    }

    pub(crate) fn roles(&self) -> anyhow::Result<RoleMappingServiceClient<AuthChannel>> {
        let channel = idmesh_runtime::grpc::authed_channel(&self.role_addr, &self.credential)?;
        Ok(idmesh_runtime::with_message_limits!(RoleMappingServiceClient::new(
            channel
        )))
    }

    pub(crate) fn events(&self) -> anyhow::Result<EventServiceClient<AuthChannel>> {
        let channel = idmesh_runtime::grpc::authed_channel(&self.event_addr, &self.credential)?;
        Ok(idmesh_runtime::with_message_limits!(EventServiceClient::new(channel)))
    }

    pub(crate) fn webhooks(&self) -> anyhow::Result<WebhookServiceClient<AuthChannel>> {
        let channel = idmesh_runtime::grpc::authed_channel(&self.event_addr, &self.credential)?;
        Ok(idmesh_runtime::with_message_limits!(WebhookServiceClient::new(channel)))
    }

    /// What a failed call to role-mapping-service is reported with.
    pub(crate) fn role_context(&self) -> String {
        self.peer_context("role-mapping-service", &self.role_addr, "--role-addr")
    }

    /// What a failed call to events-service is reported with.
    pub(crate) fn event_context(&self) -> String {
        self.peer_context("events-service", &self.event_addr, "--event-addr")
    }

    fn peer_context(&self, service: &str, addr: &str, flag: &str) -> String {
        match &self.found_in {
            Some(path) => format!(
                "{service} at {addr} (from {}; is that `idmesh dev` still running?)",
                path.display()
            ),
            None => format!("{service} at {addr} (is it running, or is {flag} needed?)"),
        }
    }

    fn context(&self) -> String {
        match &self.found_in {
            Some(path) => format!(
                "directory-service at {} (from {}; is that `idmesh dev` still running?)",
                self.directory_addr,
                path.display()
            ),
            None => format!(
                "directory-service at {} (is `idmesh dev` running, or is --directory-addr needed?)",
                self.directory_addr
            ),
        }
    }

    fn scim_base_url(&self, directory_id: &str) -> String {
        scim_base_url(&self.public_url, directory_id)
    }
}

fn scim_base_url(public_url: &str, directory_id: &str) -> String {
    format!("{}/scim/v2/{directory_id}", public_url.trim_end_matches('/'))
}

fn timestamp_text(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(idmesh_api::timestamp::from_proto)
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

fn token_json(token: &Token) -> serde_json::Value {
    json!({
        "id": token.id,
        "description": token.description,
        "created": timestamp_text(token.created.as_ref()),
        "expires_at": token.expires_at.as_ref().map(|ts| timestamp_text(Some(ts))),
        "revoked_at": token.revoked_at.as_ref().map(|ts| timestamp_text(Some(ts))),
    })
}

/// A directory's own rate, or "default" when the deployment's applies.
fn rate_text(rate: Option<&RateLimit>) -> String {
    match rate {
        Some(rate) => format!("{}/s burst {}", rate.requests_per_second, rate.burst),
        None => "default".to_owned(),
    }
}

fn directory_json(directory: &Directory, scim_base_url: String) -> serde_json::Value {
    json!({
        "id": directory.id,
        "name": directory.name,
        "scim_base_url": scim_base_url,
        "rate_limit": directory.rate_limit.as_ref().map(|rate| json!({
            "requests_per_second": rate.requests_per_second,
            "burst": rate.burst,
        })),
    })
}

async fn create_with_token(
    client: &mut DirectoryServiceClient<AuthChannel>,
    name: &str,
) -> Result<(Directory, String), tonic::Status> {
    let directory = client
        .create_directory(CreateDirectoryRequest { name: name.to_owned() })
        .await?
        .into_inner();
    let issued = client
        .issue_token(IssueTokenRequest {
            directory_id: directory.id.clone(),
            description: "created with the directory".to_owned(),
            expires_at: None,
        })
        .await?
        .into_inner();
    Ok((directory, issued.secret))
}

pub async fn directory(command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
        DirectoryCommand::Create { name, json, connection } => {
            let connection = connection.endpoint()?;
            let mut client = connection.client()?;
            let (directory, token) = create_with_token(&mut client, &name)
                .await
                .with_context(|| connection.context())?;
            let base = connection.scim_base_url(&directory.id);
            if json {
                println!("{}", json!({"id": directory.id, "scim_base_url": base, "token": token}));
            } else {
                println!("Directory: {} ({})", directory.id, directory.name);
                println!("SCIM base URL: {base}");
                println!("Bearer token: {token}");
            }
        }
        DirectoryCommand::List { json, connection } => {
            let connection = connection.endpoint()?;
            let mut client = connection.client()?;
            let directories = client
                .list_directories(ListDirectoriesRequest {})
                .await
                .with_context(|| connection.context())?
                .into_inner()
                .directories;
            if json {
                let list: Vec<_> = directories
                    .iter()
                    .map(|d| directory_json(d, connection.scim_base_url(&d.id)))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for d in &directories {
                    println!(
                        "{}\t{}\t{}\t{}",
                        d.id,
                        d.name,
                        connection.scim_base_url(&d.id),
                        rate_text(d.rate_limit.as_ref())
                    );
                }
            }
        }
        DirectoryCommand::RateLimit {
            directory_id,
            per_second,
            burst,
            default: _,
            json,
            connection,
        } => {
            // clap lets through either both numbers or --default alone.
            let rate_limit = per_second.zip(burst).map(|(requests_per_second, burst)| RateLimit {
                requests_per_second,
                burst,
            });
            let connection = connection.endpoint()?;
            let directory = connection
                .client()?
                .set_rate_limit(SetRateLimitRequest {
                    directory_id,
                    rate_limit,
                })
                .await
                .with_context(|| connection.context())?
                .into_inner();
            if json {
                println!(
                    "{}",
                    directory_json(&directory, connection.scim_base_url(&directory.id))
                );
            } else {
                println!(
                    "Directory {} ({}): rate {}; gateways apply it within 10 seconds",
                    directory.id,
                    directory.name,
                    rate_text(directory.rate_limit.as_ref())
                );
            }
        }
    }
    Ok(())
}

pub async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue {
            directory,
            description,
            expires_in_days,
            json,
            connection,
        } => {
            let expires_at = expires_in_days.map(|days| {
                idmesh_api::timestamp::to_proto(time::OffsetDateTime::now_utc() + time::Duration::days(days.into()))
            });
            let connection = connection.endpoint()?;
            let mut client = connection.client()?;
            let issued = client
                .issue_token(IssueTokenRequest {
                    directory_id: directory,
                    description,
                    expires_at,
                })
                .await
                .with_context(|| connection.context())?
                .into_inner();
            let token = issued.token.unwrap_or_default();
            if json {
                println!("{}", json!({"id": token.id, "token": issued.secret}));
            } else {
                println!("Token id: {}", token.id);
                println!("Bearer token: {}", issued.secret);
            }
        }
        TokenCommand::Revoke {
            directory,
            token,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let mut client = connection.client()?;
            let revoked = client
                .revoke_token(RevokeTokenRequest {
                    directory_id: directory,
                    token_id: token,
                })
                .await
                .with_context(|| connection.context())?
                .into_inner();
            println!(
                "Revoked token {} at {}",
                revoked.id,
                timestamp_text(revoked.revoked_at.as_ref())
            );
        }
        TokenCommand::List {
            directory,
            json,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let mut client = connection.client()?;
            let tokens = client
                .list_tokens(ListTokensRequest {
                    directory_id: directory,
                })
                .await
                .with_context(|| connection.context())?
                .into_inner()
                .tokens;
            if json {
                println!("{}", serde_json::Value::Array(tokens.iter().map(token_json).collect()));
            } else {
                for t in &tokens {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                    println!(
                        "{}\t{state}\t{}\t{}",
                        t.id,
                        timestamp_text(t.created.as_ref()),
                        t.description
                    );
                }
            }
        }
    }
    Ok(())
}

/// `idmesh dev` on a fresh data dir: create a directory and show how to
/// point an IdP at it. On later starts, show the existing directories.
pub async fn announce_first_directory(directory_addr: &str, public_url: &str, admin_key: &str) -> anyhow::Result<()> {
    let credential = Credential::new(admin_key)?;
    let mut client = idmesh_runtime::with_message_limits!(DirectoryServiceClient::new(
        idmesh_runtime::grpc::authed_channel(directory_addr, &credential)?
    ));
    let existing = client
        .list_directories(ListDirectoriesRequest {})
        .await
        .context("listing directories")?
        .into_inner()
        .directories;
    if existing.is_empty() {
        let (directory, token) = create_with_token(&mut client, "default")
            .await
            .context("creating the first directory")?;
        println!("SCIM base URL: {}", scim_base_url(public_url, &directory.id));
        println!("Bearer token: {token}");
    } else {
        for directory in &existing {
            println!("SCIM base URL: {}", scim_base_url(public_url, &directory.id));
        }
        println!(
            "Bearer tokens were shown when they were issued; `idmesh token issue --directory <id>` makes another."
        );
    }
    println!("API key: {admin_key}");
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key for a gRPC caller; its secret is shown once.
    Create {
        /// What the key is for, e.g. "billing-service"; logged with its id.
        #[arg(long)]
        name: String,
        /// A scope the key gets, e.g. sessions:check; repeat for more.
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        /// Limit the key to this directory; repeat for more [default: not limited].
        #[arg(long = "directory", num_args = 1..)]
        directories: Vec<String>,
        /// Make the key expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Print {"id", "api_key", "scopes", "directory_ids"} as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List API keys (never their secrets).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke an API key by its id; services stop accepting it within 10 seconds.
    Revoke {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

fn api_key_json(key: &ApiKey) -> serde_json::Value {
    json!({
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes,
        "directory_ids": key.directory_ids,
        "created": timestamp_text(key.created.as_ref()),
        "expires_at": key.expires_at.as_ref().map(|ts| timestamp_text(Some(ts))),
        "revoked_at": key.revoked_at.as_ref().map(|ts| timestamp_text(Some(ts))),
    })
}

pub async fn api_key(command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create {
            name,
            scopes,
            directories,
            expires_in_days,
            json,
            connection,
        } => {
            let expires_at = expires_in_days.map(|days| {
                idmesh_api::timestamp::to_proto(time::OffsetDateTime::now_utc() + time::Duration::days(days.into()))
            });
            let connection = connection.endpoint()?;
            let created = connection
                .api_keys()?
                .create_api_key(CreateApiKeyRequest {
                    name,
                    scopes,
                    directory_ids: directories,
                    expires_at,
                })
                .await
                .with_context(|| connection.context())?
                .into_inner();
            let key = created.api_key.unwrap_or_default();
            if json {
                let mut value = api_key_json(&key);
                value["api_key"] = json!(created.secret);
                println!("{value}");
            } else {
                println!("API key id: {}", key.id);
                println!("API key: {}", created.secret);
            }
        }
        ApiKeyCommand::List { json, connection } => {
            let connection = connection.endpoint()?;
            let keys = connection
                .api_keys()?
                .list_api_keys(ListApiKeysRequest {})
                .await
                .with_context(|| connection.context())?
                .into_inner()
                .api_keys;
            if json {
                println!("{}", serde_json::Value::Array(keys.iter().map(api_key_json).collect()));
            } else {
                for key in &keys {
                    let state = if key.revoked_at.is_some() { "revoked" } else { "live" };
                    let directories = if key.directory_ids.is_empty() {
                        "all directories".to_owned()
                    } else {
                        key.directory_ids.join(",")
                    };
                    println!(
                        "{}\t{state}\t{}\t{}\t{directories}",
                        key.id,
                        key.name,
                        key.scopes.join(",")
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { id, connection } => {
            let connection = connection.endpoint()?;
            let revoked = connection
                .api_keys()?
                .revoke_api_key(RevokeApiKeyRequest { id })
                .await
                .with_context(|| connection.context())?
                .into_inner();
            println!(
                "Revoked API key {} ({}) at {}",
                revoked.id,
                revoked.name,
                timestamp_text(revoked.revoked_at.as_ref())
            );
        }
    }
    Ok(())
}
