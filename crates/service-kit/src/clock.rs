//! Time, injected: services ask a [`Clock`] for "now", so tests move the clock instead of
//! waiting.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time. `Clock::system()` in production; `Clock::manual(..)` in tests.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockKind>,
}

enum ClockKind {
    System,
    Manual(Mutex<DateTime<Utc>>),
}

impl Clock {
    pub fn system() -> Self {
        Clock { inner: Arc::new(ClockKind::System) }
    }

    /// A clock that stands still at `start` until moved with [`Clock::set`] or
    /// [`Clock::advance`]. Clones share the same time.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Clock { inner: Arc::new(ClockKind::Manual(Mutex::new(start))) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            ClockKind::System => Utc::now(),
            ClockKind::Manual(time) => *time.lock().expect("clock lock"),
        }
    }

    /// Moves a manual clock to `time` (no effect on the system clock).
    pub fn set(&self, time: DateTime<Utc>) {
        if let ClockKind::Manual(current) = &*self.inner {
            *current.lock().expect("clock lock") = time;
        }
    }

    /// Moves a manual clock forward by `by` (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let ClockKind::Manual(current) = &*self.inner {
            let mut time = current.lock().expect("clock lock");
            *time += by;
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            ClockKind::System => f.write_str("Clock::system"),
            ClockKind::Manual(time) => write!(f, "Clock::manual({})", time.lock().expect("clock lock")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_move_only_when_told_and_clones_share_time() {
        let start = "2026-11-27T09:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(Duration::days(1));
        assert_eq!(clock.now(), start + Duration::days(1));
    }
}
