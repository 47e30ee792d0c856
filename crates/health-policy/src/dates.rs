//! Dates and times as AWS Health writes them: RFC 1123 (`Wed, 16 Aug 2023 23:18:51 GMT`, day
//! padded or not), `September 1, 2025`, `March 23rd, 2026`, `the 23rd of March 2026`,
//! `23-Mar-2026`, `2026-03-08 14:00 UTC`, `2026/03/08`, `08.03.2026`, `03/23/2026` (only where
//! day and month cannot be confused), `2026年3月23日`, ISO 8601 with offsets, 12-hour times
//! (`00:00:01 AM UTC`), zone abbreviations and numeric offsets, and epoch seconds from the
//! Health API. A date without a year (`by March 23`) is the first such day on or after the
//! message's own date; a month alone (`in March 2026`) is its first day, marked approximate.
//! One grammar serves both the structured fields and the free text.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

/// A point in time, or a calendar day when the text gives no time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Instant(DateTime<Utc>),
    Day(NaiveDate),
}

impl When {
    /// The calendar day in `zone`: an instant is converted, a bare day stays the day written.
    pub fn day_in(&self, zone: chrono_tz::Tz) -> NaiveDate {
        match self {
            When::Instant(instant) => instant.with_timezone(&zone).date_naive(),
            When::Day(day) => *day,
        }
    }

    /// A key that orders instants and days on one axis (a day counts as its UTC midnight).
    pub fn sort_key(&self) -> DateTime<Utc> {
        match self {
            When::Instant(instant) => *instant,
            When::Day(day) => day.and_time(NaiveTime::MIN).and_utc(),
        }
    }

    /// How a person reads it: `2027-02-09 08:00 UTC` or `2027-02-09`.
    pub fn describe(&self) -> String {
        match self {
            When::Instant(instant) => instant.format("%Y-%m-%d %H:%M UTC").to_string(),
            When::Day(day) => day.format("%Y-%m-%d").to_string(),
        }
    }
}

/// A date found in a text, with its byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundDate {
    pub when: When,
    pub start: usize,
    pub end: usize,
    /// The text names only a month (`in March 2026`): `when` is its first day.
    pub approximate: bool,
}

const MONTH: &str = r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?:\.|\b)";
/// Capitalised month names only: without a year, `18 may be` must not read as a date.
const MONTH_CAPITALISED: &str = r"(?-i:(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))(?:\.|\b)";
const WEEKDAY: &str = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?";
const ORDINAL: &str = r"(?:st|nd|rd|th)?";
/// Zone designators: names AWS and its customers write, or numeric offsets (`+09:00`, `UTC+9`).
const ZONE: &str = r"(?:(?:utc|gmt)\s?[+-]\d{1,2}(?::?\d{2})?\b|[+-]\d{2}:?\d{2}\b|utc\b|gmt\b|z\b|cest\b|cet\b|eest\b|eet\b|west\b|wet\b|bst\b|jst\b|kst\b|sgt\b|hkt\b|aest\b|aedt\b|akst\b|akdt\b|hst\b|[pmce][sd]t\b)";

fn time_part() -> String {
    format!(
        r"(?:(?:\s*,)?\s+(?:at\s+)?(?P<h>\d{{1,2}}):(?P<mi>\d{{2}})(?::(?P<s>\d{{2}})(?:\.\d+)?)?(?:\s*(?P<ampm>[ap]\.?m\b\.?))?(?:\s*\(?(?P<tz>{ZONE})\)?)?)?"
    )
}

/// What a pattern's captures mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Year, month (number or name) and day.
    Full,
    /// `a/b/yyyy`: day and month told apart only when one of them exceeds 12.
    Slashed,
    /// Month and day without a year.
    Yearless,
    /// Month and year only.
    MonthOnly,
}

fn patterns() -> &'static [(Regex, Form)] {
    static PATTERNS: OnceLock<Vec<(Regex, Form)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let time = time_part();
        let iso_time = format!(
            r"(?:(?:t|\s+)(?P<h>\d{{2}}):(?P<mi>\d{{2}})(?::(?P<s>\d{{2}})(?:\.\d+)?)?(?:\s*(?P<ampm>[ap]\.?m\b\.?))?(?:\s*\(?(?P<tz>{ZONE})\)?)?)?"
        );
        let sources: Vec<(String, Form)> = vec![
            (
                format!(
                    r"(?i)\b{WEEKDAY}(?:the\s+)?(?P<d>\d{{1,2}}){ORDINAL}(?:\s+of)?(?:\s+|-){MONTH}(?:,?\s+|-)(?P<y>\d{{4}})\b{time}"
                ),
                Form::Full,
            ),
            (
                format!(r"(?i)\b{WEEKDAY}{MONTH}\s+(?P<d>\d{{1,2}}){ORDINAL},?\s+(?P<y>\d{{4}})\b{time}"),
                Form::Full,
            ),
            (format!(r"(?i)\b(?P<y>\d{{4}})[-/](?P<mo>\d{{1,2}})[-/](?P<d>\d{{1,2}}){iso_time}"), Form::Full),
            (format!(r"(?i)\b(?P<d>\d{{1,2}})\.(?P<mo>\d{{1,2}})\.(?P<y>\d{{4}})\b{time}"), Form::Full),
            (format!(r"(?i)\b(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})/(?P<y>\d{{4}})\b{time}"), Form::Slashed),
            (
                format!(
                    r"(?i)(?P<y>\d{{4}})\s*年\s*(?P<mo>\d{{1,2}})\s*月\s*(?P<d>\d{{1,2}})\s*日(?:\s*[(（][^)）]{{1,3}}[)）])?(?:\s*(?P<h>\d{{1,2}}):(?P<mi>\d{{2}})(?::(?P<s>\d{{2}}))?)?(?:\s*\(?(?P<tz>{ZONE}|日本時間)\)?)?"
                ),
                Form::Full,
            ),
            (format!(r"(?i)\b{WEEKDAY}{MONTH_CAPITALISED}\s+(?P<d>\d{{1,2}}){ORDINAL}\b{time}"), Form::Yearless),
            (
                format!(r"(?i)\b{WEEKDAY}(?:the\s+)?(?P<d>\d{{1,2}}){ORDINAL}(?:\s+of)?\s+{MONTH_CAPITALISED}{time}"),
                Form::Yearless,
            ),
            (format!(r"(?i)\b{MONTH}\s+(?P<y>\d{{4}})\b"), Form::MonthOnly),
        ];
        sources
            .into_iter()
            .map(|(source, form)| (Regex::new(&source).expect("valid date pattern"), form))
            .collect()
    })
}

/// Every date in `text` that carries its year, in order, without overlaps (the longer match
/// wins).
pub fn find_dates(text: &str) -> Vec<FoundDate> {
    find_dates_from(text, None)
}

/// Every date in `text`, in order, without overlaps (the longer match wins). A date written
/// without a year is the first such day on or after `written` (the message's own date) and is
/// skipped when `written` is unknown.
pub fn find_dates_from(text: &str, written: Option<NaiveDate>) -> Vec<FoundDate> {
    // Nearly every text without a digit has no date; the patterns all need one.
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    let mut found: Vec<FoundDate> = Vec::new();
    for (pattern, form) in patterns() {
        for captures in pattern.captures_iter(text) {
            let whole = captures.get(0).expect("group 0 always matches");
            if let Some(when) = when_from(&captures, *form, written) {
                found.push(FoundDate {
                    when,
                    start: whole.start(),
                    end: whole.end(),
                    approximate: *form == Form::MonthOnly,
                });
            }
        }
    }
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<FoundDate> = Vec::with_capacity(found.len());
    for date in found {
        if kept.last().is_none_or(|last| date.start >= last.end) {
            kept.push(date);
        }
    }
    kept
}

/// A structured timestamp: epoch seconds (number or numeric string), RFC 3339, RFC 1123 or any
/// format of [`find_dates`] filling the whole string. A bare day counts as its UTC midnight.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return from_epoch_seconds(seconds);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_rfc2822(text) {
        return Some(time.with_timezone(&Utc));
    }
    match find_dates(text).as_slice() {
        [only] if only.start == 0 && only.end == text.len() && !only.approximate => {
            Some(only.when.sort_key())
        }
        _ => None,
    }
}

/// Epoch seconds with fractions, as the Health API sends them.
pub fn from_epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() || !(0.0..=1.0e11).contains(&seconds) {
        return None;
    }
    // Millisecond precision, as the AWS SDKs keep it: floats carry no more.
    DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
}

/// RFC 1123 as EventBridge writes it: `Tue, 9 Feb 2027 08:00:00 GMT`.
pub fn to_rfc1123(time: DateTime<Utc>) -> String {
    time.format("%a, %-d %b %Y %H:%M:%S GMT").to_string()
}

fn number<T: std::str::FromStr>(captures: &Captures<'_>, name: &str) -> Option<T> {
    captures.name(name)?.as_str().parse().ok()
}

fn when_from(captures: &Captures<'_>, form: Form, written: Option<NaiveDate>) -> Option<When> {
    let month = || match captures.name("mo") {
        Some(_) => number::<u32>(captures, "mo"),
        None => month_number(captures.name("mon")?.as_str()),
    };
    let date = match form {
        Form::Full => NaiveDate::from_ymd_opt(
            plausible_year(number(captures, "y")?)?,
            month()?,
            number(captures, "d")?,
        )?,
        Form::MonthOnly => NaiveDate::from_ymd_opt(plausible_year(number(captures, "y")?)?, month()?, 1)?,
        Form::Slashed => {
            let (a, b): (u32, u32) = (number(captures, "a")?, number(captures, "b")?);
            let (month, day) = match (a > 12, b > 12) {
                (true, false) => (b, a),
                (false, true) => (a, b),
                // 03/03/2026 reads the same either way; 03/04/2026 does not: not a date.
                _ if a == b => (a, b),
                _ => return None,
            };
            NaiveDate::from_ymd_opt(plausible_year(number(captures, "y")?)?, month, day)?
        }
        Form::Yearless => {
            let written = written?;
            let (month, day) = (month()?, number::<u32>(captures, "d")?);
            // The first such day on or after the message's date (29 February waits for a leap year).
            (written.year()..=written.year() + 4)
                .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
                .find(|date| *date >= written)?
        }
    };
    if form == Form::MonthOnly {
        return Some(When::Day(date));
    }
    let Some(hour) = number::<u32>(captures, "h") else {
        return Some(When::Day(date));
    };
    let minute: u32 = number(captures, "mi")?;
    let second: u32 = captures.name("s").map_or(Some(0), |s| s.as_str().parse().ok())?.min(59);
    let hour = match captures.name("ampm") {
        None => hour,
        Some(meridiem) => {
            let pm = meridiem.as_str().to_ascii_lowercase().starts_with('p');
            match (pm, hour) {
                // 12 AM and 00 AM are midnight; 12 PM is noon.
                (false, 0 | 12) => 0,
                (true, 12) => 12,
                (_, 13..) | (true, 0) => return None,
                (true, h) => h + 12,
                (false, h) => h,
            }
        }
    };
    let time = NaiveTime::from_hms_opt(hour, minute, second)?;
    let offset = zone_offset(captures.name("tz").map(|m| m.as_str()))?;
    let local = NaiveDateTime::new(date, time);
    let instant = offset.from_local_datetime(&local).single()?.with_timezone(&Utc);
    Some(When::Instant(instant))
}

fn plausible_year(year: i32) -> Option<i32> {
    (1970..=2200).contains(&year).then_some(year)
}

fn month_number(name: &str) -> Option<u32> {
    let name = name.to_ascii_lowercase();
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    MONTHS.iter().position(|m| name.starts_with(m)).map(|i| i as u32 + 1)
}

/// The offset a zone designator names; none means UTC (AWS writes times in UTC).
fn zone_offset(zone: Option<&str>) -> Option<FixedOffset> {
    let Some(zone) = zone else {
        return FixedOffset::east_opt(0);
    };
    let zone = zone.trim().to_ascii_lowercase();
    let hours = match zone.as_str() {
        "utc" | "gmt" | "z" | "wet" => 0,
        "cet" | "bst" | "west" => 1,
        "cest" | "eet" => 2,
        "eest" => 3,
        "sgt" | "hkt" => 8,
        "jst" | "kst" | "日本時間" => 9,
        "aest" => 10,
        "aedt" => 11,
        "hst" => -10,
        "akst" => -9,
        "akdt" => -8,
        "est" => -5,
        "edt" => -4,
        "cst" => -6,
        "cdt" => -5,
        "mst" => -7,
        "mdt" => -6,
        "pst" => -8,
        "pdt" => -7,
        numeric => return numeric_offset(numeric.trim_start_matches("utc").trim_start_matches("gmt").trim()),
    };
    FixedOffset::east_opt(hours * 3600)
}

/// `+09:00`, `+0900`, `-5`, `+9` (after `UTC`/`GMT` was stripped).
fn numeric_offset(text: &str) -> Option<FixedOffset> {
    let sign = match text.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let (h, m): (i32, i32) = match digits.len() {
        1 | 2 => (digits.parse().ok()?, 0),
        3 => (digits[..1].parse().ok()?, digits[1..].parse().ok()?),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn instant(text: &str) -> When {
        When::Instant(text.parse().unwrap())
    }

    fn day(y: i32, m: u32, d: u32) -> When {
        When::Day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn only(text: &str) -> When {
        let found = find_dates(text);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        found[0].when
    }

    #[test]
    fn rfc1123_with_padded_and_unpadded_days() {
        assert_eq!(only("Wed, 16 Aug 2023 23:18:51 GMT"), instant("2023-08-16T23:18:51Z"));
        assert_eq!(only("Tue, 9 Feb 2027 08:00:00 GMT"), instant("2027-02-09T08:00:00Z"));
        assert_eq!(only("Tue, 09 Feb 2027 08:00:00 GMT"), instant("2027-02-09T08:00:00Z"));
        assert_eq!(only("beginning Wed, 16 Aug 2023 23:18:51 GMT."), instant("2023-08-16T23:18:51Z"));
        assert_eq!(only("on 3 March 2026"), day(2026, 3, 3));
    }

    #[test]
    fn month_name_first() {
        assert_eq!(only("on September 1, 2025."), day(2025, 9, 1));
        assert_eq!(only("on Sept. 1, 2025"), day(2025, 9, 1));
        assert_eq!(only("on or after July 1st 2021"), day(2021, 7, 1));
        assert_eq!(only("Monday, March 9, 2023 at 3:15 PM PST"), instant("2023-03-09T23:15:00Z"));
    }

    #[test]
    fn iso_and_utc_suffixed_times() {
        assert_eq!(only("after 2026-03-08 14:00 UTC"), instant("2026-03-08T14:00:00Z"));
        assert_eq!(only("after 2019-06-26 15:00:30 UTC"), instant("2019-06-26T15:00:30Z"));
        assert_eq!(only("at 2026-03-08T14:00:00Z"), instant("2026-03-08T14:00:00Z"));
        assert_eq!(only("at 2026-03-08T14:00:00+01:00"), instant("2026-03-08T13:00:00Z"));
        assert_eq!(only("by 2026-03-08."), day(2026, 3, 8));
    }

    #[test]
    fn several_dates_in_order_without_overlap() {
        let found =
            find_dates("from Thu, 20 May 2021 08:00:00 GMT to Thu, 20 May 2021 14:00:00 GMT for 6 hours");
        let whens: Vec<When> = found.iter().map(|f| f.when).collect();
        assert_eq!(whens, vec![instant("2021-05-20T08:00:00Z"), instant("2021-05-20T14:00:00Z")]);
    }

    #[test]
    fn impossible_dates_and_numbers_are_not_dates() {
        assert!(find_dates("on February 30, 2026").is_empty());
        assert!(find_dates("2026-13-01 and 25:00 and Node.js 18 and 6 hours").is_empty());
        assert!(find_dates("at 2026-03-08 25:61 UTC").len() <= 1);
    }

    #[test]
    fn structured_timestamps() {
        let expected: DateTime<Utc> = "2020-05-10T02:31:30.530Z".parse().unwrap();
        assert_eq!(parse_timestamp("1589077890.53"), Some(expected));
        assert_eq!(
            parse_timestamp("Wed, 16 Aug 2023 23:18:51 GMT"),
            Some("2023-08-16T23:18:51Z".parse().unwrap())
        );
        assert_eq!(
            parse_timestamp("Tue, 9 Feb 2027 08:00:00 GMT"),
            Some("2027-02-09T08:00:00Z".parse().unwrap())
        );
        assert_eq!(parse_timestamp("2027-01-12T10:15:30Z"), Some("2027-01-12T10:15:30Z".parse().unwrap()));
        assert_eq!(parse_timestamp("not a time"), None);
        assert_eq!(parse_timestamp(""), None);
        let time: DateTime<Utc> = "2027-02-09T08:00:00Z".parse().unwrap();
        assert_eq!(parse_timestamp(&to_rfc1123(time)), Some(time));
    }

    #[test]
    fn days_follow_the_team_time_zone() {
        let late = instant("2027-02-09T23:30:00Z");
        assert_eq!(late.day_in(chrono_tz::UTC), NaiveDate::from_ymd_opt(2027, 2, 9).unwrap());
        assert_eq!(late.day_in(chrono_tz::Europe::Berlin), NaiveDate::from_ymd_opt(2027, 2, 10).unwrap());
        assert_eq!(
            day(2025, 9, 1).day_in(chrono_tz::America::Los_Angeles),
            NaiveDate::from_ymd_opt(2025, 9, 1).unwrap()
        );
    }

    proptest! {
        #[test]
        fn finding_dates_never_panics(text in "\\PC{0,200}") {
            let found = find_dates(&text);
            for date in found {
                prop_assert!(text.is_char_boundary(date.start) && text.is_char_boundary(date.end));
            }
            let _ = parse_timestamp(&text);
        }

        #[test]
        fn date_like_noise_never_panics(text in "([0-9]{1,5}[ ,:.-]?(Jan|Sept|May|UTC|GMT|PM|T|Z|[+-]){0,2} ?){0,12}") {
            let _ = find_dates(&text);
            let _ = parse_timestamp(&text);
        }

        #[test]
        fn every_valid_rfc1123_time_round_trips(seconds in 0i64..4_000_000_000) {
            let time = DateTime::from_timestamp(seconds, 0).unwrap();
            prop_assert_eq!(parse_timestamp(&to_rfc1123(time)), Some(time));
        }
    }
}

#[cfg(test)]
mod forms {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> When {
        When::Day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    fn instant(text: &str) -> When {
        When::Instant(text.parse().unwrap())
    }

    fn only_from(text: &str, written: Option<NaiveDate>) -> FoundDate {
        let found = find_dates_from(text, written);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        found[0]
    }

    fn only(text: &str) -> When {
        only_from(text, None).when
    }

    #[test]
    fn twelve_hour_times_with_the_12_and_00_hours() {
        assert_eq!(only("January 10, 2022, 12:00:00 AM UTC"), instant("2022-01-10T00:00:00Z"));
        assert_eq!(only("March 3, 2025 00:00:01 AM UTC"), instant("2025-03-03T00:00:01Z"));
        assert_eq!(only("April 8, 2025 at 12:15 PM UTC"), instant("2025-04-08T12:15:00Z"));
        assert_eq!(only("10/13/2022, 2:05:09 PM UTC"), instant("2022-10-13T14:05:09Z"));
        assert!(find_dates("April 8, 2025 at 13:15 PM").iter().all(|f| f.when == day(2025, 4, 8)));
    }

    #[test]
    fn ordinals_weekdays_and_day_first_forms() {
        assert_eq!(only("on March 23rd, 2026"), day(2026, 3, 23));
        assert_eq!(only("on the 23rd of March 2026"), day(2026, 3, 23));
        assert_eq!(only("expires on 22nd August 2024"), day(2024, 8, 22));
        assert_eq!(only("Thursday, June 4, 2026 at 9:00 AM EDT"), instant("2026-06-04T13:00:00Z"));
        assert_eq!(only("by 15-Apr-2026"), day(2026, 4, 15));
    }

    #[test]
    fn numeric_forms_only_where_unambiguous() {
        assert_eq!(only("after 2026/07/15"), day(2026, 7, 15));
        assert_eq!(only("after 14.05.2026"), day(2026, 5, 14));
        assert_eq!(only("after 03/28/2026"), day(2026, 3, 28));
        assert_eq!(only("after 28/03/2026"), day(2026, 3, 28));
        assert_eq!(only("on 03/03/2026"), day(2026, 3, 3));
        assert!(find_dates("planned for 04/05/2026").is_empty(), "day and month could be swapped");
    }

    #[test]
    fn zones_and_offsets() {
        assert_eq!(only("April 20, 2026 10:00 JST"), instant("2026-04-20T01:00:00Z"));
        assert_eq!(only("14 May 2026 23:00 CEST"), instant("2026-05-14T21:00:00Z"));
        assert_eq!(only("14 Jan 2026 23:00 CET"), instant("2026-01-14T22:00:00Z"));
        assert_eq!(only("2026/07/15 03:00 UTC+9"), instant("2026-07-14T18:00:00Z"));
        assert_eq!(only("2026-06-30T10:00:00-04:00"), instant("2026-06-30T14:00:00Z"));
        assert_eq!(only("2026-06-30 10:00 +0530"), instant("2026-06-30T04:30:00Z"));
        assert_eq!(only("Monday, March 9, 2023 at 3:15 PM PST"), instant("2023-03-09T23:15:00Z"));
    }

    #[test]
    fn japanese_dates() {
        assert_eq!(only("2024年6月12日 に終了します"), day(2024, 6, 12));
        assert_eq!(only("2023年6月12日 15:30 UTC から"), instant("2023-06-12T15:30:00Z"));
        assert_eq!(only("2023年6月12日（月） 10:00 JST"), instant("2023-06-12T01:00:00Z"));
    }

    #[test]
    fn years_less_dates_are_the_first_such_day_on_or_after_the_message() {
        let written = NaiveDate::from_ymd_opt(2023, 12, 5);
        assert_eq!(only_from("on Feb 15.", written).when, day(2024, 2, 15));
        assert_eq!(only_from("on December 5", written).when, day(2023, 12, 5));
        assert_eq!(
            only_from("on the 4th of December", NaiveDate::from_ymd_opt(2023, 11, 20)).when,
            day(2023, 12, 4)
        );
        assert_eq!(only_from("on 29 Feb", written).when, day(2024, 2, 29));
        assert!(find_dates_from("on Feb 15", None).is_empty(), "no year and no message date: no date");
        assert!(
            find_dates_from("Node.js 18 may be used", written).is_empty(),
            "a lower-case month word is not a date"
        );
    }

    #[test]
    fn a_month_alone_is_its_first_day_marked_approximate() {
        let found = only_from("in March 2026.", None);
        assert_eq!(found.when, day(2026, 3, 1));
        assert!(found.approximate);
        assert!(!only_from("on March 23, 2026", None).approximate);
        assert_eq!(parse_timestamp("March 2026"), None, "a month is not a timestamp");
    }
}
