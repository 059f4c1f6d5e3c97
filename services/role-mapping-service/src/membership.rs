//! Which groups users are in, directly and through nested groups, asked of
//! group-service (`ListGroupsOfMember`) one level at a time for a whole
//! batch of users: the users' direct groups in one call per 1,000 users,
//! then each level of parents in one call per 1,000 groups.
//!
//! Bounded whatever the data: at most [`MAX_DEPTH`] levels above the
//! direct groups and [`MAX_GROUPS`] groups in all; a cycle (A in B, B in A)
//! ends where it closes, since a group is visited once.

use std::collections::{HashMap, HashSet, VecDeque};

use idmesh_proto::v1::ListGroupsOfMemberRequest;
use idmesh_proto::v1::group_service_client::GroupServiceClient;
use idmesh_runtime::auth::AuthChannel;

use crate::Error;

/// Levels of nesting followed above a user's direct groups.
pub const MAX_DEPTH: usize = 16;
/// Most groups one computation visits.
pub const MAX_GROUPS: usize = 20_000;
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
    let direct = memberships(groups, directory_id, user_ids).await?;
    let mut parents: HashMap<String, Vec<String>> = HashMap::new();
    let mut visited: HashSet<String> = direct.values().flatten().cloned().collect();
    let mut frontier: Vec<String> = visited.iter().cloned().collect();
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() || visited.len() >= MAX_GROUPS {
            break;
        }
        let level = memberships(groups, directory_id, &frontier).await?;
        frontier = Vec::new();
        for (child, its_parents) in level {
            for parent in &its_parents {
                if visited.len() < MAX_GROUPS && visited.insert(parent.clone()) {
                    frontier.push(parent.clone());
                }
            }
            parents.insert(child, its_parents);
        }
    }
    Ok(user_ids
        .iter()
        .map(|user_id| {
            let reached = direct
                .get(user_id)
                .map(|direct| reach(direct, &parents))
                .unwrap_or_default();
            (user_id.clone(), reached)
        })
        .collect())
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

/// The groups each of `member_ids` is a direct member of.
async fn memberships(
    groups: &GroupServiceClient<AuthChannel>,
    directory_id: &str,
    member_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, Error> {
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in member_ids.chunks(CHUNK) {
        let answer = groups
            .clone()
            .list_groups_of_member(ListGroupsOfMemberRequest {
                directory_id: directory_id.to_owned(),
                member_ids: chunk.to_vec(),
            })
            .await
            .map_err(Error::groups)?
            .into_inner();
        for membership in answer.memberships {
            found.entry(membership.member_id).or_default().push(membership.group_id);
        }
    }
    Ok(found)
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
