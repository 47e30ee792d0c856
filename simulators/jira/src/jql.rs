//! The part of JQL infra-tickets uses: clauses joined by `AND`, and `ORDER BY`.
//!
//! Supported: `project`, `labels`, `status`, `statusCategory`, `resolution`, `issuetype`,
//! `component`, `key`/`issuekey`, `summary` (`~`), `duedate`, `created`, `updated`,
//! `resolutiondate`, `cf[NNNNN]`/`customfield_NNNNN`; operators `=`, `!=`, `<`, `<=`, `>`, `>=`,
//! `~`, `in`, `not in`, `is EMPTY`, `is not EMPTY`; values quoted or bare, dates
//! `YYYY-MM-DD`, relative `-15m`, `-2h`, `-7d`, `now()`. Anything else is refused with JIRA's
//! kind of message, never silently ignored.

use chrono::{DateTime, Duration, NaiveDate, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: String,
    pub op: Op,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub clauses: Vec<Clause>,
    pub order_by: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("Error in the JQL Query: the quoted string is not terminated.".into());
                }
                i += 1;
                tokens.push(Token::Quoted(value));
            }
            '=' | '!' | '<' | '>' | '~' => {
                let mut op = c.to_string();
                if i + 1 < chars.len() && chars[i + 1] == '=' {
                    op.push('=');
                    i += 1;
                }
                i += 1;
                tokens.push(Token::Op(op));
            }
            _ => {
                let mut word = String::new();
                while i < chars.len() && !" \t\n\r(),=!<>~\"'".contains(chars[i]) {
                    word.push(chars[i]);
                    i += 1;
                }
                // `now()` and friends: keep the parentheses with the word.
                if i + 1 < chars.len() && chars[i] == '(' && chars[i + 1] == ')' {
                    word.push_str("()");
                    i += 2;
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

const FIELDS: [&str; 15] = [
    "project",
    "labels",
    "status",
    "statuscategory",
    "resolution",
    "issuetype",
    "component",
    "key",
    "issuekey",
    "summary",
    "duedate",
    "due",
    "created",
    "updated",
    "resolutiondate",
];

/// Canonical field name, or `None` when not supported.
fn field_name(word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    if FIELDS.contains(&lower.as_str()) {
        return Some(match lower.as_str() {
            "issuekey" => "key".into(),
            "due" => "duedate".into(),
            "statuscategory" => "statusCategory".into(),
            other => other.into(),
        });
    }
    if let Some(number) = lower.strip_prefix("cf[").and_then(|s| s.strip_suffix(']')) {
        return Some(format!("customfield_{number}"));
    }
    if lower.starts_with("customfield_") {
        return Some(lower);
    }
    None
}

pub fn parse(text: &str) -> Result<Query, String> {
    let tokens = tokenize(text)?;
    let mut query = Query { clauses: Vec::new(), order_by: Vec::new() };
    let mut i = 0;
    let word_is = |t: Option<&Token>, w: &str| matches!(t, Some(Token::Word(x)) if x.eq_ignore_ascii_case(w));
    while i < tokens.len() {
        if word_is(tokens.get(i), "order") {
            if !word_is(tokens.get(i + 1), "by") {
                return Err("Error in the JQL Query: expecting 'by' after 'order'.".into());
            }
            i += 2;
            loop {
                let Some(Token::Word(field)) = tokens.get(i) else {
                    return Err("Error in the JQL Query: expecting a field name after 'order by'.".into());
                };
                let name = field_name(field).ok_or_else(|| {
                    format!("Field '{field}' does not exist or you do not have permission to view it.")
                })?;
                i += 1;
                let mut ascending = true;
                if word_is(tokens.get(i), "asc") {
                    i += 1;
                } else if word_is(tokens.get(i), "desc") {
                    ascending = false;
                    i += 1;
                }
                query.order_by.push((name, ascending));
                if tokens.get(i) == Some(&Token::Comma) {
                    i += 1;
                    continue;
                }
                break;
            }
            if i < tokens.len() {
                return Err("Error in the JQL Query: unexpected text after the order by clause.".into());
            }
            break;
        }
        if !query.clauses.is_empty() {
            if word_is(tokens.get(i), "and") {
                i += 1;
            } else if word_is(tokens.get(i), "or") {
                return Err("Error in the JQL Query: OR is not supported by this simulator.".into());
            } else {
                return Err(format!(
                    "Error in the JQL Query: expecting 'AND' or 'ORDER BY' but got {:?}.",
                    tokens.get(i)
                ));
            }
        }
        let Some(Token::Word(field)) = tokens.get(i) else {
            return Err("Error in the JQL Query: expecting a field name.".into());
        };
        let field = field_name(field).ok_or_else(|| {
            format!("Field '{field}' does not exist or you do not have permission to view it.")
        })?;
        i += 1;
        let op = match tokens.get(i) {
            Some(Token::Op(op)) => {
                i += 1;
                match op.as_str() {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    "~" => Op::Contains,
                    other => return Err(format!("Error in the JQL Query: unknown operator '{other}'.")),
                }
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                i += 1;
                Op::In
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") && word_is(tokens.get(i + 1), "in") => {
                i += 2;
                Op::NotIn
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("is") => {
                i += 1;
                let negated = word_is(tokens.get(i), "not");
                if negated {
                    i += 1;
                }
                if !(word_is(tokens.get(i), "empty") || word_is(tokens.get(i), "null")) {
                    return Err("Error in the JQL Query: expecting EMPTY after IS.".into());
                }
                i += 1;
                query.clauses.push(Clause {
                    field,
                    op: if negated { Op::IsNotEmpty } else { Op::IsEmpty },
                    values: vec![],
                });
                continue;
            }
            other => return Err(format!("Error in the JQL Query: expecting an operator but got {other:?}.")),
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            if tokens.get(i) != Some(&Token::LParen) {
                return Err("Error in the JQL Query: expecting '(' after IN.".into());
            }
            i += 1;
            let mut values = Vec::new();
            loop {
                match tokens.get(i) {
                    Some(Token::Word(w)) => values.push(value_of(w)),
                    Some(Token::Quoted(q)) => values.push(Value::Text(q.clone())),
                    _ => return Err("Error in the JQL Query: expecting a value in the list.".into()),
                }
                i += 1;
                match tokens.get(i) {
                    Some(Token::Comma) => i += 1,
                    Some(Token::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err("Error in the JQL Query: expecting ',' or ')'.".into()),
                }
            }
            values
        } else {
            let value = match tokens.get(i) {
                Some(Token::Word(w)) => value_of(w),
                Some(Token::Quoted(q)) => Value::Text(q.clone()),
                _ => return Err("Error in the JQL Query: expecting a value.".into()),
            };
            i += 1;
            vec![value]
        };
        query.clauses.push(Clause { field, op, values });
    }
    if query.clauses.is_empty() {
        return Err(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
                .into(),
        );
    }
    Ok(query)
}

fn value_of(word: &str) -> Value {
    if word.eq_ignore_ascii_case("empty") || word.eq_ignore_ascii_case("null") {
        Value::Empty
    } else {
        Value::Text(word.to_owned())
    }
}

/// A date or time value of JQL as an instant: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `-15m`,
/// `-2h`, `-7d`, `3d`, `now()`.
pub fn instant(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if text.eq_ignore_ascii_case("now()") {
        return Some(now);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M") {
        return Some(time.and_utc());
    }
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let unit = rest.chars().last()?;
    let amount: i64 = rest[..rest.len() - 1].parse().ok()?;
    let delta = match unit {
        'm' => Duration::minutes(amount),
        'h' => Duration::hours(amount),
        'd' => Duration::days(amount),
        'w' => Duration::weeks(amount),
        _ => return None,
    };
    Some(now + delta * sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_writer_and_notifier_send() {
        let q = parse(r#"labels = "itk-abc" AND project in (PLAT, "PAY") ORDER BY created ASC"#).unwrap();
        assert_eq!(q.clauses.len(), 2);
        assert_eq!(q.order_by, vec![("created".into(), true)]);
        let q = parse("statusCategory != Done AND duedate is not EMPTY AND duedate <= 2026-12-31").unwrap();
        assert_eq!(q.clauses[1].op, Op::IsNotEmpty);
        let q = parse(r#"labels = infra-tickets AND created >= "-15m""#).unwrap();
        assert_eq!(q.clauses[1].op, Op::Ge);
    }

    #[test]
    fn refuses_unbounded_and_unknown() {
        assert!(parse("order by key desc").unwrap_err().contains("Unbounded"));
        assert!(parse("foo = 1").unwrap_err().contains("does not exist"));
        assert!(parse("labels = a OR labels = b").is_err());
    }

    #[test]
    fn relative_instants() {
        let now: DateTime<Utc> = "2026-11-27T09:00:00Z".parse().unwrap();
        assert_eq!(instant("-15m", now), Some(now - Duration::minutes(15)));
        assert_eq!(instant("2026-11-01", now).unwrap().date_naive().to_string(), "2026-11-01");
    }
}
