//! Polls the Snyk REST API and receives Snyk webhooks; publishes one raw event per project snapshot.
