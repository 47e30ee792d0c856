//! AWS Health triage policy: event identity, pages, owners, due dates from windows and text. Pure, no I/O.
