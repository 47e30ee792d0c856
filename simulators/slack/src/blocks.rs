//! Block Kit limit checks, as Slack applies them to `chat.postMessage` and incoming webhooks.
//!
//! Limits from the Block Kit reference (https://docs.slack.dev/reference/block-kit/blocks):
//! at most 50 blocks per message; a section's `text` up to 3000 characters and up to 10
//! `fields` of up to 2000; a header's plain text up to 150; `context` 1–10 elements; `actions`
//! 1–25 elements; a button's text up to 75, its `url` up to 3000, `value` up to 2000,
//! `action_id` up to 255; `block_id` up to 255 and unique in the message.
//!
//! Errors read as Slack words them, with a JSON pointer:
//! `must be less than 151 characters [json-pointer:/blocks/0/text/text]`.

use serde_json::Value;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_SECTION_FIELDS: usize = 10;
pub const MAX_SECTION_FIELD_TEXT: usize = 2000;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_URL: usize = 3000;
pub const MAX_BLOCK_ID: usize = 255;
pub const MAX_MARKDOWN_BLOCK_TEXT: usize = 12_000;
/// Top-level `text` of a message.
pub const MAX_MESSAGE_TEXT: usize = 40_000;

/// Checks a message's `blocks`; returns every problem found.
pub fn validate(blocks: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let Some(list) = blocks.as_array() else {
        return Err(vec![at("must provide an array", "/blocks")]);
    };
    if list.len() > MAX_BLOCKS {
        errors.push(at(&format!("no more than {MAX_BLOCKS} items allowed"), "/blocks"));
    }
    let mut block_ids = std::collections::BTreeSet::new();
    for (index, block) in list.iter().enumerate() {
        let path = format!("/blocks/{index}");
        if let Some(id) = block.get("block_id") {
            match id.as_str() {
                Some(id) if chars(id) > MAX_BLOCK_ID => {
                    errors.push(too_long(MAX_BLOCK_ID, &format!("{path}/block_id")))
                }
                Some(id) if !block_ids.insert(id.to_owned()) => {
                    errors.push(at("duplicate block_id", &format!("{path}/block_id")))
                }
                Some(_) => {}
                None => errors.push(at("must be a string", &format!("{path}/block_id"))),
            }
        }
        check_block(block, &path, &mut errors);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn check_block(block: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(kind) = block.get("type").and_then(Value::as_str) else {
        errors.push(at("missing required field: type", path));
        return;
    };
    match kind {
        "section" => check_section(block, path, errors),
        "header" => match block.get("text") {
            Some(text) => check_text_object(text, &format!("{path}/text"), MAX_HEADER_TEXT, true, errors),
            None => errors.push(at("missing required field: text", path)),
        },
        "divider" => {}
        "context" => check_elements(block, path, MAX_CONTEXT_ELEMENTS, errors, check_context_element),
        "actions" => check_elements(block, path, MAX_ACTIONS_ELEMENTS, errors, check_interactive_element),
        "image" => {
            require_string(block, "image_url", path, MAX_URL, errors);
            require_string(block, "alt_text", path, 2000, errors);
        }
        "markdown" => require_string(block, "text", path, MAX_MARKDOWN_BLOCK_TEXT, errors),
        "rich_text" => {
            if !block.get("elements").is_some_and(Value::is_array) {
                errors.push(at("missing required field: elements", path));
            }
        }
        "input" | "file" | "video" => {}
        _ => errors.push(at("must be a valid enum value", &format!("{path}/type"))),
    }
}

fn check_section(block: &Value, path: &str, errors: &mut Vec<String>) {
    let text = block.get("text");
    let fields = block.get("fields");
    if text.is_none() && fields.is_none() {
        errors.push(at("must provide either text or fields", path));
    }
    if let Some(text) = text {
        check_text_object(text, &format!("{path}/text"), MAX_SECTION_TEXT, false, errors);
    }
    if let Some(fields) = fields {
        match fields.as_array() {
            Some(list) => {
                if list.len() > MAX_SECTION_FIELDS {
                    errors.push(at(
                        &format!("no more than {MAX_SECTION_FIELDS} items allowed"),
                        &format!("{path}/fields"),
                    ));
                }
                for (index, field) in list.iter().enumerate() {
                    let field_path = format!("{path}/fields/{index}");
                    check_text_object(field, &field_path, MAX_SECTION_FIELD_TEXT, false, errors);
                }
            }
            None => errors.push(at("must provide an array", &format!("{path}/fields"))),
        }
    }
    if let Some(accessory) = block.get("accessory") {
        check_interactive_element(accessory, &format!("{path}/accessory"), errors);
    }
}

fn check_elements(
    block: &Value,
    path: &str,
    max: usize,
    errors: &mut Vec<String>,
    check: fn(&Value, &str, &mut Vec<String>),
) {
    let elements_path = format!("{path}/elements");
    match block.get("elements").and_then(Value::as_array) {
        None => errors.push(at("missing required field: elements", path)),
        Some(list) if list.is_empty() => errors.push(at("must provide at least 1 item", &elements_path)),
        Some(list) => {
            if list.len() > max {
                errors.push(at(&format!("no more than {max} items allowed"), &elements_path));
            }
            for (index, element) in list.iter().enumerate() {
                check(element, &format!("{elements_path}/{index}"), errors);
            }
        }
    }
}

fn check_context_element(element: &Value, path: &str, errors: &mut Vec<String>) {
    match element.get("type").and_then(Value::as_str) {
        Some("image") => {
            require_string(element, "image_url", path, MAX_URL, errors);
            require_string(element, "alt_text", path, 2000, errors);
        }
        Some("plain_text" | "mrkdwn") => check_text_object(element, path, MAX_SECTION_TEXT, false, errors),
        Some(_) => errors.push(at("must be a valid enum value", &format!("{path}/type"))),
        None => errors.push(at("missing required field: type", path)),
    }
}

fn check_interactive_element(element: &Value, path: &str, errors: &mut Vec<String>) {
    match element.get("type").and_then(Value::as_str) {
        Some("button") => {
            match element.get("text") {
                Some(text) => check_text_object(text, &format!("{path}/text"), MAX_BUTTON_TEXT, true, errors),
                None => errors.push(at("missing required field: text", path)),
            }
            optional_string(element, "url", path, MAX_URL, errors);
            optional_string(element, "value", path, 2000, errors);
            optional_string(element, "action_id", path, 255, errors);
            if let Some(style) = element.get("style")
                && !matches!(style.as_str(), Some("primary" | "danger"))
            {
                errors.push(at("must be a valid enum value", &format!("{path}/style")));
            }
        }
        Some("image") => {
            require_string(element, "image_url", path, MAX_URL, errors);
            require_string(element, "alt_text", path, 2000, errors);
        }
        Some(
            "overflow"
            | "datepicker"
            | "timepicker"
            | "datetimepicker"
            | "checkboxes"
            | "radio_buttons"
            | "static_select"
            | "external_select"
            | "users_select"
            | "conversations_select"
            | "channels_select"
            | "multi_static_select"
            | "workflow_button",
        ) => optional_string(element, "action_id", path, 255, errors),
        Some(_) => errors.push(at("must be a valid enum value", &format!("{path}/type"))),
        None => errors.push(at("missing required field: type", path)),
    }
}

/// A composition text object: `{"type": "plain_text" | "mrkdwn", "text": …}`.
fn check_text_object(object: &Value, path: &str, max: usize, plain_only: bool, errors: &mut Vec<String>) {
    let kind = object.get("type").and_then(Value::as_str);
    match kind {
        Some("plain_text") => {}
        Some("mrkdwn") if !plain_only => {}
        Some(_) => errors.push(at("must be a valid enum value", &format!("{path}/type"))),
        None => errors.push(at("missing required field: type", path)),
    }
    match object.get("text").and_then(Value::as_str) {
        None => errors.push(at("missing required field: text", path)),
        Some("") => errors.push(at("must be more than 0 characters", &format!("{path}/text"))),
        Some(text) if chars(text) > max => errors.push(too_long(max, &format!("{path}/text"))),
        Some(_) => {}
    }
    if kind == Some("mrkdwn") && object.get("emoji").is_some() {
        errors.push(at("emoji is only allowed in plain_text", &format!("{path}/emoji")));
    }
}

fn require_string(object: &Value, field: &str, path: &str, max: usize, errors: &mut Vec<String>) {
    if object.get(field).is_none() {
        errors.push(at(&format!("missing required field: {field}"), path));
    } else {
        optional_string(object, field, path, max, errors);
    }
}

fn optional_string(object: &Value, field: &str, path: &str, max: usize, errors: &mut Vec<String>) {
    let Some(value) = object.get(field) else { return };
    let field_path = format!("{path}/{field}");
    match value.as_str() {
        Some(text) if chars(text) > max => errors.push(too_long(max, &field_path)),
        Some(_) => {}
        None => errors.push(at("must be a string", &field_path)),
    }
}

/// Slack counts characters, not bytes.
fn chars(text: &str) -> usize {
    text.chars().count()
}

fn too_long(max: usize, path: &str) -> String {
    at(&format!("must be less than {} characters", max + 1), path)
}

fn at(message: &str, pointer: &str) -> String {
    format!("{message} [json-pointer:{pointer}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(text: &str) -> Value {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    }

    #[test]
    fn accepts_a_typical_notification() {
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": "Due in 5 days"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<https://x/browse/PLAT-1|PLAT-1> retire"},
             "fields": [{"type": "mrkdwn", "text": "*Team*\nfleet"}]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://x"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "infra-tickets"}]},
            {"type": "divider"}
        ]);
        assert_eq!(validate(&blocks), Ok(()));
    }

    #[test]
    fn refuses_each_limit_with_a_pointer() {
        let too_many: Vec<Value> = (0..51).map(|_| json!({"type": "divider"})).collect();
        let errors = validate(&Value::Array(too_many)).unwrap_err();
        assert_eq!(errors, vec!["no more than 50 items allowed [json-pointer:/blocks]"]);

        let errors = validate(&json!([section(&"x".repeat(3001))])).unwrap_err();
        assert_eq!(errors, vec!["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]);
        assert_eq!(validate(&json!([section(&"é".repeat(3000))])), Ok(()));

        let header = json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]);
        assert_eq!(
            validate(&header).unwrap_err(),
            vec!["must be less than 151 characters [json-pointer:/blocks/0/text/text]"]
        );
        let mrkdwn_header = json!([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]);
        assert!(validate(&mrkdwn_header).unwrap_err()[0].contains("/blocks/0/text/type"));

        let fields: Vec<Value> =
            (0..11).map(|i| json!({"type": "mrkdwn", "text": format!("f{i}")})).collect();
        let errors = validate(&json!([{"type": "section", "fields": fields}])).unwrap_err();
        assert!(errors[0].contains("no more than 10 items allowed"), "{errors:?}");

        let button = json!([{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "b".repeat(76)}}]}]);
        assert!(validate(&button).unwrap_err()[0].contains("/blocks/0/elements/0/text/text"));

        let context: Vec<Value> = (0..11).map(|_| json!({"type": "mrkdwn", "text": "c"})).collect();
        assert!(validate(&json!([{"type": "context", "elements": context}])).is_err());

        assert!(validate(&json!([{"type": "nonsense"}])).unwrap_err()[0].contains("valid enum"));
        assert!(validate(&json!({"type": "divider"})).unwrap_err()[0].contains("must provide an array"));
        let duplicate = json!([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}]);
        assert!(validate(&duplicate).unwrap_err()[0].contains("duplicate block_id"));
    }
}
