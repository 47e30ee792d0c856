//! When a ticket is due a reminder: a pure function of the due date, today and the settings.
//!
//! Windows, not instants, so a missed scan catches up and a restarted notifier does not skip:
//!
//! ```text
//!   due-14d  when  due − 14 ≤ today <  due − 5
//!   due-5d   when  due − 5  ≤ today ≤  due
//!   overdue  when  today > due (if enabled)
//! ```
//!
//! A window that would open on a Saturday or Sunday opens on the Friday before, so a reminder
//! due on a weekend goes out on the working day before it; and reminders go out only within
//! the team's working hours on working days ([`WorkingHours`], default 09:00–18:00 Monday to
//! Friday in the team's zone).
//!
//! A due date first set inside 5 days never falls in the 14-day window, so it gets only the
//! 5-day reminder. Whether a reminder was already sent is the marker's business (see
//! [`crate::markers`]): its key holds the due date, so a moved due date re-arms both.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// Which reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReminderKind {
    Due14d,
    Due5d,
    Overdue,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::Due14d => "due-14d",
            ReminderKind::Due5d => "due-5d",
            ReminderKind::Overdue => "overdue",
        }
    }

    /// The JIRA label that mirrors it for board visibility, as teams used before.
    pub fn label(self) -> Option<&'static str> {
        match self {
            ReminderKind::Due14d => Some("notified-14d"),
            ReminderKind::Due5d => Some("notified-5d"),
            ReminderKind::Overdue => None,
        }
    }
}

/// The reminder an open ticket is due today, if any. Windows open on the working day on or
/// before due − 14 and due − 5.
pub fn reminder_due(due: NaiveDate, today: NaiveDate, overdue_enabled: bool) -> Option<ReminderKind> {
    let opens = |days: u64| due.checked_sub_days(Days::new(days)).map(working_day_on_or_before);
    let (Some(fourteen), Some(five)) = (opens(14), opens(5)) else { return None };
    if today > due {
        return overdue_enabled.then_some(ReminderKind::Overdue);
    }
    if today >= five {
        Some(ReminderKind::Due5d)
    } else if today >= fourteen {
        Some(ReminderKind::Due14d)
    } else {
        None
    }
}

/// Monday to Friday.
pub fn is_working_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// `day`, or the Friday before it when it falls on a weekend.
pub fn working_day_on_or_before(day: NaiveDate) -> NaiveDate {
    let back = match day.weekday() {
        Weekday::Sat => 1,
        Weekday::Sun => 2,
        _ => 0,
    };
    day.checked_sub_days(Days::new(back)).unwrap_or(day)
}

/// When a team reads messages: `start ≤ time < end` on working days, in the team's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("a valid time"),
            end: NaiveTime::from_hms_opt(18, 0, 0).expect("a valid time"),
        }
    }
}

impl WorkingHours {
    /// Whether a message may go out at this local time.
    pub fn contains(&self, local: NaiveDateTime) -> bool {
        is_working_day(local.date()) && local.time() >= self.start && local.time() < self.end
    }
}

impl std::str::FromStr for WorkingHours {
    type Err = String;

    /// `09:00-18:00`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a working-hours window like 09:00-18:00");
        let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let hours = WorkingHours { start: time(start)?, end: time(end)? };
        if hours.start >= hours.end {
            return Err(format!("{text:?}: the window must end after it starts, within one day"));
        }
        Ok(hours)
    }
}

/// Whether a ticket could be due a reminder on any calendar day within one day of `today`: the
/// scan's cheap test before it looks up the team's time zone (no zone is more than a day
/// from UTC). The scan's JQL fetches due dates up to 18 days ahead for the same reason (14,
/// a weekend moved to the Friday before, a day of zones, a day of margin).
pub fn may_be_due(due: NaiveDate, today_utc: NaiveDate, overdue_enabled: bool) -> bool {
    let days =
        [today_utc.checked_sub_days(Days::new(1)), Some(today_utc), today_utc.checked_add_days(Days::new(1))];
    days.into_iter().flatten().any(|day| reminder_due(due, day, overdue_enabled).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// Reminders a ticket gets over its life when scanned daily, with markers keyed by
    /// (kind, due date); `due_on` says the due date in force on each day.
    fn life(
        days: std::ops::RangeInclusive<i64>,
        due_on: impl Fn(i64) -> Option<NaiveDate>,
    ) -> Vec<(ReminderKind, NaiveDate, i64)> {
        let start = date("2027-01-01");
        let mut sent = std::collections::BTreeSet::new();
        let mut log = Vec::new();
        for day in days {
            let today = start + chrono::Duration::days(day);
            let Some(due) = due_on(day) else { continue };
            if let Some(kind) = reminder_due(due, today, false)
                && sent.insert((kind, due))
            {
                log.push((kind, due, day));
            }
        }
        log
    }

    #[test]
    fn windows_match_the_policy() {
        // Tuesday 9 Feb 2027: due − 14 is Tuesday 26 Jan, due − 5 Thursday 4 Feb.
        let due = date("2027-02-09");
        assert_eq!(reminder_due(due, date("2027-01-25"), false), None);
        assert_eq!(reminder_due(due, date("2027-01-26"), false), Some(ReminderKind::Due14d));
        assert_eq!(reminder_due(due, date("2027-02-03"), false), Some(ReminderKind::Due14d));
        assert_eq!(reminder_due(due, date("2027-02-04"), false), Some(ReminderKind::Due5d));
        assert_eq!(reminder_due(due, date("2027-02-09"), false), Some(ReminderKind::Due5d));
        assert_eq!(reminder_due(due, date("2027-02-10"), false), None);
        assert_eq!(reminder_due(due, date("2027-02-10"), true), Some(ReminderKind::Overdue));
    }

    #[test]
    fn a_reminder_due_on_a_weekend_goes_out_on_the_working_day_before() {
        // Thursday 11 Feb 2027: due − 14 is Thursday 28 Jan, due − 5 Saturday 6 Feb → Friday 5 Feb.
        let due = date("2027-02-11");
        assert_eq!(reminder_due(due, date("2027-02-04"), false), Some(ReminderKind::Due14d));
        assert_eq!(reminder_due(due, date("2027-02-05"), false), Some(ReminderKind::Due5d));
        // Sunday 21 Feb: due − 14 is Sunday 7 Feb → Friday 5 Feb.
        let due = date("2027-02-21");
        assert_eq!(reminder_due(due, date("2027-02-04"), false), None);
        assert_eq!(reminder_due(due, date("2027-02-05"), false), Some(ReminderKind::Due14d));
        assert_eq!(working_day_on_or_before(date("2027-02-08")), date("2027-02-08"));
    }

    #[test]
    fn working_hours_are_weekdays_within_the_window() {
        let hours: WorkingHours = "09:00-18:00".parse().unwrap();
        assert_eq!(hours, WorkingHours::default());
        let at = |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").unwrap();
        assert!(hours.contains(at("2027-02-05 09:00")), "Friday 09:00");
        assert!(!hours.contains(at("2027-02-05 08:59")) && !hours.contains(at("2027-02-05 18:00")));
        assert!(!hours.contains(at("2027-02-06 10:00")), "Saturday");
        assert!("18:00-09:00".parse::<WorkingHours>().is_err());
        assert!("9-5".parse::<WorkingHours>().unwrap_err().contains("09:00-18:00"));
    }

    #[test]
    fn a_ticket_scanned_daily_gets_one_of_each() {
        // Monday 1 Feb 2027: due − 14 is Monday 18 Jan, due − 5 Wednesday 27 Jan.
        let due = date("2027-02-01");
        let log = life(0..=40, |_| Some(due));
        let kinds: Vec<_> = log.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(kinds, [ReminderKind::Due14d, ReminderKind::Due5d]);
        assert_eq!(log[0].2, 17); // 2027-01-18 = due − 14
        assert_eq!(log[1].2, 26); // 2027-01-27 = due − 5
    }

    #[test]
    fn a_due_date_set_inside_five_days_skips_the_fourteen_day_reminder() {
        let log = life(0..=10, |day| (day >= 2).then(|| date("2027-01-06")));
        assert_eq!(log.iter().map(|(k, _, _)| *k).collect::<Vec<_>>(), [ReminderKind::Due5d]);
    }

    #[test]
    fn moving_the_due_date_later_re_arms_both() {
        let first = date("2027-01-20");
        let later = date("2027-03-01");
        let log = life(0..=70, |day| Some(if day < 16 { first } else { later }));
        let kinds: Vec<_> = log.iter().map(|(k, d, _)| (*k, *d)).collect();
        assert_eq!(
            kinds,
            [
                (ReminderKind::Due14d, first),
                (ReminderKind::Due5d, first),
                (ReminderKind::Due14d, later),
                (ReminderKind::Due5d, later)
            ]
        );
    }

    proptest! {
        #[test]
        fn at_most_one_kind_per_day_and_never_both_windows(offset in -30i64..60, start in 0i64..7) {
            let today = date("2027-01-01") + chrono::Duration::days(start);
            let due = today + chrono::Duration::days(offset);
            let kind = reminder_due(due, today, true);
            // A window that opens on a weekend opens up to two days early.
            match offset {
                8..=14 => prop_assert_eq!(kind, Some(ReminderKind::Due14d)),
                6..=7 => prop_assert!(matches!(kind, Some(ReminderKind::Due14d | ReminderKind::Due5d))),
                0..=5 => prop_assert_eq!(kind, Some(ReminderKind::Due5d)),
                o if o < 0 => prop_assert_eq!(kind, Some(ReminderKind::Overdue)),
                15..=16 => prop_assert!(matches!(kind, None | Some(ReminderKind::Due14d))),
                _ => prop_assert_eq!(kind, None),
            }
            if kind.is_some() {
                prop_assert!(may_be_due(due, today, true));
            }
        }
    }
}
