//! A directory's role mapping as a domain value, checked once when it comes
//! in (from SetRoleMapping or PreviewMappings), and how it decides a user's
//! roles from what is known of the user: pure, no I/O.

use std::collections::{BTreeMap, HashMap};

use idmesh_proto::v1 as pb;
use scim::ScimError;

/// Most rules one directory's mapping may have.
pub const MAX_RULES: usize = 1_000;
/// Most roles one rule may grant.
pub const MAX_ROLES_PER_RULE: usize = 16;
/// Longest group id or roles value a rule may name.
const MAX_SOURCE_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Single,
    Multiple,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Multiple => "multiple",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "single" => Some(Mode::Single),
            "multiple" => Some(Mode::Multiple),
            _ => None,
        }
    }

    fn from_proto(mode: i32) -> Result<Mode, ScimError> {
        match pb::RoleMappingMode::try_from(mode) {
            Ok(pb::RoleMappingMode::Single) => Ok(Mode::Single),
            Ok(pb::RoleMappingMode::Multiple) => Ok(Mode::Multiple),
            _ => Err(ScimError::invalid_value("mode must be SINGLE or MULTIPLE")),
        }
    }

    fn to_proto(self) -> pb::RoleMappingMode {
        match self {
            Mode::Single => pb::RoleMappingMode::Single,
            Mode::Multiple => pb::RoleMappingMode::Multiple,
        }
    }
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Group(String),
    RolesValue(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub source: Source,
    pub roles: Vec<String>,
    pub precedence: i32,
}

/// A directory's role mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub mode: Mode,
    pub rules: Vec<Rule>,
    /// `None`: a user no rule matches has no role.
    pub default_role: Option<String>,
    pub version: i64,
    /// Whether losing a role revokes the user's sessions.
    pub revoke_sessions: bool,
}

impl Mapping {
    /// What a directory without a mapping has: no rules, no default.
    pub fn empty() -> Mapping {
        Mapping {
            mode: Mode::Multiple,
            rules: Vec::new(),
            default_role: None,
            version: 0,
            revoke_sessions: false,
        }
    }

    /// A mapping from a request, with its shape checked (bounds, one role
    /// per rule in single mode); whether its roles and groups exist is the
    /// caller's to check.
    pub fn from_request(mode: i32, rules: Vec<pb::MappingRule>, default_role: String) -> Result<Mapping, ScimError> {
        let mode = Mode::from_proto(mode)?;
        if rules.len() > MAX_RULES {
            return Err(ScimError::invalid_value(format!(
                "at most {MAX_RULES} rules per directory, not {}",
                rules.len()
            )));
        }
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| Rule::from_proto(index, rule, mode))
            .collect::<Result<Vec<_>, _>>()?;
        let default_role = Some(default_role.trim().to_owned()).filter(|role| !role.is_empty());
        Ok(Mapping {
            mode,
            rules,
            default_role,
            version: 0,
            revoke_sessions: false,
        })
    }

    /// Every role key the mapping names, once each, sorted.
    pub fn role_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .rules
            .iter()
            .flat_map(|rule| rule.roles.iter().cloned())
            .chain(self.default_role.clone())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every group id the rules name, once each, sorted.
    pub fn group_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .rules
            .iter()
            .filter_map(|rule| match &rule.source {
                Source::Group(id) => Some(id.clone()),
                Source::RolesValue(_) => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn to_proto(&self, directory_id: &str) -> pb::RoleMapping {
        pb::RoleMapping {
            directory_id: directory_id.to_owned(),
            mode: self.mode.to_proto().into(),
            rules: self.rules.iter().map(Rule::to_proto).collect(),
            default_role: self.default_role.clone().unwrap_or_default(),
            version: self.version,
            revoke_sessions_on_role_removal: self.revoke_sessions,
        }
    }

    /// The roles of a user, by role key, with their sources. A deactivated
    /// user has none.
    pub fn decide(&self, user: &UserFacts) -> BTreeMap<String, Vec<pb::RoleSource>> {
        let mut roles: BTreeMap<String, Vec<pb::RoleSource>> = BTreeMap::new();
        if !user.active {
            return roles;
        }
        // The rules that match, in the order they win in single mode.
        let mut matched: Vec<(usize, &Rule, pb::RoleSource)> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let rule_index = i32::try_from(index).unwrap_or(i32::MAX);
            let source = match &rule.source {
                Source::Group(group_id) => user.groups.get(group_id).map(|via| pb::RoleSource {
                    kind: pb::RoleSourceKind::Group.into(),
                    group_id: group_id.clone(),
                    via_group_id: via.clone(),
                    rule_index,
                    precedence: rule.precedence,
                    ..Default::default()
                }),
                Source::RolesValue(value) => user.roles_values.iter().any(|v| v == value).then(|| pb::RoleSource {
                    kind: pb::RoleSourceKind::RolesAttribute.into(),
                    roles_value: value.clone(),
                    rule_index,
                    precedence: rule.precedence,
                    ..Default::default()
                }),
            };
            if let Some(source) = source {
                matched.push((index, rule, source));
            }
        }
        match self.mode {
            Mode::Multiple => {
                for (_, rule, source) in matched {
                    for role in &rule.roles {
                        roles.entry(role.clone()).or_default().push(source.clone());
                    }
                }
            }
            Mode::Single => {
                if let Some((_, winner, _)) = matched.iter().min_by_key(|(index, rule, _)| (rule.precedence, *index)) {
                    let role = winner.roles.first().cloned().unwrap_or_default();
                    // Every matching rule that grants the winning role is a
                    // source of it.
                    let sources = matched
                        .iter()
                        .filter(|(_, rule, _)| rule.roles.first() == Some(&role))
                        .map(|(_, _, source)| source.clone())
                        .collect();
                    roles.insert(role, sources);
                }
            }
        }
        if roles.is_empty()
            && let Some(default) = &self.default_role
        {
            let source = pb::RoleSource {
                kind: pb::RoleSourceKind::Default.into(),
                ..Default::default()
            };
            roles.insert(default.clone(), vec![source]);
        }
        roles
    }
}

impl Rule {
    fn from_proto(index: usize, rule: pb::MappingRule, mode: Mode) -> Result<Rule, ScimError> {
        let invalid = |reason: String| ScimError::invalid_value(format!("rule {index}: {reason}"));
        let source = match rule.source {
            Some(pb::mapping_rule::Source::GroupId(id)) if !id.trim().is_empty() => Source::Group(id.trim().to_owned()),
            Some(pb::mapping_rule::Source::RolesValue(value)) if !value.is_empty() => Source::RolesValue(value),
            _ => return Err(invalid("needs a group_id or a roles_value".to_owned())),
        };
        let text = match &source {
            Source::Group(text) | Source::RolesValue(text) => text,
        };
        if text.len() > MAX_SOURCE_LEN {
            return Err(invalid(format!("a source is at most {MAX_SOURCE_LEN} bytes")));
        }
        let roles: Vec<String> = rule.roles.into_iter().map(|role| role.trim().to_owned()).collect();
        if roles.is_empty() || roles.iter().any(String::is_empty) {
            return Err(invalid("names no role".to_owned()));
        }
        if roles.len() > MAX_ROLES_PER_RULE {
            return Err(invalid(format!("at most {MAX_ROLES_PER_RULE} roles per rule")));
        }
        if mode == Mode::Single && roles.len() != 1 {
            return Err(invalid(format!(
                "in SINGLE mode a rule grants exactly one role, not {}",
                roles.len()
            )));
        }
        let mut seen = roles.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != roles.len() {
            return Err(invalid("names a role twice".to_owned()));
        }
        Ok(Rule {
            source,
            roles,
            precedence: rule.precedence,
        })
    }

    fn to_proto(&self) -> pb::MappingRule {
        let source = match &self.source {
            Source::Group(id) => pb::mapping_rule::Source::GroupId(id.clone()),
            Source::RolesValue(value) => pb::mapping_rule::Source::RolesValue(value.clone()),
        };
        pb::MappingRule {
            source: Some(source),
            roles: self.roles.clone(),
            precedence: self.precedence,
        }
    }
}

/// What the mapping needs to know of a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    pub active: bool,
    /// The `value`s of the user's SCIM `roles` attribute.
    pub roles_values: Vec<String>,
    /// Every group the user is in, directly or through nested groups, with
    /// the direct group through which it is reached.
    pub groups: HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_rule(group: &str, roles: &[&str], precedence: i32) -> pb::MappingRule {
        pb::MappingRule {
            source: Some(pb::mapping_rule::Source::GroupId(group.to_owned())),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            precedence,
        }
    }

    fn user(groups: &[&str]) -> UserFacts {
        UserFacts {
            active: true,
            roles_values: Vec::new(),
            groups: groups.iter().map(|g| ((*g).to_owned(), (*g).to_owned())).collect(),
        }
    }

    fn keys(roles: &BTreeMap<String, Vec<pb::RoleSource>>) -> Vec<&str> {
        roles.keys().map(String::as_str).collect()
    }

    #[test]
    fn single_mode_takes_the_lowest_precedence_then_the_earlier_rule() {
        let rules = vec![
            group_rule("g-member", &["member"], 2),
            group_rule("g-admin", &["admin"], 1),
            group_rule("g-other", &["viewer"], 1),
        ];
        let mapping = Mapping::from_request(1, rules, String::new()).expect("valid");
        assert_eq!(keys(&mapping.decide(&user(&["g-member", "g-admin"]))), ["admin"]);
        assert_eq!(keys(&mapping.decide(&user(&["g-other", "g-admin"]))), ["admin"]);
        assert_eq!(keys(&mapping.decide(&user(&["g-member"]))), ["member"]);
    }

    #[test]
    fn multiple_mode_is_the_union_and_the_default_only_without_a_match() {
        let rules = vec![group_rule("a", &["x", "y"], 0), group_rule("b", &["y"], 0)];
        let mapping = Mapping::from_request(2, rules, "guest".to_owned()).expect("valid");
        let both = mapping.decide(&user(&["a", "b"]));
        assert_eq!(keys(&both), ["x", "y"]);
        assert_eq!(both["y"].len(), 2);
        assert_eq!(keys(&mapping.decide(&user(&[]))), ["guest"]);
        let inactive = UserFacts {
            active: false,
            ..user(&["a"])
        };
        assert!(mapping.decide(&inactive).is_empty());
    }

    #[test]
    fn malformed_mappings_are_refused_with_the_rule() {
        let cases = [
            (1, vec![group_rule("a", &["x", "y"], 0)], "exactly one role"),
            (2, vec![group_rule("a", &[], 0)], "names no role"),
            (2, vec![group_rule("", &["x"], 0)], "group_id or a roles_value"),
            (0, vec![], "SINGLE or MULTIPLE"),
            (2, vec![group_rule("a", &["x", "x"], 0)], "twice"),
        ];
        for (mode, rules, reason) in cases {
            let err = Mapping::from_request(mode, rules, String::new()).expect_err(reason);
            assert!(err.detail.contains(reason), "{err:?}");
        }
        let too_many = vec![group_rule("a", &["x"], 0); MAX_RULES + 1];
        assert!(Mapping::from_request(2, too_many, String::new()).is_err());
    }
}
