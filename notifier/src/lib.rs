//! Tells teams in Slack about new and moved tickets, and reminds them 14 and 5 days before the due date.
