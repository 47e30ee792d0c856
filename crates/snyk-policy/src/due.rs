//! Due dates from the lane's service level.
//!
//! * P1: the end (last day) of the next sprint, on a configurable sprint calendar (a sprint
//!   start date and a length in days: sprints tile time before and after it);
//! * P2: one month after the group qualified (configurable);
//! * P3: one quarter (configurable);
//! * P4: none.
//!
//! A group's due date is fixed when it first qualifies; when its lane becomes more urgent the
//! date is recomputed from that day and the earlier of the two is kept (tightened); when its
//! lane becomes less urgent the date is kept, and the ticket says so (never loosened silently).
//!
//! The rules per lane are data ([`DueRule`], from the policy profile, `crate::profile`): the seed
//! is the list above; a profile may give fixed days per lane. A record's date is always its
//! rule applied to (`due_lane`, `since`), so when an operator changes the profile (previewed with
//! `replay --diff`) the date is re-derived from the same day under the new rule: a deliberate,
//! previewed change, not a silent one.

use chrono::{Months, NaiveDate};
use contracts::Lane;
use serde::{Deserialize, Serialize};

/// How a lane's due date is counted from the day the group entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DueRule {
    /// The last day of the sprint after the current one.
    NextSprint,
    Months(u32),
    Days(u32),
    /// No due date.
    None,
}

impl DueRule {
    /// In words, for the ticket and `explain --why`.
    pub fn describe(&self, sprint_days: u32) -> String {
        match self {
            DueRule::NextSprint => format!("the end of the next {sprint_days}-day sprint"),
            DueRule::Months(n) => format!("{n} month(s)"),
            DueRule::Days(n) => format!("{n} day(s)"),
            DueRule::None => "no due date".to_owned(),
        }
    }
}

/// The due rule of each ticketed lane, P1 to P4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaneRules(pub [DueRule; 4]);

impl LaneRules {
    /// The seed's service levels: P1 the next sprint, P2 and P3 months, P4 none.
    pub fn seed(p2_months: u32, p3_months: u32) -> LaneRules {
        LaneRules([
            DueRule::NextSprint,
            DueRule::Months(p2_months),
            DueRule::Months(p3_months),
            DueRule::None,
        ])
    }

    pub fn of(&self, lane: Lane) -> DueRule {
        match lane {
            Lane::P1 => self.0[0],
            Lane::P2 => self.0[1],
            Lane::P3 => self.0[2],
            Lane::P4 | Lane::Maintenance => self.0[3],
        }
    }
}

/// The sprint calendar and the service levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaCalendar {
    /// The first day of any sprint.
    pub sprint_anchor: NaiveDate,
    pub sprint_days: u32,
    pub rules: LaneRules,
}

impl SlaCalendar {
    /// The last day of the sprint after the one containing `day`; `None` past the end of the
    /// calendar chrono can represent (a corrupt or hostile timestamp, never a real one).
    pub fn end_of_next_sprint(&self, day: NaiveDate) -> Option<NaiveDate> {
        let length = i64::from(self.sprint_days.max(1));
        let offset = (day - self.sprint_anchor).num_days();
        let current = offset.div_euclid(length);
        let next_end = (current + 2) * length - 1;
        self.sprint_anchor.checked_add_signed(chrono::Duration::try_days(next_end)?)
    }

    /// The due date of a group that entered `lane` on `since`; `None` for P4.
    pub fn due(&self, lane: Lane, since: NaiveDate) -> Option<NaiveDate> {
        if lane == Lane::Maintenance {
            return None;
        }
        match self.rules.of(lane) {
            DueRule::NextSprint => self.end_of_next_sprint(since),
            DueRule::Months(n) => since.checked_add_months(Months::new(n)),
            DueRule::Days(n) => since.checked_add_days(chrono::Days::new(u64::from(n))),
            DueRule::None => None,
        }
    }
}

/// The due date a group carries while it qualifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueRecord {
    /// The lane the group is in now.
    pub lane: Lane,
    /// The lane and day the date was computed from.
    pub due_lane: Lane,
    pub since: NaiveDate,
    pub date: Option<NaiveDate>,
    /// Set when the lane fell after the date was fixed and the date was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_from: Option<Lane>,
}

impl DueRecord {
    /// The record of a group that first qualifies in `lane` on `today`.
    pub fn first(calendar: &SlaCalendar, lane: Lane, today: NaiveDate) -> DueRecord {
        DueRecord { lane, due_lane: lane, since: today, date: calendar.due(lane, today), kept_from: None }
    }

    /// The record after the group is seen in `lane` on `today`.
    pub fn next(&self, calendar: &SlaCalendar, lane: Lane, today: NaiveDate) -> DueRecord {
        // The rules changed since the date was set (a new profile): the same lane and day under
        // the rule in force now.
        let ruled = calendar.due(self.due_lane, self.since);
        if ruled != self.date {
            let rederived = DueRecord { date: ruled, ..self.clone() };
            return if lane == self.lane { rederived } else { rederived.next(calendar, lane, today) };
        }
        if lane == self.lane {
            return self.clone();
        }
        if lane < self.lane {
            let candidate = calendar.due(lane, today);
            let tighter = match (candidate, self.date) {
                (Some(new), Some(old)) => new < old,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if tighter {
                return DueRecord { lane, due_lane: lane, since: today, date: candidate, kept_from: None };
            }
            let kept_from = (lane != self.due_lane).then_some(self.due_lane);
            return DueRecord { lane, kept_from, ..self.clone() };
        }
        // Less urgent now: keep the date, and remember why it is earlier than the lane implies.
        let kept_from = (self.date.is_some() && lane != self.due_lane).then_some(self.due_lane);
        DueRecord { lane, kept_from, ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn calendar() -> SlaCalendar {
        SlaCalendar {
            sprint_anchor: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            sprint_days: 14,
            rules: LaneRules::seed(1, 3),
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn lane_service_levels() {
        let c = calendar();
        // 2026-11-27 is in the sprint 2026-11-23..2026-12-06; the next ends 2026-12-20.
        assert_eq!(c.due(Lane::P1, day(2026, 11, 27)), Some(day(2026, 12, 20)));
        // The first day of a sprint still gets the whole next sprint.
        assert_eq!(c.due(Lane::P1, day(2026, 11, 23)), Some(day(2026, 12, 20)));
        assert_eq!(c.due(Lane::P1, day(2026, 12, 6)), Some(day(2026, 12, 20)));
        assert_eq!(c.due(Lane::P1, day(2026, 12, 7)), Some(day(2027, 1, 3)));
        // Before the anchor the calendar extends backwards.
        assert_eq!(c.due(Lane::P1, day(2026, 1, 4)), Some(day(2026, 1, 18)));
        assert_eq!(c.due(Lane::P2, day(2026, 11, 27)), Some(day(2026, 12, 27)));
        assert_eq!(c.due(Lane::P2, day(2027, 1, 31)), Some(day(2027, 2, 28)));
        assert_eq!(c.due(Lane::P3, day(2026, 11, 27)), Some(day(2027, 2, 27)));
        assert_eq!(c.due(Lane::P4, day(2026, 11, 27)), None);
        let fixed = SlaCalendar {
            rules: LaneRules([DueRule::Days(7), DueRule::Days(30), DueRule::Days(90), DueRule::Days(180)]),
            ..c
        };
        assert_eq!(fixed.due(Lane::P1, day(2026, 11, 27)), Some(day(2026, 12, 4)));
        assert_eq!(fixed.due(Lane::P2, day(2026, 11, 27)), Some(day(2026, 12, 27)));
        assert_eq!(fixed.due(Lane::P4, day(2026, 11, 27)), Some(day(2027, 5, 26)));
        assert_eq!(fixed.due(Lane::Maintenance, day(2026, 11, 27)), None);
    }

    #[test]
    fn a_new_rule_rederives_the_date_from_the_same_day() {
        let c = calendar();
        let p2 = DueRecord::first(&c, Lane::P2, day(2026, 12, 1));
        assert_eq!(p2.date, Some(day(2027, 1, 1)));
        let fixed = SlaCalendar {
            rules: LaneRules([DueRule::Days(7), DueRule::Days(14), DueRule::Days(90), DueRule::None]),
            ..c
        };
        let moved = p2.next(&fixed, Lane::P2, day(2026, 12, 20));
        assert_eq!(
            (moved.date, moved.since, moved.due_lane),
            (Some(day(2026, 12, 15)), day(2026, 12, 1), Lane::P2)
        );
        // Unchanged rules: unchanged record.
        assert_eq!(moved.next(&fixed, Lane::P2, day(2026, 12, 21)), moved);
    }

    #[test]
    fn fixed_tightened_never_loosened() {
        let c = calendar();
        let first = DueRecord::first(&c, Lane::P4, day(2026, 11, 27));
        assert_eq!(first.date, None);
        // P4 → P2 a week later: a date appears.
        let p2 = first.next(&c, Lane::P2, day(2026, 12, 4));
        assert_eq!((p2.lane, p2.date, p2.since), (Lane::P2, Some(day(2027, 1, 4)), day(2026, 12, 4)));
        // Same lane again: nothing moves, even later.
        assert_eq!(p2.next(&c, Lane::P2, day(2026, 12, 20)), p2);
        // P2 → P3: the earlier date is kept and the record says so.
        let p3 = p2.next(&c, Lane::P3, day(2026, 12, 10));
        assert_eq!((p3.lane, p3.date, p3.kept_from), (Lane::P3, Some(day(2027, 1, 4)), Some(Lane::P2)));
        // P3 → P1: the next sprint is earlier, so tightened.
        let p1 = p3.next(&c, Lane::P1, day(2026, 12, 11));
        assert_eq!((p1.date, p1.kept_from), (Some(day(2027, 1, 3)), None));
    }

    proptest! {
        #[test]
        fn a_due_date_never_moves_later(
            start in 0i64..800,
            steps in proptest::collection::vec((0usize..4, 0i64..40), 1..12)
        ) {
            let c = calendar();
            let lanes = [Lane::P1, Lane::P2, Lane::P3, Lane::P4];
            let mut today = day(2026, 1, 1) + chrono::Duration::days(start);
            let mut record = DueRecord::first(&c, Lane::P3, today);
            for (lane, gap) in steps {
                today += chrono::Duration::days(gap);
                let next = record.next(&c, lanes[lane], today);
                if let (Some(old), Some(new)) = (record.date, next.date) {
                    prop_assert!(new <= old, "{old} loosened to {new}");
                }
                prop_assert!(record.date.is_none() || next.date.is_some(), "a date was dropped");
                prop_assert_eq!(next.lane, lanes[lane]);
                record = next;
            }
        }

        #[test]
        fn the_next_sprint_ends_after_at_least_one_full_sprint(offset in -1000i64..1000, length in 1u32..30) {
            let c = SlaCalendar { sprint_days: length, ..calendar() };
            let today = c.sprint_anchor + chrono::Duration::days(offset);
            let end = c.end_of_next_sprint(today).expect("a date in range");
            let days = (end - today).num_days();
            prop_assert!(days >= i64::from(length) && days < 2 * i64::from(length), "{days}");
            prop_assert_eq!((end - c.sprint_anchor).num_days().rem_euclid(i64::from(length)), i64::from(length) - 1);
        }
    }
}
