//! `idmesh events tail`: follows a directory's change stream from
//! events-service, one JSON object per line, with the same connection
//! options as the other admin commands.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use idmesh_proto::v1 as pb;
use tonic::Code;

use crate::admin::Connection;

/// How long `tail` waits before it resumes a stream that broke.
const RESUME_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Follow a directory's events, one JSON object per line, until
    /// interrupted. A broken stream resumes after the last event printed.
    Tail {
        /// The directory's id (see `idmesh directory list`).
        #[arg(long)]
        directory: String,
        /// Print the events after this sequence number (0: every event
        /// kept) [default: only events from now on].
        #[arg(long, value_name = "SEQUENCE", value_parser = clap::value_parser!(i64).range(0..))]
        from: Option<i64>,
        /// Only these types, comma-separated: user.created, user.updated,
        /// user.deactivated, user.reactivated, user.deleted, group.created,
        /// group.updated, group.deleted, member.added, member.removed,
        /// token.issued, token.revoked.
        #[arg(long = "type", value_delimiter = ',', value_name = "TYPE")]
        types: Vec<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

pub(crate) fn parse_types(names: &[String]) -> anyhow::Result<Vec<i32>> {
    names
        .iter()
        .map(|name| {
            idmesh_api::events::parse_type(name).map(i32::from).ok_or_else(|| {
                let known: Vec<&str> = idmesh_api::events::type_names().collect();
                anyhow::anyhow!("unknown event type {name:?}; known types: {}", known.join(", "))
            })
        })
        .collect()
}

pub async fn events(command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::Tail {
        directory,
        from,
        types,
        connection,
    } = command;
    let types = parse_types(&types)?;
    let connection = connection.endpoint()?;
    let mut client = connection.events()?;
    let mut after = match from {
        Some(after) => after,
        None => {
            let request = pb::ListEventsRequest {
                directory_id: directory.clone(),
                page_size: 1,
                descending: true,
                ..Default::default()
            };
            let page = client
                .list_events(request)
                .await
                .with_context(|| connection.event_context())?;
            page.into_inner().latest_sequence
        }
    };
    loop {
        let request = pb::WatchEventsRequest {
            directory_id: directory.clone(),
            after_sequence: after,
            types: types.clone(),
        };
        let mut stream = client
            .watch_events(request)
            .await
            .with_context(|| connection.event_context())?
            .into_inner();
        let broken = loop {
            match stream.message().await {
                Ok(Some(pb::WatchEventsResponse {
                    message: Some(pb::watch_events_response::Message::Event(event)),
                })) => {
                    println!("{}", idmesh_api::events::to_json(&event));
                    after = event.sequence;
                }
                Ok(Some(pb::WatchEventsResponse {
                    message: Some(pb::watch_events_response::Message::Heartbeat(heartbeat)),
                })) => after = after.max(heartbeat.sequence),
                Ok(Some(pb::WatchEventsResponse { message: None })) => {}
                Ok(None) => break Code::Unavailable,
                Err(status) if matches!(status.code(), Code::Unavailable | Code::Unknown) => break status.code(),
                Err(status) => return Err(status).with_context(|| connection.event_context()),
            }
        };
        eprintln!("idmesh: the event stream ended ({broken:?}); resuming after {after}");
        tokio::time::sleep(RESUME_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_taken_by_name_and_an_unknown_one_names_the_known_ones() {
        let names = ["user.created".to_owned(), "member.added".to_owned()];
        assert_eq!(
            parse_types(&names).expect("known"),
            [
                i32::from(pb::EventType::UserCreated),
                i32::from(pb::EventType::MemberAdded)
            ]
        );
        let err = parse_types(&["user.exploded".to_owned()]).expect_err("unknown");
        assert!(err.to_string().contains("member.removed"), "{err}");
    }
}
