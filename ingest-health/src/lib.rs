//! Receives AWS Health events from SQS, an EventBridge API destination and the Health API; publishes raw events.
