//! The typed SCIM client: `scim.users().create(&NewUser::new(..)) -> User`.
//! Each call asserts the status a success answers with; the types carry the
//! fields tests read (add one when a test needs it), so a test says what it
//! checks instead of indexing JSON. Tests of exact bodies, headers and
//! errors use the raw client.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ScimClient, encode, patch_op};

/// A SCIM resource type the typed client serves.
pub trait Resource: DeserializeOwned {
    /// The endpoint under the directory's base URL, like `/Users`.
    const ENDPOINT: &'static str;
    /// The body that creates one.
    type New: Serialize;

    fn id(&self) -> &str;
}

/// A user as the gateway renders it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_name: String,
    /// `None` when the attribute was removed.
    pub active: Option<bool>,
    #[serde(default)]
    pub emails: Vec<Email>,
    pub meta: Meta,
}

impl Resource for User {
    const ENDPOINT: &'static str = "/Users";
    type New = NewUser;

    fn id(&self) -> &str {
        &self.id
    }
}

/// A group as the gateway renders it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    /// Absent from the rendering when the group has none.
    #[serde(default)]
    pub members: Vec<Member>,
    pub meta: Meta,
}

impl Group {
    /// The ids of the members, sorted.
    pub fn member_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.members.iter().map(|member| member.value.clone()).collect();
        ids.sort();
        ids
    }
}

impl Resource for Group {
    const ENDPOINT: &'static str = "/Groups";
    type New = NewGroup;

    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Member {
    /// The id of the user or group.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Meta {
    /// The ETag, `W/"<version>"`.
    pub version: String,
}

/// One page of a list or search.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub total_results: usize,
    pub items_per_page: usize,
    pub start_index: usize,
    /// Present also on an empty page.
    #[serde(rename = "Resources")]
    pub resources: Vec<T>,
}

impl<T: Resource> ListResponse<T> {
    /// The ids on the page, in order.
    pub fn ids(&self) -> Vec<String> {
        self.resources.iter().map(|resource| resource.id().to_owned()).collect()
    }
}

impl<T> ListResponse<T> {
    /// What the page holds, mapped by `f`, sorted.
    pub fn sorted<K: Ord>(&self, f: impl Fn(&T) -> K) -> Vec<K> {
        let mut keys: Vec<K> = self.resources.iter().map(f).collect();
        keys.sort();
        keys
    }
}

/// The body of a new user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub schemas: Vec<String>,
    pub user_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Name {
    pub given_name: String,
    pub family_name: String,
}

impl NewUser {
    /// A minimal active user, as Okta sends it: a name, and `user_name` as
    /// the primary work email.
    pub fn new(user_name: &str) -> NewUser {
        NewUser {
            schemas: vec!["urn:ietf:params:scim:schemas:core:2.0:User".to_owned()],
            user_name: user_name.to_owned(),
            external_id: None,
            name: Some(Name {
                given_name: "Test".to_owned(),
                family_name: "User".to_owned(),
            }),
            emails: vec![Email {
                value: user_name.to_owned(),
                kind: Some("work".to_owned()),
                primary: Some(true),
            }],
            active: Some(true),
        }
    }

    pub fn external_id(mut self, external_id: &str) -> NewUser {
        self.external_id = Some(external_id.to_owned());
        self
    }
}

/// The body of a new group.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewGroup {
    pub schemas: Vec<String>,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub members: Vec<NewMember>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewMember {
    pub value: String,
}

impl NewGroup {
    /// A group with these members (ids of users or groups).
    pub fn new(display_name: &str, members: &[&str]) -> NewGroup {
        NewGroup {
            schemas: vec!["urn:ietf:params:scim:schemas:core:2.0:Group".to_owned()],
            display_name: display_name.to_owned(),
            external_id: None,
            members: members
                .iter()
                .map(|id| NewMember {
                    value: (*id).to_owned(),
                })
                .collect(),
        }
    }

    pub fn external_id(mut self, external_id: &str) -> NewGroup {
        self.external_id = Some(external_id.to_owned());
        self
    }
}

/// The typed calls on one resource type of one directory.
#[derive(Debug)]
pub struct Resources<'a, T> {
    scim: &'a ScimClient,
    resource: PhantomData<T>,
}

impl ScimClient {
    /// Typed calls on `/Users`.
    pub fn users(&self) -> Resources<'_, User> {
        Resources {
            scim: self,
            resource: PhantomData,
        }
    }

    /// Typed calls on `/Groups`.
    pub fn groups(&self) -> Resources<'_, Group> {
        Resources {
            scim: self,
            resource: PhantomData,
        }
    }
}

impl<T: Resource> Resources<'_, T> {
    /// POSTs `new`; 201 with the created resource.
    pub async fn create(&self, new: &T::New) -> T {
        let body = serde_json::to_value(new).expect("a JSON body");
        parse(self.scim.post(T::ENDPOINT, body, 201).await.body)
    }

    /// 200 with the resource.
    pub async fn get(&self, id: &str) -> T {
        parse(self.scim.get(&self.path(id), 200).await.body)
    }

    /// PATCHes with these operations (a PatchOp's `Operations`); 200 with
    /// the changed resource.
    pub async fn patch(&self, id: &str, operations: Value) -> T {
        parse(self.scim.patch(&self.path(id), patch_op(operations), 200).await.body)
    }

    /// The first page (of up to 100) of what `filter` finds.
    pub async fn list(&self, filter: &str) -> ListResponse<T> {
        let query = format!("{}?filter={}", T::ENDPOINT, encode(filter));
        parse(self.scim.get(&query, 200).await.body)
    }

    fn path(&self, id: &str) -> String {
        format!("{}/{id}", T::ENDPOINT)
    }
}

fn parse<T: DeserializeOwned>(body: Value) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|err| panic!("not the expected resource ({err}): {body:#}"))
}
