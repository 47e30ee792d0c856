//! The operator CLI: explain, replay, dead letters, topology, demo.
