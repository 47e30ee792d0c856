//! Reconciles desired ticket states with JIRA Cloud: exactly one ticket per group key.
