//! The chaos suite (see docs/reliability.md).
