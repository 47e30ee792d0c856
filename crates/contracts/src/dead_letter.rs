//! Dead letters: the original message, untouched, plus headers that say why.
//!
//! A dead letter is published on `dlq.<stage>` with the original payload and the original
//! headers, and these headers added. Redriving one republishes payload and original headers to
//! [`ORIGINAL_SUBJECT`].

/// Why the message was given up on.
pub const REASON: &str = "Itk-Dead-Reason";
/// The stage (service) that gave up.
pub const STAGE: &str = "Itk-Dead-Stage";
/// The class of error: `permanent` or `exhausted`.
pub const ERROR_CLASS: &str = "Itk-Dead-Class";
/// How many times it had been delivered.
pub const DELIVERY_COUNT: &str = "Itk-Dead-Deliveries";
/// The subject it was published on.
pub const ORIGINAL_SUBJECT: &str = "Itk-Original-Subject";
/// The stream and sequence it was stored at.
pub const ORIGINAL_STREAM: &str = "Itk-Original-Stream";
pub const ORIGINAL_SEQUENCE: &str = "Itk-Original-Sequence";
/// When it was dead-lettered (RFC 3339).
pub const DEAD_AT: &str = "Itk-Dead-At";

/// Every header this module adds; a redrive strips them.
pub const ALL: [&str; 8] = [
    REASON,
    STAGE,
    ERROR_CLASS,
    DELIVERY_COUNT,
    ORIGINAL_SUBJECT,
    ORIGINAL_STREAM,
    ORIGINAL_SEQUENCE,
    DEAD_AT,
];
