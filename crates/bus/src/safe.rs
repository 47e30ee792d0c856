//! The one place that makes text safe for NATS headers and message ids.
//!
//! async-nats panics when a header value holds CR or LF (`HeaderValue::from`), and a panic on
//! the publish or dead-letter path would lose the message it was about. Error texts from vendors
//! (a JIRA 400 answered as a multi-line HTML page), subjects and ids built from outside data all
//! go through here before they reach a header: control characters become spaces, runs of
//! whitespace shrink to one, and the length is bounded. Message ids keep their uniqueness:
//! unsafe bytes are percent-escaped (injective), and an id too long is cut and suffixed with a
//! digest of the whole, so two different ids never become the same `Nats-Msg-Id`.
//!
//! The same goes for the other places outside text steers us: a key-value key built from an org
//! or project id ([`kv_key`]; subject tokens are bounded by [`contracts::subjects::token`]) and a
//! vendor's `Retry-After` ([`retry_after`]).

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

/// The longest header value sent, in bytes (an ellipsis marks a cut).
pub const MAX_HEADER_VALUE: usize = 2_048;
/// The longest `Nats-Msg-Id` sent, in bytes.
pub const MAX_MESSAGE_ID: usize = 200;

/// `text` as a header value: one line without control characters, at most
/// [`MAX_HEADER_VALUE`] bytes.
pub fn header_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_HEADER_VALUE));
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        if out.len() > MAX_HEADER_VALUE {
            break;
        }
    }
    cut(out, MAX_HEADER_VALUE)
}

/// `id` as a `Nats-Msg-Id`: printable ASCII without spaces or `%` (those are percent-escaped),
/// at most [`MAX_MESSAGE_ID`] bytes. Different ids stay different.
pub fn message_id(id: &str) -> String {
    let mut escaped = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    if escaped.len() <= MAX_MESSAGE_ID {
        return escaped;
    }
    let digest = hex::encode(&Sha256::digest(id.as_bytes())[..16]);
    // ASCII only, so any byte index is a char boundary.
    let keep = MAX_MESSAGE_ID - digest.len() - 1;
    format!("{}~{digest}", &escaped[..keep])
}

/// Inserts `value` made safe by [`header_value`]; replaces an earlier value of `name`.
pub fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    headers.insert(name, header_value(value).as_str());
}

/// Appends `value` made safe by [`header_value`].
pub fn append(headers: &mut HeaderMap, name: &str, value: &str) {
    headers.append(name, header_value(value).as_str());
}

/// A copy of `headers` with every value made safe (a map built elsewhere may hold other control
/// characters or values of any length).
pub fn headers(source: &HeaderMap) -> HeaderMap {
    let mut safe = HeaderMap::new();
    for (name, values) in source.iter() {
        for value in values {
            append(&mut safe, name.as_ref(), value.as_str());
        }
    }
    safe
}

/// The longest key-value key used, in bytes (a key is a subject's tail; see
/// [`contracts::subjects::token`]).
pub const MAX_KV_KEY: usize = 256;

/// `key` as a key-value key: unchanged when it is valid (`[-/_=.a-zA-Z0-9]`, no empty
/// `.`-token) and at most [`MAX_KV_KEY`] bytes; otherwise its start with every other
/// character (and `.`) made `_`, then `=` and a digest of the whole, so two keys stay apart.
pub fn kv_key(key: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | '=');
    let valid = !key.is_empty()
        && key.len() <= MAX_KV_KEY
        && key.split('.').all(|token| !token.is_empty() && token.chars().all(allowed));
    if valid {
        return key.to_owned();
    }
    let digest = hex::encode(&Sha256::digest(key.as_bytes())[..12]);
    let keep = MAX_KV_KEY - digest.len() - 1;
    let start: String = key.chars().map(|c| if allowed(c) { c } else { '_' }).take(keep).collect();
    format!("{start}={digest}")
}

/// The longest wait a vendor's `Retry-After` can impose on us. Past an hour the header is far
/// more likely wrong (a misconfigured proxy, `u64::MAX`) than meant, and a message held longer
/// than that is better retried by the consumer's own backoff and seen in the dashboards than
/// parked for years; it also keeps `Instant::now() + wait` far from overflowing.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// A `Retry-After` header value (RFC 9110 §10.2.3) as a wait from now, read with
/// [`retry_after_at`] at the current time.
pub fn retry_after(value: &str) -> Option<Duration> {
    retry_after_at(value, Utc::now())
}

/// A `Retry-After` value as a wait from `now`: delay-seconds (digits only; any count, however
/// large, is read without overflow) or an HTTP-date (IMF-fixdate, and the obsolete RFC 850 and
/// asctime forms), at most [`MAX_RETRY_AFTER`]; a date already past waits zero. `None` for
/// anything else (negative, fractional, empty, text): the caller uses its own backoff.
pub fn retry_after_at(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a valid, very long delay: the cap.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = http_date(value)?;
    let wait = date.signed_duration_since(now);
    // A negative span (a date in the past) is an error from `to_std`: no wait.
    Some(wait.to_std().unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// An HTTP-date in any of its three forms, in UTC.
fn http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    let obsolete = ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"];
    obsolete.iter().find_map(|format| NaiveDateTime::parse_from_str(value, format).ok()).map(|d| d.and_utc())
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let ellipsis = '…';
    let mut end = max - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push(ellipsis);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JIRA 400 as some sites answer it: an HTML error page from a proxy in front of JIRA.
    /// Written for this test after the shape of Atlassian proxy error pages reported in public
    /// issue threads (e.g. "JIRA REST API returns HTML instead of JSON", community.atlassian.com).
    const HTML_400: &str = "<!DOCTYPE html>\r\n<html lang=\"en\">\n<head>\n\t<title>400 Bad Request</title>\n</head>\n<body>\n<h1>Bad Request</h1>\n<p>Your browser sent a request\u{0} that this server could not understand.\u{7f}</p>\n</body>\n</html>\n";

    #[test]
    fn header_values_are_one_bounded_line_without_control_characters() {
        let cases: [(&str, &str); 5] = [
            ("plain", "plain"),
            ("a\r\nb", "a b"),
            ("  lead\tand trail \n", "lead and trail"),
            ("bell\u{7}\u{85}next", "bell next"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(header_value(input), expected, "{input:?}");
        }
        let page = header_value(HTML_400);
        assert!(!page.chars().any(char::is_control), "{page:?}");
        assert!(
            page.starts_with("<!DOCTYPE html> <html lang=\"en\"> <head> <title>400 Bad Request"),
            "{page}"
        );
        let long = header_value(&"é".repeat(10_000));
        assert!(long.len() <= MAX_HEADER_VALUE && long.ends_with('…'), "{}", long.len());
        // Accepted by async-nats without a panic.
        let mut map = HeaderMap::new();
        insert(&mut map, "Itk-Reason", HTML_400);
    }

    #[test]
    fn message_ids_are_safe_bounded_and_stay_distinct() {
        assert_eq!(message_id("snyk:org:p1:v1"), "snyk:org:p1:v1");
        assert_eq!(message_id("a b\nc%"), "a%20b%0Ac%25");
        assert_ne!(message_id("a\nb"), message_id("a b"));
        assert_ne!(message_id("a%0Ab"), message_id("a\nb"), "escaping is injective");
        let long_a = format!("{}a", "x".repeat(500));
        let long_b = format!("{}b", "x".repeat(500));
        assert_eq!(message_id(&long_a).len(), MAX_MESSAGE_ID);
        assert_ne!(message_id(&long_a), message_id(&long_b));
        assert!(message_id("ключ").is_ascii());
    }

    #[test]
    fn kv_keys_are_valid_bounded_and_stay_distinct() {
        for key in ["health-api.account", "snyk.project.org_1.p-2", "health.itk-abc234", "a/b=c"] {
            assert_eq!(kv_key(key), key, "a valid key is kept");
        }
        let long_a = format!("snyk.cursor.{}", "o".repeat(6_000));
        let long_b = format!("snyk.cursor.{}p", "o".repeat(5_999));
        for key in [long_a.as_str(), &long_b, "", ".", "a..b", "a b", "ключ", "x.*.>", ".lead", "trail."]
        {
            let safe = kv_key(key);
            assert!(safe.len() <= MAX_KV_KEY, "{key:?}");
            assert!(
                safe.split('.')
                    .all(|t| !t.is_empty()
                        && t.chars().all(|c| c.is_ascii_alphanumeric() || "-/_=".contains(c))),
                "{safe}"
            );
        }
        assert_ne!(kv_key(&long_a), kv_key(&long_b));
        assert_ne!(kv_key("a b"), kv_key("a_b"));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let now: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
        let secs = |s: u64| Some(Duration::from_secs(s));
        let cases: [(&str, Option<Duration>); 19] = [
            ("0", secs(0)),
            ("7", secs(7)),
            (" 120 ", secs(120)),
            ("3600", secs(3_600)),
            ("3601", Some(MAX_RETRY_AFTER)),
            ("18446744073709551615", Some(MAX_RETRY_AFTER)),
            ("99999999999999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("-1", None),
            ("-99999999999999999999", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
            ("1e9", None),
            ("Thu, 03 Dec 2026 10:00:30 GMT", secs(30)),
            ("Thu, 03 Dec 2026 09:00:00 GMT", secs(0)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_RETRY_AFTER)),
            ("Thursday, 03-Dec-26 10:01:00 GMT", secs(60)),
            ("Thu Dec  3 10:00:05 2026", secs(5)),
            ("Thu, 03 Dec 2026 10:00:30 +9999", None),
        ];
        for (value, expected) in cases {
            assert_eq!(retry_after_at(value, now), expected, "{value:?}");
        }
        // The cap keeps an Instant far from overflowing, whatever the header says.
        let wait = retry_after("18446744073709551615").unwrap();
        let _ = std::time::Instant::now() + wait;
    }

    #[test]
    fn a_header_map_is_rebuilt_safe() {
        let mut map = HeaderMap::new();
        map.insert("Itk-Note", "tab\there\u{0}");
        map.append("Itk-Note", "second");
        let safe = headers(&map);
        let values: Vec<&str> = safe.get_all("Itk-Note").map(|v| v.as_str()).collect();
        assert_eq!(values, ["tab here", "second"]);
    }
}
