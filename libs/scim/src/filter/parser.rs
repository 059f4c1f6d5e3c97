//! Filter text → [`Filter`]: a tokenizer and a recursive-descent parser for
//! the RFC 7644 §3.4.2.2 grammar, with length, nesting and term limits so that
//! hostile input is rejected before it costs anything.

use serde_json::Number;

use super::{CompValue, CompareOp, Filter, MAX_FILTER_DEPTH, MAX_FILTER_LEN, MAX_FILTER_TERMS};
use crate::error::ScimError;
use crate::path::AttrPath;

/// Parses a filter.
///
/// Errors are 400 `invalidFilter` whose detail names the position (a byte
/// offset) and what was wrong, or the limit that was hit. Operators,
/// `and`/`or`/`not` and the literals `true`/`false`/`null` match in any
/// case; `and` binds tighter than `or`; string literals are JSON strings.
/// A sub-attribute after a value filter (`emails[type eq "work"].value`) is
/// a PATCH path, not a filter, and is rejected here.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is {} bytes long; the limit is {MAX_FILTER_LEN}",
            input.len()
        )));
    }
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        joins: 0,
    };
    if parser.peek().tok == Tok::End {
        return Err(ScimError::invalid_filter("empty filter"));
    }
    let filter = parser.or_expr(0, false)?;
    match parser.peek() {
        Token { tok: Tok::End, .. } => Ok(filter),
        token => Err(token.unexpected("'and', 'or' or the end of the filter")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(&'a str),
    End,
}

#[derive(Debug, Clone, PartialEq)]
struct Token<'a> {
    tok: Tok<'a>,
    pos: usize,
}

impl Token<'_> {
    fn describe(&self) -> String {
        match &self.tok {
            Tok::LParen => "'('".to_owned(),
            Tok::RParen => "')'".to_owned(),
            Tok::LBracket => "'['".to_owned(),
            Tok::RBracket => "']'".to_owned(),
            Tok::Str(s) => format!("the string {}", serde_json::Value::from(s.as_str())),
            Tok::Word(w) => format!("'{w}'"),
            Tok::End => "the end of the filter".to_owned(),
        }
    }

    fn unexpected(&self, expected: &str) -> ScimError {
        error(self.pos, format!("expected {expected}, found {}", self.describe()))
    }
}

fn error(pos: usize, what: impl std::fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!("invalid filter at position {pos}: {what}"))
}

fn tokenize(input: &str) -> Result<Vec<Token<'_>>, ScimError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let single = match b {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = single {
            tokens.push(Token { tok, pos: i });
            i += 1;
        } else if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'"' {
            let end = string_end(bytes, i).ok_or_else(|| error(i, "unterminated string"))?;
            let literal = &input[i..=end];
            let value: String =
                serde_json::from_str(literal).map_err(|e| error(i, format!("invalid string literal: {e}")))?;
            tokens.push(Token {
                tok: Tok::Str(value),
                pos: i,
            });
            i = end + 1;
        } else {
            let start = i;
            while bytes
                .get(i)
                .is_some_and(|&c| !c.is_ascii_whitespace() && !b"()[]\"".contains(&c))
            {
                i += 1;
            }
            tokens.push(Token {
                tok: Tok::Word(&input[start..i]),
                pos: start,
            });
        }
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: input.len(),
    });
    Ok(tokens)
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
    /// The `and`s and `or`s read so far: one fewer than the terms.
    joins: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Token<'a> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Token<'a> {
        self.tokens
            .get(self.next + ahead)
            .or(self.tokens.last())
            .cloned()
            .unwrap_or(Token { tok: Tok::End, pos: 0 })
    }

    fn bump(&mut self) -> Token<'a> {
        let token = self.peek();
        if self.next < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn or_expr(&mut self, depth: usize, in_value_filter: bool) -> Result<Filter, ScimError> {
        let mut left = self.and_expr(depth, in_value_filter)?;
        while self.at_keyword("or") {
            self.join()?;
            let right = self.and_expr(depth, in_value_filter)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize, in_value_filter: bool) -> Result<Filter, ScimError> {
        let mut left = self.unary(depth, in_value_filter)?;
        while self.at_keyword("and") {
            self.join()?;
            let right = self.unary(depth, in_value_filter)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// Reads an `and` or `or`, counting the terms it joins.
    fn join(&mut self) -> Result<(), ScimError> {
        let token = self.bump();
        self.joins += 1;
        if self.joins >= MAX_FILTER_TERMS {
            return Err(ScimError::too_many(format!(
                "filter joins more than {MAX_FILTER_TERMS} terms (at byte {})",
                token.pos
            )));
        }
        Ok(())
    }

    fn nested(&self, depth: usize, pos: usize) -> Result<usize, ScimError> {
        let depth = depth + 1;
        if depth > MAX_FILTER_DEPTH {
            return Err(error(
                pos,
                format!("filter nests deeper than the limit of {MAX_FILTER_DEPTH} levels"),
            ));
        }
        Ok(depth)
    }

    fn unary(&mut self, depth: usize, in_value_filter: bool) -> Result<Filter, ScimError> {
        let token = self.bump();
        match token.tok {
            Tok::LParen => {
                let inner_depth = self.nested(depth, token.pos)?;
                let inner = self.or_expr(inner_depth, in_value_filter)?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(inner)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") && self.peek().tok == Tok::LParen => {
                let open = self.bump();
                let inner_depth = self.nested(depth, open.pos)?;
                let inner = self.or_expr(inner_depth, in_value_filter)?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(Filter::Not(Box::new(inner)))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") && !self.followed_by_operator() => {
                Err(error(token.pos, "'not' must be followed by a parenthesised filter"))
            }
            Tok::Word(w) => self.attribute_expr(w, token.pos, depth, in_value_filter),
            _ => Err(token.unexpected("an attribute path, '(' or 'not'")),
        }
    }

    /// Whether the next word is an operator, which makes a preceding `not`
    /// an attribute called "not" rather than a negation.
    fn followed_by_operator(&self) -> bool {
        matches!(self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case("pr") || CompareOp::parse(w).is_some())
    }

    fn attribute_expr(
        &mut self,
        word: &str,
        pos: usize,
        depth: usize,
        in_value_filter: bool,
    ) -> Result<Filter, ScimError> {
        let path = AttrPath::parse(word).map_err(|_| error(pos, format!("'{word}' is not a valid attribute path")))?;
        let token = self.bump();
        match token.tok {
            Tok::LBracket => {
                if in_value_filter {
                    return Err(error(token.pos, "value filters cannot be nested"));
                }
                let inner_depth = self.nested(depth, token.pos)?;
                let inner = self.or_expr(inner_depth, true)?;
                self.expect(&Tok::RBracket, "']'")?;
                let filter = match self.peek() {
                    Token { tok: Tok::Word(w), pos } if w.starts_with('.') => {
                        self.bump();
                        Filter::And(Box::new(inner), Box::new(self.sub_attribute_expr(w, pos)?))
                    }
                    _ => inner,
                };
                Ok(Filter::ValuePath {
                    path,
                    filter: Box::new(filter),
                })
            }
            _ => self.comparison(path, word, token),
        }
    }

    /// `.sub op value` (or `.sub pr`) after `attr[filter]`: RFC 7644's
    /// filter grammar allows a sub-attribute after a value filter only in
    /// PATCH paths, but Microsoft Entra ID filters with
    /// `emails[type eq "work"].value eq "x@corp.example"` when a directory
    /// matches users on their work email. It means that one element
    /// matches both, so it is read as `emails[type eq "work" and value eq
    /// "x@corp.example"]`: the same AST, evaluated and translated to SQL as
    /// any value filter.
    fn sub_attribute_expr(&mut self, word: &str, pos: usize) -> Result<Filter, ScimError> {
        let name = &word[1..];
        let path = AttrPath::parse(name)
            .ok()
            .filter(|path| path.urn.is_none() && path.sub_attr.is_none())
            .ok_or_else(|| {
                error(
                    pos,
                    format!("'{word}' after a value filter must name one sub-attribute"),
                )
            })?;
        let token = self.bump();
        self.comparison(path, word, token)
    }

    /// `path pr` or `path op value`, `token` being the operator.
    fn comparison(&mut self, path: AttrPath, word: &str, token: Token<'a>) -> Result<Filter, ScimError> {
        match token.tok {
            Tok::Word(op) if op.eq_ignore_ascii_case("pr") => Ok(Filter::Present(path)),
            Tok::Word(op) => {
                let op = CompareOp::parse(op).ok_or_else(|| error(token.pos, format!("unknown operator '{op}'")))?;
                let value = self.comp_value()?;
                Ok(Filter::Compare { path, op, value })
            }
            _ => Err(token.unexpected(&format!("an operator or '[' after '{word}'"))),
        }
    }

    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        let token = self.bump();
        match token.tok {
            Tok::Str(s) => Ok(CompValue::Str(s)),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Ok(CompValue::Bool(true)),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Ok(CompValue::Bool(false)),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Ok(CompValue::Null),
            Tok::Word(w) => number(w).map(CompValue::Num).ok_or_else(|| {
                error(
                    token.pos,
                    format!("'{w}' is not a value (a quoted string, number, true, false or null)"),
                )
            }),
            _ => Err(token.unexpected("a value (a quoted string, number, true, false or null)")),
        }
    }

    fn expect(&mut self, tok: &Tok<'_>, what: &str) -> Result<(), ScimError> {
        let token = self.bump();
        if &token.tok == tok {
            Ok(())
        } else {
            Err(token.unexpected(what))
        }
    }
}

/// A JSON number literal. serde_json checks the grammar and keeps integers
/// exact; any other number is read with the standard library's correctly
/// rounded parser, because serde_json's default one can be an ulp off on
/// long literals, and then the filter would print (and be stored or pushed
/// to SQL as) a different number than the one parsed.
fn number(literal: &str) -> Option<Number> {
    let n = serde_json::from_str::<Number>(literal).ok()?;
    if n.is_f64() {
        literal.parse::<f64>().ok().and_then(Number::from_f64)
    } else {
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).expect(s)
    }

    fn cmp(p: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare {
            path: path(p),
            op,
            value,
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.to_owned())
    }

    fn err(input: &str) -> ScimError {
        let e = parse(input).expect_err(input);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidFilter)),
            "{input}: {e}"
        );
        e
    }

    #[test]
    fn okta_filter_on_username_parses() {
        assert_eq!(
            parse(r#"userName eq "dade.murphy@example.com""#),
            Ok(cmp("userName", CompareOp::Eq, s("dade.murphy@example.com")))
        );
    }

    #[test]
    fn okta_filter_on_username_is_case_insensitive_operator() {
        assert_eq!(parse(r#"userName Eq "x""#), parse(r#"userName eq "x""#));
        assert_eq!(
            parse(r#"USERNAME EQ "x""#).map(|f| f.to_string()),
            Ok(r#"USERNAME eq "x""#.to_owned())
        );
    }

    #[test]
    fn entra_filter_on_external_id_parses() {
        assert_eq!(
            parse(r#"externalId eq "7c3f3a2e-0f6e-4c3b-9b1f-2b1d3c4e5f60""#),
            Ok(cmp(
                "externalId",
                CompareOp::Eq,
                s("7c3f3a2e-0f6e-4c3b-9b1f-2b1d3c4e5f60")
            ))
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse("a pr or b pr AND c pr").expect("filter");
        let expected = Filter::Or(
            Box::new(Filter::Present(path("a"))),
            Box::new(Filter::And(
                Box::new(Filter::Present(path("b"))),
                Box::new(Filter::Present(path("c"))),
            )),
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn parentheses_override_precedence() {
        let f = parse("(a pr or b pr) and c pr").expect("filter");
        let expected = Filter::And(
            Box::new(Filter::Or(
                Box::new(Filter::Present(path("a"))),
                Box::new(Filter::Present(path("b"))),
            )),
            Box::new(Filter::Present(path("c"))),
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn chains_associate_to_the_left() {
        let f = parse("a pr and b pr and c pr").expect("filter");
        let ab = Filter::And(
            Box::new(Filter::Present(path("a"))),
            Box::new(Filter::Present(path("b"))),
        );
        assert_eq!(f, Filter::And(Box::new(ab), Box::new(Filter::Present(path("c")))));
    }

    #[test]
    fn rfc_example_with_not_parses() {
        let f = parse(r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#)
            .expect("filter");
        let Filter::And(_, right) = f else {
            panic!("expected and")
        };
        assert!(matches!(*right, Filter::Not(_)));
        assert!(parse(r#"NOT(title pr)"#).is_ok());
    }

    #[test]
    fn value_path_with_logical_expression_parses() {
        let f = parse(r#"emails[type eq "work" and value co "@example.com"]"#).expect("filter");
        let expected = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(Filter::And(
                Box::new(cmp("type", CompareOp::Eq, s("work"))),
                Box::new(cmp("value", CompareOp::Co, s("@example.com"))),
            )),
        };
        assert_eq!(f, expected);
    }

    #[test]
    fn value_path_may_be_combined_with_other_expressions() {
        let f = parse(
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]"#,
        );
        assert!(matches!(f, Ok(Filter::Or(..))));
    }

    #[test]
    fn entra_sub_attribute_after_a_value_filter_means_the_same_element() {
        let expected = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(Filter::And(
                Box::new(cmp("type", CompareOp::Eq, s("work"))),
                Box::new(cmp("value", CompareOp::Eq, s("x@corp.example"))),
            )),
        };
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "x@corp.example""#),
            Ok(expected.clone())
        );
        assert_eq!(
            parse(r#"emails[type eq "work" and value eq "x@corp.example"]"#),
            Ok(expected)
        );
        let present = parse(r#"emails[type eq "work"].value pr and userName pr"#).expect("valid");
        assert!(matches!(present, Filter::And(..)), "{present:?}");
        let grouped = parse(r#"emails[type eq "work" or type eq "home"].value Eq "x""#).expect("valid");
        assert_eq!(
            grouped.to_string(),
            r#"emails[(type eq "work" or type eq "home") and value eq "x"]"#
        );
        for bad in [
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work"].value.x eq "y""#,
            r#"emails[type eq "work"]. eq "y""#,
            r#"emails[type eq "work"].urn:a:b:value eq "y""#,
        ] {
            err(bad);
        }
    }

    #[test]
    fn nested_value_filters_are_rejected() {
        err(r#"emails[type[value eq "x"]]"#);
    }

    #[test]
    fn urn_qualified_paths_parse() {
        let f = parse(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#)
            .expect("filter");
        let Filter::Compare { path, .. } = f else {
            panic!("compare")
        };
        assert_eq!(
            path.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (path.attr.as_str(), path.sub_attr.as_deref()),
            ("manager", Some("value"))
        );
    }

    #[test]
    fn literals_and_numbers_parse() {
        assert_eq!(
            parse("active eq TRUE"),
            Ok(cmp("active", CompareOp::Eq, CompValue::Bool(true)))
        );
        assert_eq!(
            parse("active eq false"),
            Ok(cmp("active", CompareOp::Eq, CompValue::Bool(false)))
        );
        assert_eq!(parse("title eq null"), Ok(cmp("title", CompareOp::Eq, CompValue::Null)));
        assert_eq!(parse("n gt 42"), Ok(cmp("n", CompareOp::Gt, CompValue::Num(42.into()))));
        let f = parse("n le -1.5e3");
        assert_eq!(
            f,
            Ok(cmp(
                "n",
                CompareOp::Le,
                CompValue::Num(Number::from_f64(-1500.0).expect("finite"))
            ))
        );
    }

    #[test]
    fn long_number_literals_are_read_exactly_and_print_back_the_same() {
        // Found by the filter_parse fuzz target: serde_json's default float
        // parser read this one ulp off, so its printed form parsed to another
        // number.
        let f = parse("x eq 66666666666666666666666666666666660666666666666661").expect("filter");
        assert_eq!(
            f,
            cmp(
                "x",
                CompareOp::Eq,
                CompValue::Num(Number::from_f64(6.666666666666666e49).expect("finite"))
            )
        );
        assert_eq!(parse(&f.to_string()), Ok(f));
        assert!(err("x eq 1e400").detail.contains("'1e400' is not a value"));
    }

    #[test]
    fn string_values_take_json_escapes() {
        assert_eq!(
            parse(r#"displayName eq "Ren\u00e9e \"R\" \\ O'Hara""#),
            Ok(cmp("displayName", CompareOp::Eq, s("Renée \"R\" \\ O'Hara")))
        );
        assert_eq!(
            parse(r#"displayName eq "a]b)c""#),
            Ok(cmp("displayName", CompareOp::Eq, s("a]b)c")))
        );
    }

    #[test]
    fn every_operator_parses() {
        for op in ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
            let f = parse(&format!("title {op} \"x\"")).expect(op);
            assert!(matches!(f, Filter::Compare { op: o, .. } if o.as_str() == op));
        }
    }

    #[test]
    fn errors_say_where_and_what() {
        assert!(err("").detail.contains("empty"));
        assert!(err("   ").detail.contains("empty"));
        let e = err(r#"userName eq"#);
        assert!(
            e.detail.contains("position 11") && e.detail.contains("end of the filter"),
            "{}",
            e.detail
        );
        let e = err(r#"userName xx "a""#);
        assert!(
            e.detail.contains("unknown operator 'xx'") && e.detail.contains("position 9"),
            "{}",
            e.detail
        );
        let e = err(r#"userName eq "a"#);
        assert!(e.detail.contains("unterminated string"), "{}", e.detail);
        let e = err(r#"userName eq bjensen"#);
        assert!(e.detail.contains("'bjensen' is not a value"), "{}", e.detail);
        let e = err(r#"(userName pr"#);
        assert!(e.detail.contains("expected ')'"), "{}", e.detail);
        let e = err(r#"userName pr)"#);
        assert!(e.detail.contains("found ')'"), "{}", e.detail);
        let e = err(r#"1abc pr"#);
        assert!(e.detail.contains("not a valid attribute path"), "{}", e.detail);
        err(r#"userName eq "\x""#);
        err(r#"emails[type eq "work""#);
        err("title pr and");
        err("not title pr");
        err("a pr b pr");
        err("userName eq \"a\" and or b pr");
        err("[]");
    }

    #[test]
    fn attribute_called_not_is_still_an_attribute() {
        assert_eq!(parse("not pr"), Ok(Filter::Present(path("not"))));
    }

    #[test]
    fn filter_depth_limit_is_reported() {
        let ok = format!("{}a pr{}", "(".repeat(MAX_FILTER_DEPTH), ")".repeat(MAX_FILTER_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}a pr{}",
            "(".repeat(MAX_FILTER_DEPTH + 1),
            ")".repeat(MAX_FILTER_DEPTH + 1)
        );
        let e = err(&deep);
        assert!(e.detail.contains("limit of 32"), "{}", e.detail);
        let nots = format!("{}a pr{}", "not (".repeat(40), ")".repeat(40));
        assert!(err(&nots).detail.contains("limit of 32"));
    }

    #[test]
    fn filter_length_limit_is_reported() {
        let long = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN));
        let e = err(&long);
        assert!(e.detail.contains("limit is 4096"), "{}", e.detail);
    }

    #[test]
    fn a_chain_of_more_terms_than_the_limit_is_too_many() {
        let terms = |n: usize| {
            (0..n)
                .map(|i| format!("id eq \"{i}\""))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        assert!(parse(&terms(MAX_FILTER_TERMS)).is_ok());
        let e = parse(&terms(MAX_FILTER_TERMS + 1)).expect_err("one term too many");
        assert_eq!(e.scim_type, Some(crate::error::ScimType::TooMany));
        assert!(e.detail.contains("more than 100 terms"), "{}", e.detail);
        let mixed = format!("{} and ({})", terms(60), terms(60));
        assert_eq!(
            parse(&mixed).expect_err("and counts too").scim_type,
            Some(crate::error::ScimType::TooMany)
        );
    }

    #[test]
    fn deeply_nested_input_fails_fast_without_overflowing_the_stack() {
        let hostile = "(".repeat(MAX_FILTER_LEN);
        err(&hostile);
        let hostile = "not (".repeat(MAX_FILTER_LEN / 5);
        err(&hostile);
    }
}
