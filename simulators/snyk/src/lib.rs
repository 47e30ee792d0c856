//! A local Snyk REST API and webhook sender, in Snyk's shapes, for tests and the demo.
