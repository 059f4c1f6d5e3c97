//! SCIM filters (RFC 7644 §3.4.2.2): the full grammar parsed into an AST
//! ([`parse`]), evaluated in memory against a JSON resource ([`matches()`]),
//! and written back as filter text (`Display`).
//!
//! The AST is what storage code translates into SQL; in-memory evaluation
//! serves PATCH value filters and anything that cannot go to the database.

mod eval;
mod fold;
mod parser;

use std::fmt;

pub use eval::matches;
pub(crate) use eval::matches_element;
pub use fold::{fold, fold_text};
pub use parser::parse;

use crate::path::AttrPath;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// How deeply groups, `not (...)` and value filters may nest.
pub const MAX_FILTER_DEPTH: usize = 32;
/// The most comparisons one filter may join with `and` and `or`: each term
/// becomes a SQL condition, and no IdP sends more than a handful.
pub const MAX_FILTER_TERMS: usize = 100;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`.
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `path pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// Both hold.
    And(Box<Filter>, Box<Filter>),
    /// Either holds.
    Or(Box<Filter>, Box<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `path[filter]`: some value of a multi-valued attribute matches
    /// `filter`, whose paths are relative to that value.
    ValuePath { path: AttrPath, filter: Box<Filter> },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Every operator.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The operator as written in filters, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator for its name, any case.
    pub fn parse(s: &str) -> Option<CompareOp> {
        CompareOp::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(s))
    }
}

/// The literal a comparison compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Null,
}

impl CompValue {
    /// The boolean a comparison value means: `true`/`false`, or the string
    /// of either in any case, as Microsoft Entra ID writes booleans.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            CompValue::Bool(b) => Some(*b),
            CompValue::Str(s) => crate::json::bool_from_str(s),
            CompValue::Num(_) | CompValue::Null => None,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// Writes the filter so that [`parse`] reads back the same AST:
/// parentheses appear exactly where precedence and associativity need them.
///
/// The text is canonical (single spaces, lower-case keywords, strings
/// escaped as JSON, numbers as serde_json prints them), so it can be longer
/// than the text that was parsed — `n eq 1e5` prints as `n eq 100000.0` —
/// and a filter parsed near [`MAX_FILTER_LEN`] may print past it.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(left, right) => {
                write_operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(left, right) => {
                write_operand(f, left, false)?;
                f.write_str(" or ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, grouped: bool) -> fmt::Result {
    if grouped {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_groups_only_where_precedence_needs_it() {
        for text in [
            "userName eq \"bjensen\"",
            "title pr and userType eq \"Employee\"",
            "title pr or userType eq \"Intern\" and active eq true",
            "(title pr or userType eq \"Intern\") and active eq true",
            "a pr and (b pr and c pr)",
            "a pr or (b pr or c pr)",
            "not (emails co \"example.com\")",
            "emails[type eq \"work\" and value co \"@example.com\"]",
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
            "x eq null or y eq 1.5 or z ne -3",
        ] {
            let parsed = parse(text).expect(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parse(&parsed.to_string()), Ok(parsed));
        }
    }

    #[test]
    fn display_escapes_strings_as_json() {
        let f = parse(r#"displayName eq "say \"hi\"\n""#).expect("filter");
        assert_eq!(f.to_string(), r#"displayName eq "say \"hi\"\n""#);
    }

    #[test]
    fn a_filter_at_the_length_limit_can_print_past_it() {
        // Found by the filter_parse fuzz target: the canonical text adds
        // spaces and digits, so the length limit, which guards the parser,
        // can reject a filter's own printed form.
        let text = format!("n eq 1e5 or s ew\"{}\"", "x".repeat(MAX_FILTER_LEN - 18));
        assert_eq!(text.len(), MAX_FILTER_LEN);
        let printed = parse(&text).expect("within the limit").to_string();
        assert!(printed.starts_with("n eq 100000.0 or s ew \"xxx"), "{printed}");
        assert_eq!(printed.len(), MAX_FILTER_LEN + 6);
        assert!(parse(&printed).is_err_and(|e| e.detail.contains("the limit is 4096")));
    }

    #[test]
    fn compare_op_names_ignore_case() {
        assert_eq!(CompareOp::parse("GE"), Some(CompareOp::Ge));
        assert_eq!(CompareOp::parse("pr"), None);
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["userName", "title", "emails", "name", "active", "x-1", "a_b"])
            .prop_map(str::to_owned)
    }

    fn attr_path() -> impl Strategy<Value = AttrPath> {
        (
            prop::option::of(prop::sample::select(vec![
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ])),
            name(),
            prop::option::of(name()),
        )
            .prop_map(|(urn, attr, sub_attr)| AttrPath {
                urn: urn.map(str::to_owned),
                attr,
                sub_attr,
            })
    }

    fn comp_value() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            any::<String>().prop_map(CompValue::Str),
            any::<i64>().prop_map(|n| CompValue::Num(n.into())),
            // Short decimals: serde_json's default float parser is exact for
            // these, not for every f64 (that needs its float_roundtrip feature).
            (any::<i32>(), 1..6_i32)
                .prop_filter_map("finite", |(m, e)| serde_json::Number::from_f64(
                    f64::from(m) / 10_f64.powi(e)
                ))
                .prop_map(CompValue::Num),
            any::<bool>().prop_map(CompValue::Bool),
            Just(CompValue::Null),
        ]
    }

    fn compare_op() -> impl Strategy<Value = CompareOp> {
        prop::sample::select(CompareOp::ALL.to_vec())
    }

    fn attr_expr() -> impl Strategy<Value = Filter> {
        prop_oneof![
            (attr_path(), compare_op(), comp_value()).prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
            attr_path().prop_map(Filter::Present),
        ]
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            4 => attr_expr(),
            1 => (attr_path(), attr_expr()).prop_map(|(path, inner)| Filter::ValuePath { path, filter: Box::new(inner) }),
        ];
        leaf.prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_text(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn parser_never_panics_on_filter_like_text(s in r#"[a-zA-Z.:\[\]() "\\0-9\-]{0,80}"#) {
            let _ = parse(&s);
        }

        #[test]
        fn display_then_parse_gives_back_the_same_filter(f in filter()) {
            let text = f.to_string();
            prop_assert_eq!(parse(&text), Ok(f), "{}", text);
        }
    }
}
