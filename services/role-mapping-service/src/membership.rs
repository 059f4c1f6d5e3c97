//! Which groups users are in, directly and through nested groups, asked of
//! group-service in one `ListGroupsOfMember` call (with ancestors, without
//! the groups' names, which no rule reads) per 1,000 users: it answers the
//! users' memberships and those of every group above them, up to 16
//! levels, each once.
//!
//! Bounded whatever the data: group-service climbs at most 16 levels and
//! answers at most 100,000 memberships per call (a larger answer is an
//! error, not a truncated one); a cycle (A in B, B in A) ends where it
//! closes, since a group is visited once.

use std::collections::{HashMap, VecDeque};

use idmesh_proto::v1::ListGroupsOfMemberRequest;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_runtime::auth::AuthChannel;

use crate::Error;

/// Member ids per ListGroupsOfMember call (group-service's limit).
const CHUNK: usize = 1_000;

/// For each user, every group it is in with the direct group through which
/// it is reached.
pub type Closure = HashMap<String, HashMap<String, String>>;

/// The groups of each of `user_ids`, nested groups included.
pub async fn closure(
    groups: &GroupServiceClient<AuthChannel>,
    directory_id: &str,
    user_ids: &[String],
) -> Result<Closure, Error> {
    let mut closure = Closure::with_capacity(user_ids.len());
    for chunk in user_ids.chunks(CHUNK) {
        let answer = groups
            .clone()
            .list_groups_of_member(ListGroupsOfMemberRequest {
                directory_id: directory_id.to_owned(),
                member_ids: chunk.to_vec(),
                include_ancestors: true,
                without_group_names: true,
            })
            .await
            .map_err(Error::groups)?
            .into_inner();
        // Users and groups have distinct ids, so one map holds both the
        // users' direct groups and the groups' parents.
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for membership in answer.memberships {
            groups_of
                .entry(membership.member_id)
                .or_default()
                .push(membership.group_id);
        }
        for user_id in chunk {
            let reached = groups_of
                .get(user_id)
                .map(|direct| reach(direct, &groups_of))
                .unwrap_or_default();
            closure.insert(user_id.clone(), reached);
        }
    }
    Ok(closure)
}

/// Every group reachable from `direct` through `parents`, each with the
/// direct group it was first reached from (breadth first, so the nearest).
fn reach(direct: &[String], parents: &HashMap<String, Vec<String>>) -> HashMap<String, String> {
    let mut reached: HashMap<String, String> = HashMap::new();
    let mut queue: VecDeque<(String, String)> = VecDeque::new();
    for group in direct {
        if !reached.contains_key(group) {
            reached.insert(group.clone(), group.clone());
            queue.push_back((group.clone(), group.clone()));
        }
    }
    while let Some((group, via)) = queue.pop_front() {
        for parent in parents.get(&group).into_iter().flatten() {
            if !reached.contains_key(parent) {
                reached.insert(parent.clone(), via.clone());
                queue.push_back((parent.clone(), via.clone()));
            }
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parents(edges: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (child, parent) in edges {
            map.entry((*child).to_owned()).or_default().push((*parent).to_owned());
        }
        map
    }

    #[test]
    fn nested_groups_are_reached_through_their_direct_group() {
        let reached = reach(&["a".to_owned()], &parents(&[("a", "b"), ("b", "c")]));
        assert_eq!(reached.len(), 3);
        assert_eq!(reached["c"], "a");
    }

    #[test]
    fn a_cycle_ends_where_it_closes() {
        let reached = reach(&["a".to_owned()], &parents(&[("a", "b"), ("b", "a"), ("b", "c")]));
        let mut groups: Vec<&String> = reached.keys().collect();
        groups.sort();
        assert_eq!(groups, ["a", "b", "c"]);
        assert_eq!(reached["a"], "a");
    }
}
