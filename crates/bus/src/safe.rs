//! The one place that makes text safe for NATS headers and message ids.
//!
//! async-nats panics when a header value holds CR or LF (`HeaderValue::from`), and a panic on
//! the publish or dead-letter path would lose the message it was about. Error texts from vendors
//! (a JIRA 400 answered as a multi-line HTML page), subjects and ids built from outside data all
//! go through here before they reach a header: control characters become spaces, runs of
//! whitespace shrink to one, and the length is bounded. Message ids keep their uniqueness:
//! unsafe bytes are percent-escaped (injective), and an id too long is cut and suffixed with a
//! digest of the whole, so two different ids never become the same `Nats-Msg-Id`.

use async_nats::HeaderMap;
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
    fn a_header_map_is_rebuilt_safe() {
        let mut map = HeaderMap::new();
        map.insert("Itk-Note", "tab\there\u{0}");
        map.append("Itk-Note", "second");
        let safe = headers(&map);
        let values: Vec<&str> = safe.get_all("Itk-Note").map(|v| v.as_str()).collect();
        assert_eq!(values, ["tab here", "second"]);
    }
}
