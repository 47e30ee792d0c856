//! Snyk triage policy: grouping by target, qualifying findings, exposure, exploit maturity, lane and due date. Pure, no I/O.
