//! The operator CLI of infra-tickets, as a library so tests run its commands in-process.

pub mod doctor;
pub mod explain;
pub mod operate;
pub mod probe;
pub mod replay;
