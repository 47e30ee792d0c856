//! A local JIRA Cloud REST v3, checked against the official OpenAPI spec, for tests and the demo.
