//! Memberships read from group-service: a group's `members` (page by page,
//! and streamed when a response carries one group) and users' readOnly
//! `groups`. How each element looks is SCIM's business
//! ([`scim::members::render_member`], [`scim::members::render_group_of_user`]).
//!
//! group-service keeps members as rows and hands them out in pages
//! (`ListMembers`), so a group's members are never one value anywhere: GET
//! of one group writes the group without members, then each page as it
//! arrives, and holds at most a page or two in memory whatever the group's
//! size. The pages are read after the group itself, outside its
//! transaction, so a membership change that lands between two pages may
//! show in later pages only; the ETag is the version the group was read at.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::response::Response;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_proto::v1::{ListGroupsOfMemberRequest, ListMembersRequest, Member, MemberType};
use idmesh_runtime::auth::AuthChannel;
use scim::attributes::Projection;
use scim::members::{MemberKind, render_group_of_user};
use scim::schema::GROUP_RESOURCE;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::response::{ScimResource, resource_headers};

/// Members per `ListMembers` call: large enough that a 100,000-member group
/// takes 20 calls, small enough (about 750 kB rendered) to hold one page
/// while the previous one is being sent.
const MEMBER_PAGE_SIZE: i32 = 5_000;

/// How many rendered pages may wait for a slow client before reading
/// pauses: the stream's whole buffer.
const PAGES_IN_FLIGHT: usize = 1;

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

    /// Every member, rendered: for list responses, which hold each group of
    /// the page whole.
    pub async fn collect(mut self, directory_url: &str) -> Result<Vec<Value>, ApiError> {
        let mut members = Vec::new();
        while let Some(page) = self.next().await? {
            members.extend(page.iter().map(|member| render_member(directory_url, member)));
        }
        Ok(members)
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

/// Answers with `group` (rendered and projected, without members) followed
/// by its members, streamed page by page from `pages`.
///
/// The first page is read before answering, so that the common failure (a
/// group-service that is down) is still a SCIM error with its status. A
/// later failure can only cut the body short, which the client sees as a
/// broken response rather than a truncated group that parses.
pub async fn stream_group(
    group: ScimResource,
    mut pages: MemberPages,
    directory_url: String,
    projection: Projection,
) -> Result<Response, ApiError> {
    let first = pages.next().await?.unwrap_or_default();
    let mut head = group.body.to_string();
    // The rendered group is an object with at least its id: drop its `}`.
    head.pop();
    head.push_str(",\"members\":[");
    let mut written = false;
    head.push_str(&render_page(&directory_url, &projection, &first, &mut written));

    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(PAGES_IN_FLIGHT);
    let group_id = pages.group_id.clone();
    let streaming = async move {
        loop {
            let chunk = match pages.next().await {
                Ok(Some(page)) => Ok(Bytes::from(render_page(
                    &directory_url,
                    &projection,
                    &page,
                    &mut written,
                ))),
                Ok(None) => break,
                Err(status) => {
                    tracing::error!(%group_id, %status, "reading members while streaming a group");
                    Err(std::io::Error::other(
                        "group-service failed while members were streamed",
                    ))
                }
            };
            let failed = chunk.is_err();
            // The client went away: stop reading.
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
        }
        // The client may be gone by now; nothing is left to stop.
        let _ = sender.send(Ok(Bytes::from_static(b"]}"))).await;
    };
    tokio::spawn(streaming.instrument(tracing::Span::current()));

    let body = Body::from_stream(tokio_stream::once(Ok(Bytes::from(head))).chain(ReceiverStream::new(receiver)));
    let mut response = Response::new(body);
    *response.status_mut() = group.status;
    resource_headers(&mut response, group.version, &group.location);
    Ok(response)
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
