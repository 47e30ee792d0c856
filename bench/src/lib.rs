//! The end-to-end benchmark of the whole pipeline (see docs/benchmarks.md).
