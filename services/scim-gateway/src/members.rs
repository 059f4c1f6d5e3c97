//! Memberships read from group-service: a group's `members` (page by page,
//! streamed into every response that carries them) and users' readOnly
//! `groups`. How each element looks is SCIM's business
//! ([`scim::members::render_member`], [`scim::members::render_group_of_user`]).
//!
//! group-service keeps members as rows and hands them out in pages
//! (`ListMembers`), so a group's members are never one value anywhere: a
//! response writes each group without members, then each page as it
//! arrives, and holds at most a page or two in memory whatever the
//! group's size; a list response does so group after group. The pages are
//! read after the group itself, outside its transaction, so a membership
//! change that lands between two pages may show in later pages only; the
//! ETag is the version the group was read at.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::{ListGroupsOfMemberRequest, ListMembersRequest, Member, MemberType};
use idmesh_runtime::auth::AuthChannel;
use scim::attributes::Projection;
use scim::members::{MemberKind, render_group_of_user};
use scim::schema::GROUP_RESOURCE;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::response::{SCIM_CONTENT_TYPE, ScimResource, resource_headers};

/// Members per `ListMembers` call: large enough that a 100,000-member group
/// takes 20 calls, small enough (about 750 kB rendered) to hold one page
/// while the previous one is being sent.
const MEMBER_PAGE_SIZE: i32 = 5_000;

/// How many written chunks (a page of members, or up to [`CHUNK_BYTES`] of
/// other resources) may wait for a slow client before reading pauses: the
/// stream's whole buffer.
const PAGES_IN_FLIGHT: usize = 1;

/// How much of a streamed list response gathers before it is sent on: a
/// page of small users goes out in a few chunks, not one per user.
const CHUNK_BYTES: usize = 64 * 1024;

/// `ListGroupsOfMember` takes at most this many ids per call.
const MEMBER_IDS_PER_CALL: usize = 1_000;

/// The members of one group, read page by page.
#[derive(Debug)]
pub struct MemberPages {
    groups: GroupServiceClient<AuthChannel>,
    directory_id: String,
    group_id: String,
    /// Where the next page starts; `None` once the last page was read.
    next: Option<String>,
}

impl MemberPages {
    pub fn new(groups: GroupServiceClient<AuthChannel>, directory_id: &str, group_id: &str) -> Self {
        Self {
            groups,
            directory_id: directory_id.to_owned(),
            group_id: group_id.to_owned(),
            next: Some(String::new()),
        }
    }

    /// The next page, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Member>>, tonic::Status> {
        let Some(page_token) = self.next.take() else {
            return Ok(None);
        };
        let request = ListMembersRequest {
            directory_id: self.directory_id.clone(),
            group_id: self.group_id.clone(),
            page_size: MEMBER_PAGE_SIZE,
            page_token,
        };
        let page = self.groups.list_members(request).await?.into_inner();
        self.next = Some(page.next_page_token).filter(|token| !token.is_empty());
        Ok(Some(page.members))
    }
}

/// One member as a Group's `members` carries it.
fn render_member(directory_url: &str, member: &Member) -> Value {
    let kind = match member.r#type() {
        MemberType::Group => MemberKind::Group,
        MemberType::User | MemberType::Unspecified => MemberKind::User,
    };
    scim::members::render_member(directory_url, &member.value, kind, &member.display)
}

/// A group's members still to be written after the group: read page by
/// page, rendered under `directory_url`, projected as the response asks.
#[derive(Debug)]
pub struct PendingMembers {
    pages: MemberPages,
    directory_url: String,
    projection: Projection,
}

impl PendingMembers {
    pub fn new(pages: MemberPages, directory_url: String, projection: Projection) -> Self {
        Self {
            pages,
            directory_url,
            projection,
        }
    }
}

/// Answers with `group` (rendered and projected, without members) followed
/// by its members, streamed page by page.
///
/// The first page is read before answering, so that the common failure (a
/// group-service that is down) is still a SCIM error with its status. A
/// later failure can only cut the body short, which the client sees as a
/// broken response rather than a truncated group that parses.
pub async fn stream_group(group: ScimResource, mut members: PendingMembers) -> Result<Response, ApiError> {
    let first = members.pages.next().await?.unwrap_or_default();
    let (status, version, location) = (group.status, group.version, group.location.clone());
    let (mut body, stream) = BodyWriter::channel();
    let writing = async move {
        if write_group(&mut body, &group.body, members, first).await.is_ok() {
            // The client may be gone by now; nothing is left to stop.
            let _ = body.flush().await;
        }
    };
    tokio::spawn(writing.instrument(tracing::Span::current()));
    let mut response = Response::new(stream);
    *response.status_mut() = status;
    resource_headers(&mut response, version, &location);
    Ok(response)
}

/// Answers with a ListResponse: `envelope` (its `Resources` already in
/// place, groups without members), each group's members written after it
/// as they are read from group-service, so that the gateway holds the
/// page's documents and one page of members, whatever the groups' sizes.
///
/// `members` has one element per resource of the envelope, in order.
/// Nothing is read before answering: a group-service failure on the way
/// cuts the body short, which the client sees as a broken response.
pub fn stream_list(mut envelope: Value, members: Vec<Option<PendingMembers>>) -> Response {
    let resources = envelope
        .as_object_mut()
        .and_then(|envelope| envelope.shift_remove("Resources"))
        .and_then(|resources| match resources {
            Value::Array(resources) => Some(resources),
            _ => None,
        })
        .unwrap_or_default();
    let (mut body, stream) = BodyWriter::channel();
    let writing = async move {
        let mut head = envelope.to_string();
        // The envelope is an object with at least its schemas: drop its `}`.
        head.pop();
        body.push(&head);
        body.push(",\"Resources\":[");
        for (index, (resource, members)) in resources.iter().zip(members).enumerate() {
            if index > 0 {
                body.push(",");
            }
            let written = match members {
                Some(mut members) => match members.pages.next().await {
                    Ok(first) => write_group(&mut body, resource, members, first.unwrap_or_default()).await,
                    Err(status) => Err(body.fail(&status).await),
                },
                None => {
                    body.push(&resource.to_string());
                    body.flush_when_full().await
                }
            };
            if written.is_err() {
                return;
            }
        }
        body.push("]}");
        // The client may be gone by now; nothing is left to stop.
        let _ = body.flush().await;
    };
    tokio::spawn(writing.instrument(tracing::Span::current()));
    let mut response = Response::new(stream);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    response
}

/// Writes `group` (rendered, without members) with its members: `first`,
/// already read, then every further page.
async fn write_group(
    body: &mut BodyWriter,
    group: &Value,
    mut members: PendingMembers,
    first: Vec<Member>,
) -> Result<(), Stopped> {
    let mut head = group.to_string();
    // The rendered group is an object with at least its id: drop its `}`.
    head.pop();
    body.push(&head);
    body.push(",\"members\":[");
    let mut written = false;
    let mut page = first;
    loop {
        body.push(&render_page(
            &members.directory_url,
            &members.projection,
            &page,
            &mut written,
        ));
        body.flush().await?;
        page = match members.pages.next().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(status) => return Err(body.fail(&status).await),
        };
    }
    body.push("]}");
    Ok(())
}

/// Why writing a streamed body stopped early: the client went away, or
/// group-service failed and the body was cut short.
#[derive(Debug)]
struct Stopped;

/// A streamed response body being written: text gathers in a buffer that
/// is sent on as one chunk when it is large, when a group's member page is
/// complete, and at the end.
struct BodyWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: String,
}

impl BodyWriter {
    /// A writer and the body it feeds.
    fn channel() -> (BodyWriter, Body) {
        let (sender, receiver) = mpsc::channel(PAGES_IN_FLIGHT);
        let writer = BodyWriter {
            sender,
            buffer: String::new(),
        };
        (writer, Body::from_stream(ReceiverStream::new(receiver)))
    }

    fn push(&mut self, text: &str) {
        self.buffer.push_str(text);
    }

    /// Sends what is buffered.
    async fn flush(&mut self) -> Result<(), Stopped> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.sender.send(Ok(chunk)).await.map_err(|_| Stopped)
    }

    /// Sends what is buffered once it is at least [`CHUNK_BYTES`].
    async fn flush_when_full(&mut self) -> Result<(), Stopped> {
        if self.buffer.len() < CHUNK_BYTES {
            return Ok(());
        }
        self.flush().await
    }

    /// Cuts the body short after group-service failed: the client sees a
    /// broken response, never one that parses without the missing members.
    async fn fail(&mut self, status: &tonic::Status) -> Stopped {
        tracing::error!(%status, "reading members while streaming a response");
        let cut = std::io::Error::other("group-service failed while members were streamed");
        // The client may be gone already; either way the body ends here.
        let _ = self.sender.send(Err(cut)).await;
        Stopped
    }
}

/// One page of members, projected, as JSON array elements, each after a
/// comma once `written` says an element precedes it.
fn render_page(directory_url: &str, projection: &Projection, page: &[Member], written: &mut bool) -> String {
    let members = page.iter().map(|member| render_member(directory_url, member)).collect();
    let mut wrapper = Value::Object(Map::from_iter([("members".to_owned(), Value::Array(members))]));
    projection.apply(&mut wrapper, &GROUP_RESOURCE);
    let mut out = String::new();
    let members = wrapper.get("members").and_then(Value::as_array).into_iter().flatten();
    for member in members {
        if *written {
            out.push(',');
        }
        out.push_str(&member.to_string());
        *written = true;
    }
    out
}

/// The readOnly `groups` (RFC 7643 §4.1.2) of each of `user_ids` that is
/// in any group, by user id: the groups it is a direct member of, in calls
/// of [`MEMBER_IDS_PER_CALL`] ids, so that a page of users costs one or two
/// calls, not one per user.
pub async fn groups_of_users(
    groups: &GroupServiceClient<AuthChannel>,
    directory_id: &str,
    directory_url: &str,
    user_ids: &[&str],
) -> Result<HashMap<String, Vec<Value>>, ApiError> {
    let mut found: HashMap<String, Vec<Value>> = HashMap::new();
    for ids in user_ids.chunks(MEMBER_IDS_PER_CALL) {
        let request = ListGroupsOfMemberRequest {
            directory_id: directory_id.to_owned(),
            member_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            include_ancestors: false,
            without_group_names: false,
        };
        let memberships = groups.clone().list_groups_of_member(request).await?.into_inner();
        for membership in memberships.memberships {
            let group = render_group_of_user(directory_url, &membership.group_id, &membership.group_display_name);
            found.entry(membership.member_id).or_default().push(group);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIRECTORY: &str = "https://scim.example.com/scim/v2/d1";

    fn member(value: &str, kind: MemberType, display: &str) -> Member {
        Member {
            value: value.to_owned(),
            r#type: kind.into(),
            display: display.to_owned(),
        }
    }

    fn projection(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        Projection::parse(attributes, excluded, &GROUP_RESOURCE).expect("a valid projection")
    }

    #[test]
    fn pages_join_into_one_json_array_whatever_their_sizes() {
        let everything = projection(None, None);
        let mut written = false;
        let mut array = String::from("[");
        for page in [
            vec![],
            vec![member("u1", MemberType::User, "")],
            vec![],
            vec![member("u2", MemberType::User, ""), member("g1", MemberType::Group, "")],
        ] {
            array.push_str(&render_page(DIRECTORY, &everything, &page, &mut written));
        }
        array.push(']');
        let parsed: Vec<Value> = serde_json::from_str(&array).expect("a JSON array");
        let values: Vec<&str> = parsed.iter().filter_map(|m| m["value"].as_str()).collect();
        assert_eq!(values, ["u1", "u2", "g1"]);
    }

    #[test]
    fn pages_carry_only_the_member_attributes_asked_for() {
        let mut written = false;
        let page = [member("u1", MemberType::User, "Ada")];
        let rendered = render_page(DIRECTORY, &projection(Some("members.value"), None), &page, &mut written);
        assert_eq!(rendered, r#"{"value":"u1"}"#);
        let rendered = render_page(
            DIRECTORY,
            &projection(None, Some("members.display")),
            &page,
            &mut written,
        );
        assert_eq!(
            serde_json::from_str::<Value>(rendered.trim_start_matches(',')).expect("JSON"),
            json!({"value": "u1", "$ref": format!("{DIRECTORY}/Users/u1"), "type": "User"})
        );
    }
}
