//! The deadline of a notice whose date is only in its text.
//!
//! Notices mention several dates: the act-by date, later consequences ("Starting October 1,
//! 2025, you will no longer be able to …"), extended support and pricing, console or creation
//! cut-offs, and history ("This follows Node.js 18 End-Of-Life (EOL) reached on April 30,
//! 2025"). Each date is judged by the words of its own clause: the words before it back to the
//! last clause boundary, or, for a date that opens its clause ("After July 29, 2027, …",
//! "Starting Mon, 18 May 2026, …"), the clause it governs. History is discarded, deadline
//! phrases rank first, distractors last; the earliest of the best wins.

use chrono::NaiveDate;

use crate::dates::{FoundDate, When, find_dates_from};

/// The deadline found in a text, and the sentence it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDeadline {
    pub when: When,
    pub sentence: String,
    /// The text names only the month: `when` is its first day.
    pub approximate: bool,
    /// Why this date: the rule that ranked it.
    pub rule: &'static str,
}

/// Words that make a date history, not a deadline.
const HISTORY: &[&str] = &[
    "reached",
    "upstream",
    "since",
    "released",
    "announced",
    "announcement",
    "published",
    "originally",
    "previously",
    "last updated",
    "was scheduled",
    "were scheduled",
    "follows",
    "following our",
    "sent on",
    "notified",
    "we informed",
    "community",
    "end-of-life (eol)",
    "end of life (eol)",
];

/// Phrases that name the act-by date whatever else the clause says.
const STRONG_DEADLINE: &[&str] = &[
    "end of standard support",
    "end-of-standard-support",
    "standard support",
    "recommended apply by",
    "apply by",
    "auto-applied after",
    "auto-update after",
    "auto-upgrade",
    "take action",
    "no later than",
    "must",
    "deadline",
    "required",
    "weeks following",
    "days following",
    "hours following",
];

/// Dates of things that are not the team's deadline: extended support, prices, console and
/// creation cut-offs, and later stages that follow the deadline.
const DISTRACTOR: &[&str] = &[
    "extended support",
    "charg",
    "pricing",
    "price",
    "billed",
    "billing",
    "cost",
    " fee ",
    " fees",
    "newly created",
    "create new",
    "creating new",
    "creation of new",
    "new instances",
    "new clusters",
    "new functions",
    "new domains",
    "new databases",
    "launch new",
    "purchase",
    "console",
    "default",
    "no longer be able",
    "no longer be available",
    "will not be able",
    "won't be able",
    "unable",
    "cannot",
    "can't",
    "rollback",
    // Japanese: "作成できなく" (can no longer create), "新しい" (new), "料金" (charges),
    // "延長サポート" (extended support).
    "作成できなく",
    "新しい",
    "料金",
    "延長サポート",
];

/// Words that make a date the act-by date.
const DEADLINE: &[&str] = &[
    "ending support",
    "ends support",
    "end support",
    "end of support",
    "end-of-support",
    "support will end",
    "will end",
    "ends on",
    "end of life",
    "end-of-life",
    "deprecat",
    "no longer supported",
    "no longer be supported",
    "no longer apply",
    "no longer receive",
    "stop your instance",
    "will be stopped",
    "will be terminated",
    "will stop",
    "retire",
    "retirement",
    "scheduled for",
    "scheduled to",
    "on or before",
    "on or after",
    "before",
    "by ",
    "until",
    "expir",
    "automatically",
    "auto-",
    "upgrade",
    "update",
    "apply",
    "applied",
    "install",
    "patch",
    "reboot",
    "restart",
    "replace",
    "maintenance",
    "will begin",
    "will start",
    "will take place",
    "will occur",
    "will be performed",
    "migrat",
    "take action",
    // Japanese notices: "までに" (by), "以降" (after), "終了" (end), "適用" (apply), "開始" (start).
    "までに",
    "以降",
    "終了",
    "適用",
    "開始",
    "廃止",
    "メンテナンス",
    "予定",
];

/// Words that open a clause with its date: the clause they govern follows the date.
const OPENERS: &[&str] = &[
    "",
    "after",
    "starting",
    "starting on",
    "starting from",
    "beginning",
    "beginning on",
    "from",
    "on",
    "as of",
    "effective",
    "until",
    "by",
    "before",
    "on or after",
    "on or before",
    "however, starting",
];

const HISTORY_SCORE: i32 = 0;
const DISTRACTOR_SCORE: i32 = 1;
const NEUTRAL_SCORE: i32 = 2;
const DEADLINE_SCORE: i32 = 3;

/// The deadline in `text`. Dates before `not_before` (the message's own date, less a day of
/// slack for zones) are history unless their clause names a deadline: a restated deadline
/// stays the deadline once it has passed. Dates without a year are read on or after
/// `not_before`.
pub fn deadline_from_text(text: &str, not_before: Option<NaiveDate>) -> Option<TextDeadline> {
    let mut best: Option<(i32, FoundDate, &str, &'static str)> = None;
    for sentence in sentences(text) {
        let dates = find_dates_from(sentence, not_before);
        for (index, date) in dates.iter().enumerate() {
            let previous_end = if index == 0 { 0 } else { dates[index - 1].end };
            let next_start = dates.get(index + 1).map_or(sentence.len(), |next| next.start);
            let (score, rule) = score(sentence, previous_end, date, next_start);
            if score == HISTORY_SCORE {
                continue;
            }
            let past = not_before.is_some_and(|floor| date.when.sort_key().date_naive() < floor);
            if past && score != DEADLINE_SCORE {
                continue;
            }
            let better = match &best {
                None => true,
                Some((best_score, best_date, _, _)) => {
                    // The best score wins; then an exact day over a month alone; then the earliest.
                    (score, !date.approximate) > (*best_score, !best_date.approximate)
                        || (score == *best_score
                            && date.approximate == best_date.approximate
                            && date.when.sort_key() < best_date.when.sort_key())
                }
            };
            if better {
                best = Some((score, *date, sentence, rule));
            }
        }
    }
    best.map(|(_, date, sentence, rule)| TextDeadline {
        when: date.when,
        sentence: tidy(sentence),
        approximate: date.approximate,
        rule,
    })
}

/// Clause boundaries: punctuation and the conjunctions that join clauses.
fn last_boundary(text: &str) -> usize {
    let punctuation = text.rfind([',', ';', ':', '(', '、', '。']).map(|i| i + 1);
    let words = [" and ", " but ", " while ", " whereas ", " - ", " — "]
        .iter()
        .filter_map(|w| text.rfind(w).map(|i| i + w.len()))
        .max();
    punctuation.max(words).unwrap_or(0)
}

fn first_boundary(text: &str) -> usize {
    let punctuation = text.find([',', ';', '(', '、', '。']);
    let words =
        [" and ", " but ", " while ", " whereas ", " - ", " — "].iter().filter_map(|w| text.find(w)).min();
    match (punctuation, words) {
        (Some(p), Some(w)) => p.min(w),
        (p, w) => p.or(w).unwrap_or(text.len()),
    }
}

/// The score of one date and the rule that gave it.
fn score(sentence: &str, previous_end: usize, date: &FoundDate, next_start: usize) -> (i32, &'static str) {
    let before = sentence[previous_end..date.start].to_lowercase();
    let boundary = last_boundary(&before);
    let clause_before = before[boundary..].trim().to_owned();
    // `Recommended apply by date: 2026-03-22`: the label before the colon is the date's clause.
    let label = match before[..boundary].trim_end().strip_suffix(':') {
        Some(head) => head[last_boundary(head)..].trim().to_owned(),
        None => String::new(),
    };
    let after = sentence[date.end..next_start].to_lowercase();
    // A date that opens its clause ("After July 29, 2027, clusters will …") is judged by the
    // clause it governs, past an immediate comma.
    let opens = OPENERS.contains(&clause_before.trim_start_matches("however").trim());
    let governed = if opens {
        format!("{label} {clause_before} {}", after.trim_start().trim_start_matches(',').trim_start())
    } else {
        format!("{label} {clause_before} {}", &after[..first_boundary(&after)])
    };
    let history_words = HISTORY.iter().any(|phrase| governed.contains(phrase))
        || before.contains("end-of-life (eol)")
        || before.contains("end of life (eol)")
        || before.contains("follows");
    if history_words
        && !STRONG_DEADLINE.iter().any(|phrase| clause_before.contains(phrase) || label.contains(phrase))
    {
        return (HISTORY_SCORE, "history: the date the notice recounts (announcement, upstream end of life)");
    }
    if STRONG_DEADLINE.iter().any(|phrase| governed.contains(phrase))
        && !governed.contains("extended support")
    {
        return (DEADLINE_SCORE, "deadline: the clause names what must be done by this date");
    }
    if DISTRACTOR.iter().any(|phrase| governed.contains(phrase)) {
        return (
            DISTRACTOR_SCORE,
            "distractor: extended support, pricing, a console or creation cut-off or a later stage",
        );
    }
    if DEADLINE.iter().any(|phrase| governed.contains(phrase)) {
        return (DEADLINE_SCORE, "deadline: the clause says what happens or must be done on this date");
    }
    (NEUTRAL_SCORE, "the only date the notice gives without deadline words")
}

/// Splits at line breaks, at `。`, and at `.`, `!` or `?` followed by white space and a capital
/// letter, a digit or a bracket, except after a month abbreviation (`Sept. 1`).
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let boundary = match c {
            '\n' | '\r' => Some(at),
            '。' => Some(at + c.len_utf8()),
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
