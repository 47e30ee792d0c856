//! Temporary: the end-to-end file of tests/, built here while the tests crate's other
//! dependencies are mid-edit.
#[path = "../../tests/tests/notifier.rs"]
mod notifier_e2e;
