//! A local Slack Web API and incoming webhooks, for tests and the demo.
