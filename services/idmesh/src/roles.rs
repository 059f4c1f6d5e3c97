//! The role, mapping and profile commands, over gRPC to role-mapping-service
//! with the same connection options as the other admin commands.
//!
//! A mapping comes from a JSON file (`--file`), from flags, or both (the
//! flags' rules follow the file's; `--mode` and `--default-role` replace
//! the file's, `--revoke-sessions-on-role-removal` turns the file's option
//! on):
//!
//! ```json
//! {"mode": "single", "default_role": "member", "revoke_sessions_on_role_removal": true,
//!  "rules": [{"group_id": "<id>", "roles": ["admin"], "precedence": 1},
//!            {"roles_value": "okta-admin", "roles": ["admin"], "precedence": 2}]}
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use idmesh_proto::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use crate::admin::Connection;

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Add a role to the platform's catalog.
    Create {
        /// The role's key, e.g. admin.
        #[arg(long)]
        key: String,
        /// [default: the key]
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the catalog.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a role that no mapping uses.
    Delete {
        #[arg(long)]
        key: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Replace a directory's role mapping.
    Set {
        #[command(flatten)]
        mapping: MappingArgs,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show a directory's role mapping.
    Show {
        #[arg(long)]
        directory: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show which users would gain or lose which roles under a mapping,
    /// without applying it.
    Preview {
        #[command(flatten)]
        mapping: MappingArgs,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// A user's mapped profile and roles, as JSON.
    Show {
        #[arg(long)]
        directory: String,
        #[arg(long)]
        user: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeArg {
    /// One role: the matching rule with the lowest precedence.
    Single,
    /// Every mapped role.
    Multiple,
}

impl ModeArg {
    fn to_proto(self) -> pb::RoleMappingMode {
        match self {
            ModeArg::Single => pb::RoleMappingMode::Single,
            ModeArg::Multiple => pb::RoleMappingMode::Multiple,
        }
    }
}

#[derive(Debug, Args)]
pub struct MappingArgs {
    #[arg(long)]
    directory: String,
    /// A JSON file with mode, default_role and rules (see `idmesh mapping --help`).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// A rule GROUP_ID=ROLE[,ROLE…][@PRECEDENCE]; repeat for more.
    #[arg(long = "group-rule", value_name = "RULE")]
    group_rules: Vec<String>,
    /// A rule on a SCIM `roles` value, VALUE=ROLE[,ROLE…][@PRECEDENCE].
    #[arg(long = "roles-value-rule", value_name = "RULE")]
    roles_value_rules: Vec<String>,
    /// The role of users no rule matches; "" for none.
    #[arg(long)]
    default_role: Option<String>,
    /// Revoke every session of a user who loses a role, as deprovisioning
    /// does (needs role-mapping-service to reach events-service).
    #[arg(long)]
    revoke_sessions_on_role_removal: bool,
}

/// A mapping file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    mode: Option<ModeArg>,
    #[serde(default)]
    default_role: String,
    #[serde(default)]
    rules: Vec<RuleFile>,
    #[serde(default)]
    revoke_sessions_on_role_removal: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    group_id: Option<String>,
    roles_value: Option<String>,
    roles: Vec<String>,
    #[serde(default)]
    precedence: i32,
}

/// A mapping as the request fields: mode, rules, default role, and whether
/// losing a role revokes sessions.
struct Proposed {
    mode: pb::RoleMappingMode,
    rules: Vec<pb::MappingRule>,
    default_role: String,
    revoke_sessions: bool,
}

/// `SOURCE=ROLE[,ROLE…][@PRECEDENCE]` as a rule on `source`.
fn parse_rule(text: &str, source: fn(String) -> pb::mapping_rule::Source) -> anyhow::Result<pb::MappingRule> {
    let (from, to) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("rule {text:?}: expected SOURCE=ROLE[,ROLE…][@PRECEDENCE]"))?;
    let (roles, precedence) = match to.rsplit_once('@') {
        Some((roles, precedence)) => (
            roles,
            precedence
                .parse()
                .with_context(|| format!("rule {text:?}: the precedence is not an integer"))?,
        ),
        None => (to, 0),
    };
    Ok(pb::MappingRule {
        source: Some(source(from.to_owned())),
        roles: roles.split(',').map(str::to_owned).collect(),
        precedence,
    })
}

impl MappingArgs {
    fn proposed(&self) -> anyhow::Result<Proposed> {
        let file = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                serde_json::from_str::<MappingFile>(&text).with_context(|| format!("{}", path.display()))?
            }
            None => MappingFile::default(),
        };
        let mut rules = Vec::new();
        for rule in file.rules {
            let source = match (rule.group_id, rule.roles_value) {
                (Some(id), None) => pb::mapping_rule::Source::GroupId(id),
                (None, Some(value)) => pb::mapping_rule::Source::RolesValue(value),
                _ => anyhow::bail!("each rule of the file has either group_id or roles_value"),
            };
            rules.push(pb::MappingRule {
                source: Some(source),
                roles: rule.roles,
                precedence: rule.precedence,
            });
        }
        for text in &self.group_rules {
            rules.push(parse_rule(text, pb::mapping_rule::Source::GroupId)?);
        }
        for text in &self.roles_value_rules {
            rules.push(parse_rule(text, pb::mapping_rule::Source::RolesValue)?);
        }
        let mode = self.mode.or(file.mode).unwrap_or(ModeArg::Multiple);
        Ok(Proposed {
            mode: mode.to_proto(),
            rules,
            default_role: self.default_role.clone().unwrap_or(file.default_role),
            revoke_sessions: self.revoke_sessions_on_role_removal || file.revoke_sessions_on_role_removal,
        })
    }
}

fn rule_json(rule: &pb::MappingRule) -> serde_json::Value {
    let mut value = json!({"roles": rule.roles, "precedence": rule.precedence});
    match &rule.source {
        Some(pb::mapping_rule::Source::GroupId(id)) => value["group_id"] = json!(id),
        Some(pb::mapping_rule::Source::RolesValue(v)) => value["roles_value"] = json!(v),
        None => {}
    }
    value
}

fn mapping_json(mapping: &pb::RoleMapping) -> serde_json::Value {
    let mode = match mapping.mode() {
        pb::RoleMappingMode::Single => "single",
        _ => "multiple",
    };
    json!({
        "directory_id": mapping.directory_id,
        "mode": mode,
        "default_role": mapping.default_role,
        "rules": mapping.rules.iter().map(rule_json).collect::<Vec<_>>(),
        "revoke_sessions_on_role_removal": mapping.revoke_sessions_on_role_removal,
        "version": mapping.version,
    })
}

fn print_mapping(mapping: &pb::RoleMapping, as_json: bool) {
    let value = mapping_json(mapping);
    if as_json {
        println!("{value}");
        return;
    }
    println!("Directory: {}", mapping.directory_id);
    println!(
        "Mode: {}  Version: {}",
        value["mode"].as_str().unwrap_or_default(),
        mapping.version
    );
    let default = if mapping.default_role.is_empty() {
        "(none)"
    } else {
        &mapping.default_role
    };
    println!("Default role: {default}");
    if mapping.revoke_sessions_on_role_removal {
        println!("A user who loses a role loses their sessions");
    }
    for (index, rule) in mapping.rules.iter().enumerate() {
        let source = match &rule.source {
            Some(pb::mapping_rule::Source::GroupId(id)) => format!("group {id}"),
            Some(pb::mapping_rule::Source::RolesValue(v)) => format!("roles value {v:?}"),
            None => String::new(),
        };
        println!("{index}\t{source}\t-> {}\t@{}", rule.roles.join(","), rule.precedence);
    }
}

pub async fn role(command: RoleCommand) -> anyhow::Result<()> {
    match command {
        RoleCommand::Create {
            key,
            name,
            description,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let role = connection
                .roles()?
                .create_role(pb::CreateRoleRequest {
                    role: Some(pb::Role { key, name, description }),
                })
                .await
                .with_context(|| connection.role_context())?
                .into_inner();
            println!("Role: {} ({})", role.key, role.name);
        }
        RoleCommand::List { json, connection } => {
            let connection = connection.endpoint()?;
            let roles = connection
                .roles()?
                .list_roles(pb::ListRolesRequest {})
                .await
                .with_context(|| connection.role_context())?
                .into_inner()
                .roles;
            if json {
                let list: Vec<_> = roles
                    .iter()
                    .map(|r| json!({"key": r.key, "name": r.name, "description": r.description}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for r in &roles {
                    println!("{}\t{}\t{}", r.key, r.name, r.description);
                }
            }
        }
        RoleCommand::Delete { key, connection } => {
            let connection = connection.endpoint()?;
            connection
                .roles()?
                .delete_role(pb::DeleteRoleRequest { key: key.clone() })
                .await
                .with_context(|| connection.role_context())?;
            println!("Deleted role {key}");
        }
    }
    Ok(())
}

pub async fn mapping(command: MappingCommand) -> anyhow::Result<()> {
    match command {
        MappingCommand::Set {
            mapping,
            json,
            connection,
        } => {
            let proposed = mapping.proposed()?;
            let connection = connection.endpoint()?;
            let saved = connection
                .roles()?
                .set_role_mapping(pb::SetRoleMappingRequest {
                    directory_id: mapping.directory.clone(),
                    mode: proposed.mode.into(),
                    rules: proposed.rules,
                    default_role: proposed.default_role,
                    expected_version: None,
                    revoke_sessions_on_role_removal: proposed.revoke_sessions,
                })
                .await
                .with_context(|| connection.role_context())?
                .into_inner();
            print_mapping(&saved, json);
        }
        MappingCommand::Show {
            directory,
            json,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let mapping = connection
                .roles()?
                .get_role_mapping(pb::GetRoleMappingRequest {
                    directory_id: directory,
                })
                .await
                .with_context(|| connection.role_context())?
                .into_inner();
            print_mapping(&mapping, json);
        }
        MappingCommand::Preview {
            mapping,
            json,
            connection,
        } => {
            let proposed = mapping.proposed()?;
            let connection = connection.endpoint()?;
            let mut client = connection.roles()?;
            let mut changes = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .preview_mappings(pb::PreviewMappingsRequest {
                        directory_id: mapping.directory.clone(),
                        mode: proposed.mode.into(),
                        rules: proposed.rules.clone(),
                        default_role: proposed.default_role.clone(),
                        page_size: 0,
                        page_token,
                    })
                    .await
                    .with_context(|| connection.role_context())?
                    .into_inner();
                changes.extend(page.changes);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if json {
                let list: Vec<_> = changes
                    .iter()
                    .map(
                        |c| json!({"user_id": c.user_id, "user_name": c.user_name, "gained": c.gained, "lost": c.lost}),
                    )
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for c in &changes {
                    println!(
                        "{}\t{}\t+{}\t-{}",
                        c.user_id,
                        c.user_name,
                        c.gained.join(","),
                        c.lost.join(",")
                    );
                }
                println!("{} users would change", changes.len());
            }
        }
    }
    Ok(())
}

pub async fn profile(command: ProfileCommand) -> anyhow::Result<()> {
    match command {
        ProfileCommand::Show {
            directory,
            user,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let profile = connection
                .roles()?
                .get_profile(pb::GetProfileRequest {
                    directory_id: directory,
                    user_id: user,
                    ..Default::default()
                })
                .await
                .with_context(|| connection.role_context())?
                .into_inner();
            let fields: serde_json::Value =
                serde_json::from_str(&profile.fields_json).context("role-mapping-service answered invalid JSON")?;
            let roles = profile.roles.unwrap_or_default();
            let value = json!({
                "user_id": profile.user_id,
                "active": roles.active,
                "fields": fields,
                "roles": roles.roles.iter().map(|r| r.role.clone()).collect::<Vec<_>>(),
            });
            println!("{value:#}");
        }
    }
    Ok(())
}
