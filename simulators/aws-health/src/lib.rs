//! A local AWS Health API (AWS JSON 1.1) for tests and the demo.
