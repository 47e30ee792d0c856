//! Readiness of the parts of a service, shared with its `/readyz` endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A set of named components, each ready or not with a reason. The service is ready when every
/// registered component is.
#[derive(Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<String, Result<(), String>>>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component as not ready yet.
    pub fn register(&self, component: &str) {
        self.set(component, Err("starting".into()));
    }

    pub fn set_ready(&self, component: &str) {
        self.set(component, Ok(()));
    }

    pub fn set_unready(&self, component: &str, reason: impl Into<String>) {
        self.set(component, Err(reason.into()));
    }

    fn set(&self, component: &str, status: Result<(), String>) {
        let mut components = self.components.lock().expect("health lock poisoned");
        components.insert(component.to_owned(), status);
    }

    /// Ready when at least one component is registered and all are ready.
    pub fn is_ready(&self) -> bool {
        let components = self.components.lock().expect("health lock poisoned");
        !components.is_empty() && components.values().all(Result::is_ok)
    }

    /// `component: ok` or `component: reason`, one per line.
    pub fn report(&self) -> String {
        let components = self.components.lock().expect("health lock poisoned");
        components
            .iter()
            .map(|(name, status)| match status {
                Ok(()) => format!("{name}: ok"),
                Err(reason) => format!("{name}: {reason}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether one component is ready.
    pub fn component_ready(&self, component: &str) -> bool {
        let components = self.components.lock().expect("health lock poisoned");
        matches!(components.get(component), Some(Ok(())))
    }
}
