//! The deadline of a notice whose date is only in its text.
//!
//! Notices mention several dates: the act-by date, later consequences ("Starting October 1,
//! 2025, you will no longer be able to …") and history ("This follows Node.js 18 End-Of-Life
//! (EOL) reached on April 30, 2025"). Each date is scored by the words around it: history is
//! discarded, deadline phrases rank first, consequences last; the earliest of the best wins.

use chrono::NaiveDate;

use crate::dates::{FoundDate, When, find_dates};

/// The deadline found in a text, and the sentence it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDeadline {
    pub when: When,
    pub sentence: String,
}

/// Words before a date that make it history, not a deadline.
const HISTORY: &[&str] = &[
    "reached",
    "upstream",
    "since",
    "released",
    "announced",
    "published",
    "originally",
    "previously",
    "last updated",
    "was scheduled",
    "were scheduled",
    "follows",
    "following",
    "sent on",
    "notified",
    "community",
    "end-of-life (eol)",
];

/// Words before a date that make it the act-by date.
const DEADLINE: &[&str] = &[
    "ending support",
    "end support",
    "end of support",
    "end-of-support",
    "end of standard support",
    "deprecat",
    "stop your instance",
    "will be stopped",
    "will stop",
    "retire",
    "scheduled for",
    "scheduled to",
    "no later than",
    "on or before",
    "on or after",
    "before",
    "by ",
    "until",
    "deadline",
    "must",
    "required",
    "automatically",
    "auto-",
    "upgrade",
    "update",
    "apply",
    "applied",
    "patch",
    "reboot",
    "restart",
    "maintenance",
    "will begin",
    "will take place",
    "will occur",
    "will be performed",
    "migrat",
    "expire",
    "take action",
];

/// Words in a sentence that opens with its date that make the date a later consequence.
const CONSEQUENCE: &[&str] = &["no longer", "will not be able", "won't be able", "unable", "cannot", "can't"];

const HISTORY_SCORE: i32 = 0;
const CONSEQUENCE_SCORE: i32 = 1;
const NEUTRAL_SCORE: i32 = 2;
const DEADLINE_SCORE: i32 = 3;

/// The deadline in `text`, ignoring dates before `not_before` (history the notice recounts).
pub fn deadline_from_text(text: &str, not_before: Option<NaiveDate>) -> Option<TextDeadline> {
    let mut best: Option<(i32, When, &str)> = None;
    for sentence in sentences(text) {
        let dates = find_dates(sentence);
        for (index, date) in dates.iter().enumerate() {
            if not_before.is_some_and(|floor| date.when.sort_key().date_naive() < floor) {
                continue;
            }
            let previous_end = if index == 0 { 0 } else { dates[index - 1].end };
            let score = score(sentence, previous_end, date, index == 0);
            if score == HISTORY_SCORE {
                continue;
            }
            let better = match &best {
                None => true,
                Some((best_score, best_when, _)) => {
                    score > *best_score
                        || (score == *best_score && date.when.sort_key() < best_when.sort_key())
                }
            };
            if better {
                best = Some((score, date.when, sentence));
            }
        }
    }
    best.map(|(_, when, sentence)| TextDeadline { when, sentence: tidy(sentence) })
}

fn score(sentence: &str, previous_end: usize, date: &FoundDate, first_in_sentence: bool) -> i32 {
    let before = sentence[previous_end..date.start].to_lowercase();
    let clause = before.rsplit([',', ';', ':', '(']).next().unwrap_or(&before);
    if HISTORY.iter().any(|phrase| clause.contains(phrase)) || before.contains("end-of-life (eol) reached") {
        return HISTORY_SCORE;
    }
    if DEADLINE.iter().any(|phrase| before.contains(phrase)) {
        return DEADLINE_SCORE;
    }
    let whole = sentence.to_lowercase();
    if first_in_sentence && CONSEQUENCE.iter().any(|phrase| whole.contains(phrase)) {
        return CONSEQUENCE_SCORE;
    }
    NEUTRAL_SCORE
}

/// Splits at line breaks and at `.`, `!` or `?` followed by white space and a capital letter, a
/// digit or a bracket, except after a month abbreviation (`Sept. 1`).
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let boundary = match c {
            '\n' | '\r' => Some(at),
            '.' | '!' | '?' => {
                let next = chars.get(i + 1).map(|&(_, n)| n);
                let after = chars[i + 1..].iter().map(|&(_, n)| n).find(|n| !n.is_whitespace());
                let followed_by_space = next.is_some_and(char::is_whitespace);
                let opens_sentence = after.is_none_or(|n| n.is_uppercase() || n.is_ascii_digit() || n == '[');
                (followed_by_space && opens_sentence && !after_abbreviation(&text[start..at]))
                    .then_some(at + c.len_utf8())
            }
            _ => None,
        };
        if let Some(end) = boundary {
            push_sentence(&mut out, &text[start..end]);
            start = end;
        }
    }
    push_sentence(&mut out, &text[start..]);
    out
}

fn push_sentence<'a>(out: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim();
    if !piece.is_empty() {
        out.push(piece);
    }
}

fn after_abbreviation(before: &str) -> bool {
    let word = before.rsplit(|c: char| !c.is_alphabetic()).next().unwrap_or("").to_ascii_lowercase();
    matches!(
        word.as_str(),
        "jan"
            | "feb"
            | "mar"
            | "apr"
            | "jun"
            | "jul"
            | "aug"
            | "sep"
            | "sept"
            | "oct"
            | "nov"
            | "dec"
            | "e.g"
            | "i.e"
            | "approx"
            | "no"
    )
}

/// The sentence as the ticket shows it: single spaces, at most 500 characters.
fn tidy(sentence: &str) -> String {
    let single: String = sentence.split_whitespace().collect::<Vec<_>>().join(" ");
    match single.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &single[..cut]),
        None => single,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> When {
        When::Day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    const NODE18: &str = "We are contacting you as we have identified that your AWS Account currently has one or \
        more AWS Lambda functions using the Node.js 18 runtime. We are ending support for Node.js 18 in Lambda on \
        September 1, 2025. This follows Node.js 18 End-Of-Life (EOL) reached on April 30, 2025. As described in the \
        Lambda runtime support policy [1], end of support for language runtimes in Lambda happens in several stages. \
        Starting on September 1, 2025, Lambda will no longer apply security patches and other updates to the \
        Node.js 18 runtime used by Lambda functions. Starting October 1, 2025, you will no longer be able to create \
        new Lambda functions using the Node.js 18 runtime. Starting November 1, 2025, you will no longer be able to \
        update existing functions using the Node.js 18 runtime.";

    #[test]
    fn lambda_runtime_deadline_beats_upstream_eol_and_later_stages() {
        let found = deadline_from_text(NODE18, None).unwrap();
        assert_eq!(found.when, day(2025, 9, 1));
        assert_eq!(found.sentence, "We are ending support for Node.js 18 in Lambda on September 1, 2025.");
    }

    #[test]
    fn upstream_eol_alone_is_history_not_a_deadline() {
        let text = "Python 3.8 reached its upstream end of life on October 14, 2024.";
        assert_eq!(deadline_from_text(text, None), None);
    }

    #[test]
    fn history_and_deadline_in_one_sentence() {
        let text = "Following our notice sent on March 1, 2025, we will end support on June 30, 2025.";
        assert_eq!(deadline_from_text(text, None).unwrap().when, day(2025, 6, 30));
    }

    #[test]
    fn retirement_text_with_utc_time() {
        let text = "EC2 has detected degradation of the underlying hardware hosting your instance \
            i-0a1b2c3d4e5f60718 in the eu-west-1 region. We will stop your instance after 2027-02-09 08:00 UTC.";
        let found = deadline_from_text(text, None).unwrap();
        assert_eq!(found.when, When::Instant("2027-02-09T08:00:00Z".parse().unwrap()));
        assert_eq!(found.sentence, "We will stop your instance after 2027-02-09 08:00 UTC.");
    }

    #[test]
    fn rfc1123_in_text_and_the_earliest_of_a_range() {
        let ecs = "Your tasks will be automatically updated beginning Wed, 16 Aug 2023 23:18:51 GMT.";
        assert_eq!(
            deadline_from_text(ecs, None).unwrap().when,
            When::Instant("2023-08-16T23:18:51Z".parse().unwrap())
        );
        let dx = "Reminder: maintenance from Thu, 20 May 2021 08:00:00 GMT to Thu, 20 May 2021 14:00:00 GMT for 6 hours.";
        assert_eq!(
            deadline_from_text(dx, None).unwrap().when,
            When::Instant("2021-05-20T08:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn relative_and_absolute_dates_together() {
        let athena =
            "The engine auto-upgrade will begin in 60 days on March 9, 2023. Upgrade earlier if you like.";
        let found = deadline_from_text(athena, None).unwrap();
        assert_eq!(found.when, day(2023, 3, 9));
    }

    #[test]
    fn dates_before_the_notice_are_ignored() {
        let text = "On January 5, 2026 we notified you. Please act by 2026-04-01.";
        let floor = NaiveDate::from_ymd_opt(2026, 2, 1);
        assert_eq!(deadline_from_text(text, floor).unwrap().when, day(2026, 4, 1));
    }

    #[test]
    fn no_date_at_all() {
        let dx = "AWS will perform scheduled maintenance on your Direct Connect connection dxcon-ffabc123. \
            During this maintenance window, your connection will be unavailable.";
        assert_eq!(deadline_from_text(dx, None), None);
    }

    #[test]
    fn sentences_do_not_split_abbreviations_or_versions() {
        assert_eq!(
            sentences("Ends Sept. 1, 2025 for Node.js 18. Next one.\nLine two"),
            vec!["Ends Sept. 1, 2025 for Node.js 18.", "Next one.", "Line two"]
        );
    }

    proptest! {
        #[test]
        fn deadline_extraction_never_panics(text in "\\PC{0,300}") {
            let _ = deadline_from_text(&text, NaiveDate::from_ymd_opt(2025, 1, 1));
        }

        #[test]
        fn deadline_extraction_on_date_rich_text_never_panics(
            words in proptest::collection::vec("(by|on|since|Starting|reached|no longer|[0-9]{1,4}|September|Wed,|GMT|UTC|2026-03-08|[.,:;]|\\n|é|\u{1F600})", 0..60)
        ) {
            let text = words.join(" ");
            let _ = deadline_from_text(&text, None);
        }
    }
}
