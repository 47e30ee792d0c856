//! How triage turns raw events into desired tickets, independent of NATS.
//!
//! A source policy (Snyk, AWS Health) implements [`Policy`]: it says which group state an event
//! belongs to, folds the event into that state, and derives from the state the desired tickets
//! it implies. Policies are pure (no I/O, time passed in), so they are tested without a network
//! and reused by `explain`.
//!
//! The triage service keeps each state in a key-value bucket and publishes a desired ticket only
//! when its content hash differs from the one last published for it. [`InMemoryTriage`] does the
//! same in memory.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use contracts::{DesiredTicket, RawEvent};
use serde::{Serialize, de::DeserializeOwned};

/// Why a policy could not use an event.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The payload is not what its kind promises: it will never be usable (dead letter).
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// The event is well-formed but nothing to ticket (filtered event types, Reserved Instance
    /// notices…): acknowledged and dropped.
    #[error("not ticketed: {0}")]
    Ignored(String),
}

impl PolicyError {
    pub fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        PolicyError::Malformed { what, reason: reason.into() }
    }
}

/// A source policy.
pub trait Policy: Send + Sync + 'static {
    /// Everything the policy remembers about one group (stored as JSON between events).
    type State: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static;

    /// The key of the state this event belongs to; a valid key-value key
    /// (`[-/_=.a-zA-Z0-9]+`, use [`state_key`] to build one).
    fn state_key(&self, event: &RawEvent) -> Result<String, PolicyError>;

    /// Folds the event into the state. Must be idempotent: applying the same event twice
    /// leaves the state as applying it once; an older event than the state has seen changes
    /// nothing.
    fn apply(&self, state: &mut Self::State, event: &RawEvent, now: DateTime<Utc>)
    -> Result<(), PolicyError>;

    /// Every desired ticket the state implies now, sealed (content hash set), with
    /// `upstream_version` left at 0 (triage sets it). A ticket that was implied before and no
    /// longer is must still be returned, resolved, so its JIRA ticket is resolved.
    fn desired(&self, state: &Self::State, now: DateTime<Utc>) -> Vec<DesiredTicket>;
}

/// A key-value-safe key from readable parts: `<prefix>.<hash of the parts>`.
pub fn state_key(prefix: &str, parts: &[&str]) -> String {
    let key = contracts::GroupKey::from_raw(parts.join("\u{1f}"));
    format!("{prefix}.{}", key.token())
}

/// The state as triage stores it: the policy's state plus what was last published per ticket.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StoredState<S> {
    pub state: S,
    /// Group key token → content hash last published.
    #[serde(default)]
    pub published: BTreeMap<String, String>,
}

impl<S> StoredState<S> {
    /// The tickets whose content differs from what was last published.
    pub fn changed<'a>(&self, desired: &'a [DesiredTicket]) -> Vec<&'a DesiredTicket> {
        desired
            .iter()
            .filter(|ticket| self.published.get(&ticket.group_key.token()) != Some(&ticket.content_hash))
            .collect()
    }

    pub fn mark_published(&mut self, ticket: &DesiredTicket) {
        self.published.insert(ticket.group_key.token(), ticket.content_hash.clone());
    }
}

/// What triage stores per group: the policy's state, the content last published per ticket, and
/// tickets written but not yet known to be published. The triage service writes it; replay's
/// `--diff` reads it (the layout lives here so neither depends on the other).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(bound = "S: Serialize + DeserializeOwned + Default")]
pub struct GroupRecord<S> {
    #[serde(flatten)]
    pub stored: StoredState<S>,
    #[serde(default)]
    pub pending: Vec<DesiredTicket>,
}

impl<S: Default> Default for GroupRecord<S> {
    fn default() -> Self {
        GroupRecord { stored: StoredState::default(), pending: Vec::new() }
    }
}

/// The one fold: applies `event` to the group's state, derives the desired tickets, and returns
/// those whose content differs from what was last published, marking them published. The triage
/// service, replay's `--diff`, `explain`, the benchmarks and [`InMemoryTriage`] all fold through
/// here; they differ only in where the state is kept.
pub fn fold<P: Policy>(
    policy: &P,
    stored: &mut StoredState<P::State>,
    event: &RawEvent,
    now: DateTime<Utc>,
) -> Result<Vec<DesiredTicket>, PolicyError> {
    policy.apply(&mut stored.state, event, now)?;
    let desired = policy.desired(&stored.state, now);
    let changed: Vec<DesiredTicket> = stored.changed(&desired).into_iter().cloned().collect();
    for ticket in &changed {
        stored.mark_published(ticket);
    }
    Ok(changed)
}

/// Triage in memory: the same folding and change detection as the service, for `explain`,
/// tests and benchmarks.
pub struct InMemoryTriage<P: Policy> {
    policy: P,
    states: BTreeMap<String, StoredState<P::State>>,
    version: u64,
    latest: BTreeMap<String, DesiredTicket>,
}

impl<P: Policy> InMemoryTriage<P> {
    pub fn new(policy: P) -> Self {
        InMemoryTriage { policy, states: BTreeMap::new(), version: 0, latest: BTreeMap::new() }
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The group states by state key (`explain --why` reads the rule behind each due date).
    pub fn states(&self) -> impl Iterator<Item = (&str, &P::State)> {
        self.states.iter().map(|(key, stored)| (key.as_str(), &stored.state))
    }

    /// Applies one event; returns the desired tickets it changed (what triage would publish).
    pub fn apply(&mut self, event: &RawEvent, now: DateTime<Utc>) -> Result<Vec<DesiredTicket>, PolicyError> {
        let key = self.policy.state_key(event)?;
        let stored = self.states.entry(key).or_default();
        let changed = fold(&self.policy, stored, event, now)?;
        let mut published = Vec::with_capacity(changed.len());
        for mut ticket in changed {
            self.version += 1;
            ticket.upstream_version = self.version;
            self.latest.insert(ticket.group_key.token(), ticket.clone());
            published.push(ticket);
        }
        Ok(published)
    }

    /// The latest desired ticket per group key, ordered by group key.
    pub fn tickets(&self) -> Vec<&DesiredTicket> {
        let mut tickets: Vec<&DesiredTicket> = self.latest.values().collect();
        tickets.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        tickets
    }
}
