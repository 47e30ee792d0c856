//! Every intake's record of its last contact with its upstream: one [`SourceContact`] per
//! scope (a Snyk org, a queue, the Health API's Region, a webhook), kept in the
//! `source_contact` bucket for the notifier's silence check and exported as gauges for the
//! alert rules (`itk_source_last_success_timestamp_seconds` and friends).
//!
//! Recording never stops an intake: a record that cannot be written is counted and logged,
//! and the next contact writes it again. Each write merges with the stored record (another
//! replica's, or an earlier process's). Records are written when a scope turns failing or
//! healthy, on its first contact in this process, and otherwise at most once per
//! [`REFRESH`], so an SQS intake long-polling every 20 s costs one KV write a minute, not
//! three.

use std::collections::HashMap;
use std::sync::Arc;

use bus::JsonKv;
use bus::topology::SOURCE_CONTACT;
use chrono::{DateTime, Utc};
use contracts::{ContactFailure, ContactMode, Source, SourceContact};
use tokio::sync::Mutex;

use crate::Clock;

/// At most one write per scope per this interval, unless the scope turned failing or healthy.
pub const REFRESH: chrono::Duration = chrono::Duration::seconds(60);
/// Failure reasons are kept to this many characters.
const MAX_REASON: usize = 500;

/// One intake's contact records.
#[derive(Clone)]
pub struct ContactLog {
    inner: Arc<Inner>,
}

struct Inner {
    store: Option<JsonKv<SourceContact>>,
    source: Source,
    clock: Clock,
    scopes: Mutex<HashMap<String, Kept>>,
}

/// A scope's record as this process last knew it, and when it was last written.
struct Kept {
    record: SourceContact,
    written_at: Option<DateTime<Utc>>,
}

/// What happened to a scope.
enum Contact<'a> {
    Succeeded,
    Failed(&'a str),
    Received,
}

/// One scope of a [`ContactLog`].
#[derive(Clone)]
pub struct Scope {
    log: ContactLog,
    /// The record's key in the bucket and in this process's map.
    key: String,
    scope: String,
    mode: ContactMode,
    events_expected: bool,
}

impl ContactLog {
    /// Records kept in the topology's `source_contact` bucket.
    pub async fn open(
        js: &bus::async_nats::jetstream::Context,
        source: Source,
        clock: Clock,
    ) -> Result<Self, bus::BusError> {
        Ok(Self::with_store(Some(JsonKv::open(js, SOURCE_CONTACT).await?), source, clock))
    }

    /// Records kept in memory and gauges only (tools, tests without a bucket).
    pub fn in_memory(source: Source, clock: Clock) -> Self {
        Self::with_store(None, source, clock)
    }

    fn with_store(store: Option<JsonKv<SourceContact>>, source: Source, clock: Clock) -> Self {
        ContactLog { inner: Arc::new(Inner { store, source, clock, scopes: Mutex::new(HashMap::new()) }) }
    }

    /// The scope named `scope` (as people read it: `org <id>`, `sqs eu-west-1`).
    pub fn scope(&self, scope: &str, mode: ContactMode, events_expected: bool) -> Scope {
        let key = SourceContact::key(self.inner.source, scope);
        Scope { log: self.clone(), key, scope: scope.to_owned(), mode, events_expected }
    }

    /// The current record of a scope, as this process knows it.
    pub async fn record(&self, scope: &str) -> Option<SourceContact> {
        let key = SourceContact::key(self.inner.source, scope);
        self.inner.scopes.lock().await.get(&key).map(|kept| kept.record.clone())
    }
}

impl Scope {
    /// A call to the upstream succeeded (a page, a receive, a reconcile).
    pub async fn succeeded(&self) {
        self.note(Contact::Succeeded).await;
    }

    /// A call to the upstream failed, with why.
    pub async fn failed(&self, reason: &str) {
        self.note(Contact::Failed(reason)).await;
    }

    /// Events arrived (published or found already stored). For a pushed scope this is also its
    /// contact: the upstream reached us.
    pub async fn received(&self, events: usize) {
        if events > 0 {
            self.note(Contact::Received).await;
        }
    }

    async fn note(&self, contact: Contact<'_>) {
        let inner = &self.log.inner;
        let now = inner.clock.now();
        let mut scopes = inner.scopes.lock().await;
        // A scope new to this process starts from nothing: its first write merges in what an
        // earlier process or another replica recorded (first contact, last event).
        let kept = scopes.entry(self.key.clone()).or_insert_with(|| Kept {
            record: SourceContact::new(inner.source, &self.scope, self.mode, self.events_expected, now),
            written_at: None,
        });
        let was_failing = kept.record.failing();
        let record = &mut kept.record;
        record.scope.clone_from(&self.scope);
        record.mode = self.mode;
        record.events_expected = self.events_expected;
        record.updated_at = now;
        match contact {
            Contact::Succeeded => record.last_success_at = Some(now),
            Contact::Failed(reason) => {
                record.last_failure =
                    Some(ContactFailure { at: now, reason: reason.chars().take(MAX_REASON).collect() })
            }
            Contact::Received => {
                record.last_event_at = Some(now);
                if self.mode == ContactMode::Pushed {
                    record.last_success_at = Some(now);
                }
            }
        }
        let due = kept.written_at.is_none_or(|at| now - at >= REFRESH) || record.failing() != was_failing;
        if due && self.write(&mut kept.record).await {
            kept.written_at = Some(now);
        }
        self.export(&kept.record);
    }

    /// Writes `record` merged with what is stored: replicas of one intake (two SQS readers)
    /// write the same key, and each knows only its own calls. Compare-and-set, so that one
    /// replica's write never erases the other's success; the merged record becomes this
    /// process's view.
    async fn write(&self, record: &mut SourceContact) -> bool {
        let Some(store) = &self.log.inner.store else { return true };
        let key = self.key.as_str();
        let source = record.source.as_str();
        let failed = |error: &dyn std::fmt::Display| {
            metrics::counter!("itk_source_contact_write_failures_total", "source" => source).increment(1);
            tracing::warn!(key, %error, "Could not write the source's contact record; the next contact tries again.");
            false
        };
        for _ in 0..3 {
            let stored = match store.get(key).await {
                Ok(stored) => stored,
                Err(error) => return failed(&error),
            };
            let (value, revision) = match stored {
                Some(stored) => (merged(&stored.value, record), Some(stored.revision)),
                None => (record.clone(), None),
            };
            match store.write(key, &value, revision).await {
                Ok(_) => {
                    *record = value;
                    return true;
                }
                Err(bus::CasError::Conflict) => continue,
                Err(bus::CasError::Bus(error)) => return failed(&error),
            }
        }
        failed(&"another replica kept writing it")
    }

    fn export(&self, record: &SourceContact) {
        let source = record.source.as_str();
        let seconds = |at: Option<DateTime<Utc>>| at.map(|at| at.timestamp_millis() as f64 / 1000.0);
        if let Some(at) = seconds(record.last_success_at) {
            let mode = match record.mode {
                ContactMode::Polled => "polled",
                ContactMode::Pushed => "pushed",
            };
            metrics::gauge!("itk_source_last_success_timestamp_seconds",
                "source" => source, "scope" => self.scope.clone(), "mode" => mode)
            .set(at);
        }
        if let Some(at) = seconds(record.last_event_at) {
            metrics::gauge!("itk_source_last_event_timestamp_seconds", "source" => source, "scope" => self.scope.clone())
                .set(at);
        }
        metrics::gauge!("itk_source_failing", "source" => source, "scope" => self.scope.clone())
            .set(if record.failing() { 1.0 } else { 0.0 });
    }
}

/// The union of two views of one scope: the latest of each time, the earliest first contact,
/// the settings (mode, scope text) of the writer.
fn merged(stored: &SourceContact, mine: &SourceContact) -> SourceContact {
    let last_failure =
        [&stored.last_failure, &mine.last_failure].into_iter().flatten().max_by_key(|f| f.at).cloned();
    SourceContact {
        first_seen_at: stored.first_seen_at.min(mine.first_seen_at),
        updated_at: stored.updated_at.max(mine.updated_at),
        last_success_at: stored.last_success_at.max(mine.last_success_at),
        last_event_at: stored.last_event_at.max(mine.last_event_at),
        last_failure,
        ..mine.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn a_scope_keeps_its_first_contact_last_success_and_last_failure() {
        let clock = Clock::manual(at("2026-12-01T09:00:00Z"));
        let log = ContactLog::in_memory(Source::Snyk, clock.clone());
        let org = log.scope("org 1", ContactMode::Polled, false);
        org.failed("Snyk answered 401").await;
        clock.advance(chrono::Duration::minutes(10));
        org.succeeded().await;
        org.received(0).await;
        let record = log.record("org 1").await.unwrap();
        assert_eq!(record.first_seen_at, at("2026-12-01T09:00:00Z"));
        assert_eq!(record.last_success_at, Some(at("2026-12-01T09:10:00Z")));
        assert_eq!(record.last_event_at, None, "no event arrived");
        assert!(!record.failing());
        assert_eq!(record.last_failure.unwrap().reason, "Snyk answered 401");
    }

    #[test]
    fn two_replicas_views_merge_into_the_latest_of_each() {
        let mut failing = SourceContact::new(
            Source::AwsHealth,
            "sqs eu-west-1",
            ContactMode::Polled,
            true,
            at("2026-12-01T08:00:00Z"),
        );
        failing.last_success_at = Some(at("2026-12-01T08:00:00Z"));
        failing.last_failure =
            Some(ContactFailure { at: at("2026-12-01T09:00:00Z"), reason: "AccessDenied".into() });
        let mut working = failing.clone();
        working.first_seen_at = at("2026-12-01T08:30:00Z");
        working.last_success_at = Some(at("2026-12-01T09:05:00Z"));
        working.last_event_at = Some(at("2026-12-01T09:04:00Z"));
        working.last_failure = None;
        for record in [merged(&failing, &working), merged(&working, &failing)] {
            assert_eq!(record.first_seen_at, at("2026-12-01T08:00:00Z"));
            assert_eq!(record.last_success_at, Some(at("2026-12-01T09:05:00Z")));
            assert_eq!(record.last_event_at, Some(at("2026-12-01T09:04:00Z")));
            assert_eq!(record.last_failure.as_ref().unwrap().reason, "AccessDenied");
            assert!(!record.failing(), "the other replica's later success counts");
        }
    }

    #[tokio::test]
    async fn events_are_a_pushed_scopes_contact() {
        let clock = Clock::manual(at("2026-12-01T09:00:00Z"));
        let log = ContactLog::in_memory(Source::AwsHealth, clock);
        log.scope("webhook", ContactMode::Pushed, true).received(2).await;
        let record = log.record("webhook").await.unwrap();
        assert_eq!(record.last_success_at, record.last_event_at);
        assert!(record.last_event_at.is_some());
    }
}
