//! `idmesh webhook add|list|remove|replay|rotate-secret|attempts`: the
//! endpoints events-service delivers a directory's events to, with the same
//! connection options as the other admin commands.

use anyhow::Context;
use clap::Subcommand;
use idmesh_proto::v1 as pb;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::admin::Connection;
use crate::events::parse_types;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register an endpoint for a directory's events (or every
    /// directory's) from now on; prints its id and signing secret.
    Add {
        /// http:// or https://; each event is a POST signed per the
        /// Standard Webhooks specification.
        #[arg(long)]
        url: String,
        /// The directory whose events it receives [default: every
        /// directory].
        #[arg(long)]
        directory: Option<String>,
        /// Only these types, comma-separated (see `idmesh events tail
        /// --help`) [default: every type].
        #[arg(long = "type", value_delimiter = ',', value_name = "TYPE")]
        types: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the endpoints with where each stands in each directory.
    List {
        /// Only this directory's endpoints.
        #[arg(long)]
        directory: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove an endpoint and its recorded attempts.
    Remove {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Deliver a directory's events again from a sequence number, turning
    /// a disabled endpoint back on.
    Replay {
        id: String,
        /// The first sequence number to deliver again.
        #[arg(long, value_name = "SEQUENCE", value_parser = clap::value_parser!(i64).range(1..))]
        from: i64,
        /// The directory to replay (needed for an endpoint of every
        /// directory).
        #[arg(long)]
        directory: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Issue a new signing secret; the current one keeps signing beside it
    /// for a while, so receivers can switch over.
    RotateSecret {
        id: String,
        /// How long the current secret keeps signing (0 to 168).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(0..=168))]
        keep_previous_hours: i64,
        #[command(flatten)]
        connection: Connection,
    },
    /// An endpoint's delivery attempts, newest first, one JSON object per
    /// line.
    Attempts {
        id: String,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=1000))]
        limit: i32,
        #[command(flatten)]
        connection: Connection,
    },
}

fn time(at: Option<&prost_types::Timestamp>) -> Value {
    at.and_then(idmesh_api::timestamp::from_proto)
        .and_then(|at| at.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

fn type_names(types: &[i32]) -> Vec<&'static str> {
    types
        .iter()
        .filter_map(|t| pb::EventType::try_from(*t).ok())
        .map(idmesh_api::events::type_name)
        .collect()
}

fn webhook_json(webhook: &pb::Webhook) -> Value {
    let progress: Vec<Value> = webhook
        .progress
        .iter()
        .map(|p| {
            json!({
                "directory_id": p.directory_id,
                "delivered_through": p.delivered_through,
                "failed_attempts": p.failed_attempts,
                "next_attempt": time(p.next_attempt.as_ref()),
                "failing_since": time(p.failing_since.as_ref()),
                "last_error": p.last_error,
            })
        })
        .collect();
    json!({
        "id": webhook.id,
        "directory_id": webhook.directory_id,
        "url": webhook.url,
        "types": type_names(&webhook.types),
        "description": webhook.description,
        "created": time(webhook.created.as_ref()),
        "disabled_reason": webhook.disabled_reason,
        "disabled_at": time(webhook.disabled_at.as_ref()),
        "previous_secret_expires": time(webhook.previous_secret_expires.as_ref()),
        "progress": progress,
    })
}

fn print_webhook(webhook: &pb::Webhook) {
    let directory = if webhook.directory_id.is_empty() {
        "every directory"
    } else {
        webhook.directory_id.as_str()
    };
    let state = if webhook.disabled_reason.is_empty() {
        "enabled".to_owned()
    } else {
        format!("disabled: {}", webhook.disabled_reason)
    };
    println!("{}\t{directory}\t{}\t{state}", webhook.id, webhook.url);
    for p in &webhook.progress {
        let failing = if p.failed_attempts > 0 {
            format!(", {} failed attempts, last: {}", p.failed_attempts, p.last_error)
        } else {
            String::new()
        };
        println!(
            "  {}: delivered through {}{failing}",
            p.directory_id, p.delivered_through
        );
    }
}

pub async fn webhooks(command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Add {
            url,
            directory,
            types,
            description,
            json,
            connection,
        } => {
            let request = pb::CreateWebhookRequest {
                directory_id: directory.unwrap_or_default(),
                url,
                types: parse_types(&types)?,
                description,
            };
            let connection = connection.endpoint()?;
            let created = connection
                .webhooks()?
                .create_webhook(request)
                .await
                .with_context(|| connection.event_context())?
                .into_inner();
            let webhook = created.webhook.context("events-service answered without the webhook")?;
            if json {
                let mut value = webhook_json(&webhook);
                value["secret"] = Value::String(created.secret);
                println!("{value}");
            } else {
                println!("Webhook: {}", webhook.id);
                println!("Secret: {}", created.secret);
                println!(
                    "Keep the secret now: it is not shown again. Verify each delivery's webhook-signature with it."
                );
            }
        }
        WebhookCommand::List {
            directory,
            json,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let listed = connection
                .webhooks()?
                .list_webhooks(pb::ListWebhooksRequest {
                    directory_id: directory.unwrap_or_default(),
                })
                .await
                .with_context(|| connection.event_context())?
                .into_inner()
                .webhooks;
            if json {
                println!("{}", Value::Array(listed.iter().map(webhook_json).collect()));
            } else {
                listed.iter().for_each(print_webhook);
            }
        }
        WebhookCommand::Remove { id, connection } => {
            let connection = connection.endpoint()?;
            connection
                .webhooks()?
                .delete_webhook(pb::DeleteWebhookRequest { id: id.clone() })
                .await
                .with_context(|| connection.event_context())?;
            println!("Removed webhook {id}");
        }
        WebhookCommand::Replay {
            id,
            from,
            directory,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let replayed = connection
                .webhooks()?
                .replay_webhook(pb::ReplayWebhookRequest {
                    id,
                    directory_id: directory.unwrap_or_default(),
                    from_sequence: from,
                })
                .await
                .with_context(|| connection.event_context())?
                .into_inner();
            let webhook = replayed
                .webhook
                .context("events-service answered without the webhook")?;
            print_webhook(&webhook);
        }
        WebhookCommand::RotateSecret {
            id,
            keep_previous_hours,
            connection,
        } => {
            let connection = connection.endpoint()?;
            let rotated = connection
                .webhooks()?
                .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
                    id,
                    previous_valid_seconds: keep_previous_hours * 3600,
                })
                .await
                .with_context(|| connection.event_context())?
                .into_inner();
            println!("Secret: {}", rotated.secret);
            let until = rotated
                .webhook
                .as_ref()
                .map(|webhook| time(webhook.previous_secret_expires.as_ref()));
            match until {
                Some(Value::String(until)) => println!("The previous secret signs too until {until}."),
                _ => println!("The previous secret no longer signs."),
            }
        }
        WebhookCommand::Attempts { id, limit, connection } => {
            let connection = connection.endpoint()?;
            let attempts = connection
                .webhooks()?
                .list_delivery_attempts(pb::ListDeliveryAttemptsRequest {
                    webhook_id: id,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await
                .with_context(|| connection.event_context())?
                .into_inner()
                .attempts;
            for a in attempts {
                let line = json!({
                    "time": time(a.time.as_ref()),
                    "directory_id": a.directory_id,
                    "sequence": a.sequence,
                    "event_id": a.event_id,
                    "type": type_names(&[a.event_type]).first(),
                    "attempt": a.attempt,
                    "status_code": a.status_code,
                    "duration_millis": a.duration_millis,
                    "error": a.error,
                });
                println!("{line}");
            }
        }
    }
    Ok(())
}
