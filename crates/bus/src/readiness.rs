//! Readiness of the parts of a service, shared with its `/readyz` endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The state of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    /// Working, but part of it is not (one of several Snyk orgs refused the token): the service
    /// stays ready, and `/readyz` says what is wrong.
    Degraded(String),
    Unready(String),
}

/// A set of named components, each ready, degraded or not ready with a reason. The service is
/// ready when every registered component is ready or degraded.
#[derive(Clone, Default)]
pub struct Readiness {
    components: Arc<Mutex<BTreeMap<String, State>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component as not ready yet.
    pub fn register(&self, component: &str) {
        self.set(component, State::Unready("starting".into()));
    }

    pub fn set_ready(&self, component: &str) {
        self.set(component, State::Ready);
    }

    pub fn set_unready(&self, component: &str, reason: impl Into<String>) {
        self.set(component, State::Unready(reason.into()));
    }

    /// Ready, with a part of the component not working (`detail` says which and why).
    pub fn set_degraded(&self, component: &str, detail: impl Into<String>) {
        self.set(component, State::Degraded(detail.into()));
    }

    fn set(&self, component: &str, status: State) {
        let mut components = self.components.lock().expect("health lock poisoned");
        components.insert(component.to_owned(), status);
    }

    /// Ready when at least one component is registered and none is unready (a degraded one
    /// still works).
    pub fn is_ready(&self) -> bool {
        let components = self.components.lock().expect("health lock poisoned");
        !components.is_empty() && components.values().all(|s| !matches!(s, State::Unready(_)))
    }

    /// Whether a component is degraded.
    pub fn is_degraded(&self) -> bool {
        let components = self.components.lock().expect("health lock poisoned");
        components.values().any(|s| matches!(s, State::Degraded(_)))
    }

    /// `component: ok`, `component: degraded: detail` or `component: reason`, one per line.
    pub fn report(&self) -> String {
        let components = self.components.lock().expect("health lock poisoned");
        components
            .iter()
            .map(|(name, status)| match status {
                State::Ready => format!("{name}: ok"),
                State::Degraded(detail) => format!("{name}: degraded: {detail}"),
                State::Unready(reason) => format!("{name}: {reason}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether one component is ready (degraded counts: it works).
    pub fn component_ready(&self, component: &str) -> bool {
        let components = self.components.lock().expect("health lock poisoned");
        matches!(components.get(component), Some(State::Ready | State::Degraded(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degraded_component_is_ready_and_says_why() {
        let health = Readiness::new();
        health.register("nats");
        health.register("snyk api");
        health.set_ready("nats");
        assert!(!health.is_ready());
        health.set_degraded("snyk api", "org o-2 refused the token (403)");
        assert!(health.is_ready() && health.is_degraded() && health.component_ready("snyk api"));
        assert_eq!(health.report(), "nats: ok\nsnyk api: degraded: org o-2 refused the token (403)");
        health.set_ready("snyk api");
        assert!(health.is_ready() && !health.is_degraded());
        health.set_unready("snyk api", "every org refused");
        assert!(!health.is_ready() && !health.component_ready("snyk api"));
    }
}
