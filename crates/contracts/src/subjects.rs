//! Subject names, in one place.
//!
//! | stream            | subjects      | keeps                        |
//! |-------------------|---------------|------------------------------|
//! | `RAW_EVENTS`      | `events.>`    | everything, for replay       |
//! | `DESIRED_TICKETS` | `desired.>`   | the latest per group key     |
//! | `TICKET_CHANGES`  | `tickets.>`   | every change                 |
//! | `DEAD_LETTERS`    | `dlq.>`       | every dead letter            |

use crate::{ChangeKind, GroupKey, PayloadKind, Source};

pub const RAW_EVENTS: &str = "events.>";
pub const DESIRED_TICKETS: &str = "desired.>";
pub const TICKET_CHANGES: &str = "tickets.>";
pub const DEAD_LETTERS: &str = "dlq.>";

/// `events.<source>.<kind>.<partition>`.
pub fn raw_event(source: Source, kind: PayloadKind, partition: &str) -> String {
    format!("events.{}.{}.{}", source.as_str(), kind.as_str(), token(partition))
}

/// `desired.<group token>`.
pub fn desired(key: &GroupKey) -> String {
    format!("desired.{}", key.token())
}

/// `tickets.<kind>.<group token>`.
pub fn ticket_change(kind: ChangeKind, key: &GroupKey) -> String {
    format!("tickets.{}.{}", kind.as_str(), key.token())
}

/// `dlq.<stage>`.
pub fn dead_letter(stage: &str) -> String {
    format!("dlq.{}", token(stage))
}

/// The longest subject token built from outside data, in bytes. A subject is part of the
/// protocol line a client sends, and nats-server closes the connection of a client whose line
/// is too long: a 6,000-character account id once dropped an intake's connection.
pub const MAX_TOKEN: usize = 64;

/// Makes any text one safe subject token: characters other than `[A-Za-z0-9_-]` become `_`, an
/// empty text becomes `_`, and the token is at most [`MAX_TOKEN`] bytes. A longer text keeps its
/// start (readable) and ends with `-` and a digest of the whole, so two long texts stay on
/// different subjects.
pub fn token(text: &str) -> String {
    use sha2::Digest;
    if text.is_empty() {
        return "_".into();
    }
    let mapped: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    if mapped.len() <= MAX_TOKEN {
        return mapped;
    }
    let digest = hex::encode(&sha2::Sha256::digest(text.as_bytes())[..12]);
    // ASCII only, so any byte index is a char boundary.
    let keep = MAX_TOKEN - digest.len() - 1;
    format!("{}-{digest}", &mapped[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tokens_never_break_a_subject(text in ".*") {
            let t = token(&text);
            prop_assert!(!t.is_empty());
            prop_assert!(!t.contains(['.', '*', '>', ' ', '\t', '\r', '\n']));
            prop_assert!(t.len() <= MAX_TOKEN);
        }
    }

    #[test]
    fn subject_tokens_are_bounded_safe_and_stay_distinct() {
        assert_eq!(token("123456789012"), "123456789012");
        assert_eq!(token("123456789012/us-east-1"), "123456789012_us-east-1");
        assert_eq!(token(""), "_");
        assert_eq!(token("a.b *>"), "a_b___");
        let long_a = "1".repeat(6_000);
        let long_b = format!("{}2", "1".repeat(5_999));
        let (a, b) = (token(&long_a), token(&long_b));
        assert_eq!(a.len(), MAX_TOKEN);
        assert!(a.starts_with("1111"), "{a}");
        assert_ne!(a, b, "a digest of the whole keeps long texts apart");
        assert!(token(&"ключ.".repeat(100)).is_ascii());
        for text in [long_a.as_str(), "x.y", "é", "\r\n"] {
            let token = token(text);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        }
    }

    #[test]
    fn raw_subject_has_four_tokens() {
        let s = raw_event(Source::AwsHealth, PayloadKind::AwsHealthEvent, "123456789012/us-east-1");
        assert_eq!(s, "events.aws-health.aws_health_event.123456789012_us-east-1");
    }
}
