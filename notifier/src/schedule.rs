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
//! A due date first set inside 5 days never falls in the 14-day window, so it gets only the
//! 5-day reminder. Whether a reminder was already sent is the marker's business (see
//! [`crate::markers`]): its key holds the due date, so a moved due date re-arms both.

use chrono::{Days, NaiveDate};

/// Which reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// The reminder an open ticket is due today, if any.
pub fn reminder_due(due: NaiveDate, today: NaiveDate, overdue_enabled: bool) -> Option<ReminderKind> {
    let days_left = (due - today).num_days();
    match days_left {
        6..=14 => Some(ReminderKind::Due14d),
        0..=5 => Some(ReminderKind::Due5d),
        d if d < 0 && overdue_enabled => Some(ReminderKind::Overdue),
        _ => None,
    }
}

/// Whether a ticket could be due a reminder on any calendar day within one day of `today`: the
/// scan's cheap test before it looks up the team's time zone (no zone is more than a day
/// from UTC).
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
    fn a_ticket_scanned_daily_gets_one_of_each() {
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
        fn at_most_one_kind_per_day_and_never_both_windows(offset in -30i64..60) {
            let today = date("2027-01-01");
            let due = today + chrono::Duration::days(offset);
            let kind = reminder_due(due, today, true);
            match offset {
                6..=14 => prop_assert_eq!(kind, Some(ReminderKind::Due14d)),
                0..=5 => prop_assert_eq!(kind, Some(ReminderKind::Due5d)),
                o if o < 0 => prop_assert_eq!(kind, Some(ReminderKind::Overdue)),
                _ => prop_assert_eq!(kind, None),
            }
            if kind.is_some() {
                prop_assert!(may_be_due(due, today, true));
            }
        }
    }
}
