//! SCIM filters (RFC 7644 §3.4.2.2), attribute paths, and PATCH paths
//! (RFC 7644 §3.5.2): parsing them and evaluating filters against resources.
//!
//! Invariants:
//! - Parsing is bounded: input of at most [`MAX_INPUT_LENGTH`] bytes, nesting
//!   (parentheses, `not`, value paths) of at most [`MAX_DEPTH`] levels and at
//!   most [`MAX_COMPARISONS`] comparisons. The parser recurses only when it
//!   enters a nesting level, so hostile input errors out instead of
//!   overflowing the stack, and every tree we build is small.
//! - Evaluation never fails: a comparison SCIM cannot make (an unknown
//!   attribute, `gt` on a boolean, `co` on a number) is simply false.
//! - Errors name what was expected and the byte position where it went wrong.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use super::schema::{get_ignoring_case, Attribute, ResourceType, Type};

/// Longest filter or path we parse, in bytes.
pub const MAX_INPUT_LENGTH: usize = 4096;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 16;
/// Most comparisons (including `pr`) in one filter.
pub const MAX_COMPARISONS: usize = 64;

/// Which grammar an error came from, so PATCH can answer `invalidFilter`
/// or `invalidPath` as RFC 7644 §3.12 asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterErrorKind {
    /// The filter (or the filter inside a path's brackets) is malformed.
    Filter,
    /// An attribute path is malformed.
    Path,
}

/// Why a filter or path could not be parsed; the message says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    pub kind: FilterErrorKind,
    pub message: String,
}

impl FilterError {
    fn filter(message: String) -> Self {
        Self {
            kind: FilterErrorKind::Filter,
            message,
        }
    }

    fn path(message: String) -> Self {
        Self {
            kind: FilterErrorKind::Path,
            message,
        }
    }
}

/// An attribute reference: `[urn:]attribute[.subAttribute]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributePath {
    pub urn: Option<String>,
    pub attribute: String,
    pub sub_attribute: Option<String>,
}

/// ALPHA *(nameChar), RFC 7643 §2.1; `$ref` is allowed where `allow_ref`.
fn is_attribute_name(name: &str, allow_ref: bool) -> bool {
    let mut characters = name.chars();
    let first_is_alpha = characters.next().is_some_and(|c| c.is_ascii_alphabetic());
    let valid =
        first_is_alpha && characters.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid || (allow_ref && name == "$ref")
}

impl AttributePath {
    /// Parses `attr`, `attr.sub`, `urn:…:attr` or `urn:…:attr.sub`; the URN is
    /// everything before the last `:`.
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        let invalid =
            |why: &str| FilterError::path(format!("invalid attribute path \"{input}\": {why}"));
        let (urn, rest) = match input.rsplit_once(':') {
            Some((urn, rest)) => {
                let starts_with_urn = urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
                if !starts_with_urn {
                    return Err(invalid(
                        "a schema prefix must be a URN starting with \"urn:\"",
                    ));
                }
                (Some(urn.to_string()), rest)
            }
            None => (None, input),
        };
        let (attribute, sub_attribute) = match rest.split_once('.') {
            Some((attribute, sub)) => (attribute, Some(sub)),
            None => (rest, None),
        };
        if !is_attribute_name(attribute, false) {
            return Err(invalid(&format!(
                "\"{attribute}\" is not an attribute name"
            )));
        }
        if let Some(sub) = sub_attribute.filter(|sub| !is_attribute_name(sub, true)) {
            return Err(invalid(&format!("\"{sub}\" is not a sub-attribute name")));
        }
        Ok(Self {
            urn,
            attribute: attribute.to_string(),
            sub_attribute: sub_attribute.map(str::to_string),
        })
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(formatter, "{urn}:")?;
        }
        write!(formatter, "{}", self.attribute)?;
        if let Some(sub) = &self.sub_attribute {
            write!(formatter, ".{sub}")?;
        }
        Ok(())
    }
}

/// Parses the comma-separated `attributes` / `excludedAttributes` query
/// parameter (RFC 7644 §3.4.2.5). Empty items are skipped.
pub fn parse_attribute_list(input: &str) -> Result<Vec<AttributePath>, FilterError> {
    if input.len() > MAX_INPUT_LENGTH {
        return Err(FilterError::path(format!(
            "attribute list is longer than {MAX_INPUT_LENGTH} bytes"
        )));
    }
    input
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(AttributePath::parse)
        .collect()
}

/// A comparison operator (RFC 7644 Table 3); case-insensitive in input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    fn parse(word: &str) -> Option<Self> {
        const OPERATORS: [(&str, CompareOp); 9] = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        OPERATORS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, op)| *op)
    }
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `path op value`; the value is a string, number, boolean or null.
    Compare {
        path: AttributePath,
        op: CompareOp,
        value: Value,
    },
    /// `path pr`.
    Present(AttributePath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `path[filter]`: some element of `path` matches `filter`, whose paths
    /// name sub-attributes of `path`.
    ValuePath {
        path: AttributePath,
        filter: Box<Filter>,
    },
}

/// A PATCH operation's target (RFC 7644 §3.5.2): `attribute[filter].sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchPath {
    /// The attribute, with its URN if given; never carries a sub-attribute.
    pub attribute: AttributePath,
    pub filter: Option<Filter>,
    pub sub_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// An attribute path, keyword, operator, number or literal.
    Word(String),
    /// A JSON string, already unescaped.
    Text(String),
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    start: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.kind {
            TokenKind::Word(word) => format!("\"{word}\""),
            TokenKind::Text(text) => Value::String(text.clone()).to_string(),
            TokenKind::OpenParen => "\"(\"".into(),
            TokenKind::CloseParen => "\")\"".into(),
            TokenKind::OpenBracket => "\"[\"".into(),
            TokenKind::CloseBracket => "\"]\"".into(),
            TokenKind::End => "the end of the input".into(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

fn is_word_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '$' | '+')
}

fn tokenize(input: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut characters = input.char_indices().peekable();
    while let Some((start, c)) = characters.next() {
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => TokenKind::OpenParen,
            ')' => TokenKind::CloseParen,
            '[' => TokenKind::OpenBracket,
            ']' => TokenKind::CloseBracket,
            '"' => {
                let mut end = None;
                while let Some((index, c)) = characters.next() {
                    match c {
                        '\\' => {
                            characters.next();
                        }
                        '"' => {
                            end = Some(index);
                            break;
                        }
                        _ => {}
                    }
                }
                let literal = end.and_then(|end| input.get(start..=end)).ok_or_else(|| {
                    FilterError::filter(format!("unterminated string starting at position {start}"))
                })?;
                // Values are JSON strings (RFC 7644 §3.4.2.2), so JSON unescapes them.
                let text = serde_json::from_str(literal).map_err(|_| {
                    FilterError::filter(format!(
                        "invalid string escape in {literal} at position {start}"
                    ))
                })?;
                TokenKind::Text(text)
            }
            c if is_word_character(c) => {
                let mut end = start + c.len_utf8();
                while let Some((index, c)) = characters.next_if(|(_, c)| is_word_character(*c)) {
                    end = index + c.len_utf8();
                }
                TokenKind::Word(input.get(start..end).unwrap_or_default().to_string())
            }
            other => {
                return Err(FilterError::filter(format!(
                    "unexpected character '{other}' at position {start}"
                )));
            }
        };
        tokens.push(Token { kind, start });
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
    end: Token,
    depth: usize,
    comparisons: usize,
    in_value_path: bool,
}

impl Parser {
    fn new(input: &str, what: &str, kind: FilterErrorKind) -> Result<Self, FilterError> {
        let error = |message: String| FilterError { kind, message };
        if input.len() > MAX_INPUT_LENGTH {
            return Err(error(format!(
                "{what} is longer than {MAX_INPUT_LENGTH} bytes"
            )));
        }
        let tokens = tokenize(input).map_err(|inner| error(inner.message))?;
        if tokens.is_empty() {
            return Err(error(format!("{what} is empty")));
        }
        Ok(Self {
            tokens,
            index: 0,
            end: Token {
                kind: TokenKind::End,
                start: input.len(),
            },
            depth: 0,
            comparisons: 0,
            in_value_path: false,
        })
    }

    fn peek(&self) -> &Token {
        self.tokens.get(self.index).unwrap_or(&self.end)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        self.index += 1;
        token
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        let token = self.peek();
        FilterError::filter(format!(
            "expected {expected} at position {}, found {}",
            token.start,
            token.describe()
        ))
    }

    /// Enters one nesting level; this bound is what keeps recursion shallow.
    fn enter(&mut self, start: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::filter(format!(
                "filter nests deeper than {MAX_DEPTH} levels at position {start}"
            )));
        }
        Ok(())
    }

    fn expect_closing(&mut self, closing: TokenKind, opener: &Token) -> Result<(), FilterError> {
        if self.peek().kind != closing {
            let what = if closing == TokenKind::CloseParen {
                "\")\""
            } else {
                "\"]\""
            };
            let message = format!(
                "{what} to close {} at position {}",
                opener.describe(),
                opener.start
            );
            return Err(self.unexpected(&message));
        }
        self.advance();
        self.depth -= 1;
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_and()?;
        while self.peek().is_keyword("or") {
            self.advance();
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary()?;
        while self.peek().is_keyword("and") {
            self.advance();
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::OpenParen => {
                self.enter(token.start)?;
                self.advance();
                let inner = self.parse_or()?;
                self.expect_closing(TokenKind::CloseParen, &token)?;
                Ok(inner)
            }
            TokenKind::Word(_) if token.is_keyword("not") => {
                self.enter(token.start)?;
                self.advance();
                let opener = self.peek().clone();
                if opener.kind != TokenKind::OpenParen {
                    return Err(self.unexpected("\"(\" after \"not\""));
                }
                self.advance();
                let inner = self.parse_or()?;
                self.expect_closing(TokenKind::CloseParen, &opener)?;
                Ok(Filter::Not(Box::new(inner)))
            }
            TokenKind::Word(word) => {
                self.advance();
                let path = AttributePath::parse(word).map_err(|error| {
                    FilterError::filter(format!("{} at position {}", error.message, token.start))
                })?;
                self.parse_after_path(path, &token)
            }
            _ => Err(self.unexpected("an attribute name, \"not\" or \"(\"")),
        }
    }

    fn count_comparison(&mut self, start: usize) -> Result<(), FilterError> {
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(FilterError::filter(format!(
                "filter has more than {MAX_COMPARISONS} comparisons (at position {start})"
            )));
        }
        Ok(())
    }

    fn parse_after_path(
        &mut self,
        path: AttributePath,
        path_token: &Token,
    ) -> Result<Filter, FilterError> {
        let token = self.peek().clone();
        if token.kind == TokenKind::OpenBracket {
            if self.in_value_path {
                return Err(self.unexpected("a comparison (value paths cannot nest)"));
            }
            if path.sub_attribute.is_some() {
                return Err(
                    self.unexpected(&format!("an operator after {}", path_token.describe()))
                );
            }
            let filter = self.parse_value_filter(&token)?;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        }
        if token.is_keyword("pr") {
            self.advance();
            self.count_comparison(token.start)?;
            return Ok(Filter::Present(path));
        }
        let op = match &token.kind {
            TokenKind::Word(word) => CompareOp::parse(word),
            _ => None,
        };
        let Some(op) = op else {
            return Err(self.unexpected(&format!("an operator after {}", path_token.describe())));
        };
        self.advance();
        let value_token = self.peek().clone();
        let value = match &value_token.kind {
            TokenKind::Text(text) => Some(Value::String(text.clone())),
            TokenKind::Word(word) => match word.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                "null" => Some(Value::Null),
                _ => serde_json::from_str::<serde_json::Number>(word)
                    .ok()
                    .map(Value::Number),
            },
            _ => None,
        };
        let Some(value) = value else {
            return Err(self.unexpected(&format!("a value after {}", token.describe())));
        };
        self.advance();
        self.count_comparison(token.start)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// Parses `[filter]` with the opening bracket as the current token.
    fn parse_value_filter(&mut self, opener: &Token) -> Result<Filter, FilterError> {
        self.enter(opener.start)?;
        self.advance();
        self.in_value_path = true;
        let filter = self.parse_or()?;
        self.in_value_path = false;
        self.expect_closing(TokenKind::CloseBracket, opener)?;
        Ok(filter)
    }

    fn expect_end(&self, what: &str) -> Result<(), FilterError> {
        if self.peek().kind == TokenKind::End {
            Ok(())
        } else {
            Err(self.unexpected(&format!("the end of the {what}")))
        }
    }
}

/// Parses a filter such as `emails[type eq "work"] and not (active eq false)`.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(input, "filter", FilterErrorKind::Filter)?;
    let filter = parser.parse_or()?;
    parser.expect_end("filter")?;
    Ok(filter)
}

/// Parses a PATCH path: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`,
/// each optionally URN-prefixed. Errors inside the brackets are
/// [`FilterErrorKind::Filter`]; everything else is [`FilterErrorKind::Path`].
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    let invalid =
        |message: String| FilterError::path(format!("invalid path \"{input}\": {message}"));
    let mut parser = Parser::new(input.trim(), "path", FilterErrorKind::Path)?;
    let head = parser.advance();
    let TokenKind::Word(word) = &head.kind else {
        return Err(invalid(format!(
            "expected an attribute name, found {}",
            head.describe()
        )));
    };
    let mut attribute = AttributePath::parse(word).map_err(|error| invalid(error.message))?;
    let mut sub_attribute = attribute.sub_attribute.take();
    let mut filter = None;
    let opener = parser.peek().clone();
    if opener.kind == TokenKind::OpenBracket {
        if sub_attribute.is_some() {
            return Err(invalid("a filter cannot follow a sub-attribute".into()));
        }
        filter = Some(parser.parse_value_filter(&opener)?);
        let after = parser.peek().clone();
        if let TokenKind::Word(word) = &after.kind {
            let name = word
                .strip_prefix('.')
                .filter(|name| is_attribute_name(name, true));
            let Some(name) = name else {
                return Err(invalid(format!(
                    "expected \".subAttribute\" at position {}",
                    after.start
                )));
            };
            sub_attribute = Some(name.to_string());
            parser.advance();
        }
    }
    parser
        .expect_end("path")
        .map_err(|error| invalid(error.message))?;
    Ok(PatchPath {
        attribute,
        filter,
        sub_attribute,
    })
}

/// Orders two scalars of the same JSON type; strings fold case unless
/// `case_exact`. `None` when SCIM defines no order (booleans, mixed types).
fn order(left: &Value, right: &Value, case_exact: bool) -> Option<Ordering> {
    match (left, right) {
        (Value::String(left), Value::String(right)) if case_exact => Some(left.cmp(right)),
        (Value::String(left), Value::String(right)) => {
            Some(left.to_lowercase().cmp(&right.to_lowercase()))
        }
        (Value::Number(left), Value::Number(right)) => left.as_f64()?.partial_cmp(&right.as_f64()?),
        _ => None,
    }
}

/// Compares one attribute value with a filter value.
fn compare(actual: &Value, op: CompareOp, expected: &Value, attribute: &Attribute) -> bool {
    let case_exact = attribute.case_exact;
    let strings = || match (actual, expected) {
        (Value::String(actual), Value::String(expected)) if case_exact => {
            Some((actual.clone(), expected.clone()))
        }
        (Value::String(actual), Value::String(expected)) => {
            Some((actual.to_lowercase(), expected.to_lowercase()))
        }
        _ => None,
    };
    let ordering = || {
        if attribute.kind == Type::Boolean {
            None
        } else {
            order(actual, expected, case_exact)
        }
    };
    match op {
        CompareOp::Eq | CompareOp::Ne => match (actual, expected) {
            (Value::Bool(actual), Value::Bool(expected)) => actual == expected,
            _ => order(actual, expected, case_exact) == Some(Ordering::Equal),
        },
        CompareOp::Co => strings().is_some_and(|(actual, expected)| actual.contains(&expected)),
        CompareOp::Sw => strings().is_some_and(|(actual, expected)| actual.starts_with(&expected)),
        CompareOp::Ew => strings().is_some_and(|(actual, expected)| actual.ends_with(&expected)),
        CompareOp::Gt => ordering() == Some(Ordering::Greater),
        CompareOp::Ge => matches!(ordering(), Some(Ordering::Greater | Ordering::Equal)),
        CompareOp::Lt => ordering() == Some(Ordering::Less),
        CompareOp::Le => matches!(ordering(), Some(Ordering::Less | Ordering::Equal)),
    }
}

/// True for a value that counts as assigned (RFC 7643 §2.5, RFC 7644 `pr`).
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => members.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// An attribute's value, flattened to the values a comparison looks at.
fn elements(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(value) => vec![value],
        None => Vec::new(),
    }
}

/// Evaluates `op` over the values found for a path: true when any matches.
/// A complex attribute compared without a sub-attribute compares its
/// `value` sub-attribute (RFC 7644 §3.4.2.2, e.g. `emails co "x"`).
/// `ne` is the negation of `eq`, so it also matches an absent attribute.
fn compare_values(
    values: Vec<&Value>,
    attribute: &Attribute,
    sub: Option<&Attribute>,
    op: CompareOp,
    expected: &Value,
) -> bool {
    let (values, described_by) = match sub {
        Some(sub) => {
            let found = values
                .into_iter()
                .filter_map(|value| get_ignoring_case(value, sub.name));
            (found.flat_map(|value| elements(Some(value))).collect(), sub)
        }
        None if attribute.kind == Type::Complex => match attribute.sub_attribute("value") {
            Some(value) => {
                let found = values
                    .into_iter()
                    .filter_map(|element| get_ignoring_case(element, "value"));
                (found.collect(), value)
            }
            None => (Vec::new(), attribute),
        },
        None => (values, attribute),
    };
    let test = if op == CompareOp::Ne {
        CompareOp::Eq
    } else {
        op
    };
    let any = values
        .iter()
        .any(|value| compare(value, test, expected, described_by));
    if op == CompareOp::Ne {
        !any
    } else {
        any
    }
}

fn present_values(values: Vec<&Value>, sub: Option<&Attribute>) -> bool {
    match sub {
        Some(sub) => values
            .into_iter()
            .filter_map(|value| get_ignoring_case(value, sub.name))
            .any(is_present),
        None => values.into_iter().any(is_present),
    }
}

impl Filter {
    /// Whether a resource (its full JSON representation) matches the filter.
    pub fn matches(&self, resource: &Value, resource_type: &ResourceType) -> bool {
        let lookup = |path: &AttributePath| {
            let (schema, attribute, sub) = resource_type.resolve(path)?;
            let container = if schema.id == resource_type.schema.id {
                Some(resource)
            } else {
                get_ignoring_case(resource, schema.id)
            };
            let value =
                container.and_then(|container| get_ignoring_case(container, attribute.name));
            Some((elements(value), attribute, sub))
        };
        match self {
            Filter::And(left, right) => {
                left.matches(resource, resource_type) && right.matches(resource, resource_type)
            }
            Filter::Or(left, right) => {
                left.matches(resource, resource_type) || right.matches(resource, resource_type)
            }
            Filter::Not(inner) => !inner.matches(resource, resource_type),
            Filter::Compare { path, op, value } => {
                lookup(path).is_some_and(|(values, attribute, sub)| {
                    compare_values(values, attribute, sub, *op, value)
                })
            }
            Filter::Present(path) => {
                lookup(path).is_some_and(|(values, _, sub)| present_values(values, sub))
            }
            Filter::ValuePath { path, filter } => {
                lookup(path).is_some_and(|(values, attribute, sub)| {
                    sub.is_none()
                        && values
                            .iter()
                            .any(|element| filter.matches_element(element, attribute))
                })
            }
        }
    }

    /// Whether one element of a multi-valued (or a complex) attribute matches;
    /// paths in the filter name sub-attributes of `attribute`.
    pub fn matches_element(&self, element: &Value, attribute: &Attribute) -> bool {
        let lookup = |path: &AttributePath| {
            if path.sub_attribute.is_some() {
                return None;
            }
            match attribute.sub_attribute(&path.attribute) {
                Some(sub) => Some((elements(get_ignoring_case(element, sub.name)), sub)),
                // A multi-valued simple attribute's elements are their own `value`.
                None if attribute.kind != Type::Complex
                    && path.attribute.eq_ignore_ascii_case("value") =>
                {
                    Some((vec![element], attribute))
                }
                None => None,
            }
        };
        match self {
            Filter::And(left, right) => {
                left.matches_element(element, attribute)
                    && right.matches_element(element, attribute)
            }
            Filter::Or(left, right) => {
                left.matches_element(element, attribute)
                    || right.matches_element(element, attribute)
            }
            Filter::Not(inner) => !inner.matches_element(element, attribute),
            Filter::Compare { path, op, value } => lookup(path)
                .is_some_and(|(values, sub)| compare_values(values, sub, None, *op, value)),
            Filter::Present(path) => {
                lookup(path).is_some_and(|(values, _)| present_values(values, None))
            }
            Filter::ValuePath { .. } => false,
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::super::schema::{USER, USER_TYPE};
    use super::*;
    use serde_json::json;

    fn barbara() -> Value {
        json!({
            "schemas": [USER.id],
            "id": "2819c223",
            "userName": "bjensen",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "title": "Tour Guide",
            "userType": "Employee",
            "emails": [
                {"value": "bjensen@example.com", "type": "work"},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"lastModified": "2011-05-13T04:42:35Z"}
        })
    }

    fn matches(filter: &str, resource: &Value) -> bool {
        parse(filter).unwrap().matches(resource, &USER_TYPE)
    }

    fn error(filter: &str) -> String {
        parse(filter).unwrap_err().message
    }

    #[test]
    fn attribute_paths_split_urn_attribute_and_sub_attribute() {
        let path =
            AttributePath::parse("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName")
                .unwrap();
        assert_eq!(
            path.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(
            (path.attribute.as_str(), path.sub_attribute.as_deref()),
            ("name", Some("givenName"))
        );
        assert_eq!(
            AttributePath::parse("members.$ref")
                .unwrap()
                .sub_attribute
                .as_deref(),
            Some("$ref")
        );
        assert!(AttributePath::parse("1name").is_err());
        assert!(AttributePath::parse("name.given.name").is_err());
        assert!(AttributePath::parse("foo:bar").is_err());
        assert_eq!(
            parse_attribute_list("userName, name.givenName,")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn rfc_examples_evaluate_as_documented() {
        let barbara = barbara();
        assert!(matches(r#"userName eq "bjensen""#, &barbara));
        assert!(matches(r#"name.familyName co "O'Malley""#, &barbara));
        assert!(!matches(r#"userName sw "J""#, &barbara));
        assert!(matches(r#"userName sw "B""#, &barbara));
        assert!(matches("title pr", &barbara));
        assert!(!matches("nickName pr", &barbara));
        assert!(matches(
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            &barbara
        ));
        assert!(matches(r#"title pr and userType eq "Employee""#, &barbara));
        assert!(matches(r#"title pr or userType eq "Intern""#, &barbara));
        assert!(matches(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            &barbara
        ));
        assert!(!matches(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            &barbara
        ));
    }

    #[test]
    fn value_paths_match_within_one_element() {
        let filter = r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#;
        let parsed = parse(filter).unwrap();
        assert!(matches!(parsed, Filter::Or(..)));
        assert!(parsed.matches(&barbara(), &USER_TYPE));
        // `ims` is not an attribute we serve, so that half is simply false.
        assert!(!matches(
            r#"ims[type eq "xmpp" and value co "@foo.com"]"#,
            &barbara()
        ));
        // Both conditions must hold for the same element, not across elements.
        assert!(!matches(
            r#"emails[type eq "home" and value co "@example.com"]"#,
            &barbara()
        ));
    }

    #[test]
    fn extension_attributes_are_found_under_their_urn() {
        let user = json!({
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Tours", "manager": {"value": "boss"}
            }
        });
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert!(matches(&format!(r#"{urn}:department eq "tours""#), &user));
        assert!(matches(&format!(r#"{urn}:manager.value eq "boss""#), &user));
        assert!(!matches(&format!(r#"{urn}:department eq "Sales""#), &user));
    }

    #[test]
    fn string_comparison_honours_case_exact() {
        let barbara = barbara();
        // userName is caseExact false: any case matches, and so does the operator.
        assert!(matches(r#"USERNAME EQ "BJensen""#, &barbara));
        // id is caseExact true.
        assert!(matches(r#"id eq "2819c223""#, &barbara));
        assert!(!matches(r#"id eq "2819C223""#, &barbara));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let parsed = parse(r#"title pr or userType eq "x" and not (id pr)"#).unwrap();
        let Filter::Or(_, right) = parsed else {
            panic!("or binds loosest")
        };
        assert!(matches!(*right, Filter::And(_, ref last) if matches!(**last, Filter::Not(_))));
    }

    #[test]
    fn values_are_json_literals() {
        let parsed = parse(r#"displayName eq "a\"b\u00e9""#).unwrap();
        assert!(matches!(parsed, Filter::Compare { ref value, .. } if value == "a\"bé"));
        assert!(matches!(
            parse("active eq TRUE").unwrap(),
            Filter::Compare {
                value: Value::Bool(true),
                ..
            }
        ));
        assert!(matches!(
            parse("x gt 1.5e3").unwrap(),
            Filter::Compare {
                value: Value::Number(_),
                ..
            }
        ));
        // Ordering a boolean is not defined, so it never matches.
        assert!(!matches("active gt false", &json!({"active": true})));
        // A known but absent attribute is "not equal" to anything.
        assert!(matches(r#"nickName ne "Babs""#, &barbara()));
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(
            error("userName eq"),
            "expected a value after \"eq\" at position 11, found the end of the input"
        );
        assert_eq!(
            error(r#"userName foo "x""#),
            r#"expected an operator after "userName" at position 9, found "foo""#
        );
        assert!(error(r#"(userName eq "x""#).contains("\")\" to close \"(\" at position 0"));
        assert!(error(r#"userName eq "x")"#).contains("the end of the filter at position 15"));
        assert_eq!(
            error(r#"userName eq "bjensen"#),
            "unterminated string starting at position 12"
        );
        assert!(error("").contains("empty"));
        assert!(error("not title pr").contains("\"(\" after \"not\""));
        assert!(error(r#"emails[value[type eq "x"]]"#).contains("cannot nest"));
    }

    #[test]
    fn hostile_input_is_rejected_without_overflowing() {
        let deep = format!("{}title pr{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(error(&deep).contains("longer than 4096"));
        let deep = format!("{}title pr{}", "(".repeat(2_000), ")".repeat(2_000));
        assert!(error(&deep).contains("nests deeper than 16"));
        let many = vec!["title pr"; 65].join(" or ");
        assert!(error(&many).contains("more than 64 comparisons"));
        assert!(parse(&vec!["title pr"; 64].join(" and ")).is_ok());
    }

    #[test]
    fn patch_paths_take_every_rfc_shape() {
        let path = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(path.attribute.attribute, "emails");
        assert!(path.filter.is_some());
        assert_eq!(path.sub_attribute.as_deref(), Some("value"));

        let path = parse_patch_path("name.givenName").unwrap();
        assert_eq!(
            (path.attribute.sub_attribute, path.sub_attribute.as_deref()),
            (None, Some("givenName"))
        );

        let path = parse_patch_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert!(path.filter.is_some() && path.sub_attribute.is_none());

        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let path = parse_patch_path(&format!("{urn}:manager.value")).unwrap();
        assert_eq!(path.attribute.urn.as_deref(), Some(urn));
        assert_eq!(path.sub_attribute.as_deref(), Some("value"));
        assert_eq!(
            parse_patch_path(&format!("{urn}:department"))
                .unwrap()
                .attribute
                .attribute,
            "department"
        );

        assert_eq!(
            parse_patch_path("emails[type eq]").unwrap_err().kind,
            FilterErrorKind::Filter
        );
        assert_eq!(
            parse_patch_path("emails..value").unwrap_err().kind,
            FilterErrorKind::Path
        );
        assert_eq!(
            parse_patch_path(r#"emails[type eq "x"]value"#)
                .unwrap_err()
                .kind,
            FilterErrorKind::Path
        );
    }
}
