//! What the AWS Health policy tickets, as flags (`--health-…`) and environment variables
//! (`HEALTH_…`). triage flattens these into its config.

use std::sync::OnceLock;

use catalog::Pattern;
use regex::Regex;

use crate::event::{Category, HealthEvent};

/// Settings of the AWS Health policy.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct HealthSettings {
    /// Event categories that are ticketed (issue and investigation are service incidents, not
    /// work with a deadline).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "health-event-categories",
            long = "health-event-categories",
            env = "HEALTH_EVENT_CATEGORIES",
            value_enum,
            value_delimiter = ',',
            default_value = "scheduledChange,accountNotification"
        )
    )]
    pub event_categories: Vec<Category>,

    /// Ticket public events (eventScopeCode PUBLIC) too; they concern a whole Region, not your
    /// resources.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "health-ticket-public-events",
            long = "health-ticket-public-events",
            env = "HEALTH_TICKET_PUBLIC_EVENTS",
            default_value_t = false
        )
    )]
    pub ticket_public_events: bool,

    /// Ticket notices whose `actionability` is INFORMATIONAL too; by default they are not: they
    /// ask nothing of the team.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "health-ticket-informational",
            long = "health-ticket-informational",
            env = "HEALTH_TICKET_INFORMATIONAL",
            default_value_t = false
        )
    )]
    pub ticket_informational: bool,

    /// Event type codes that are ticketed, as globs (`AWS_EC2_*`); none means all.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "health-allow-event-types",
            long = "health-allow-event-types",
            env = "HEALTH_ALLOW_EVENT_TYPES",
            value_delimiter = ',',
            default_value = ""
        )
    )]
    pub allow_event_types: Vec<String>,

    /// Event type codes that are never ticketed, as globs. Reserved Instance and billing notices
    /// are never ticketed whatever this says.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "health-deny-event-types",
            long = "health-deny-event-types",
            env = "HEALTH_DENY_EVENT_TYPES",
            value_delimiter = ',',
            default_value = ""
        )
    )]
    pub deny_event_types: Vec<String>,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            event_categories: vec![Category::ScheduledChange, Category::AccountNotification],
            ticket_public_events: false,
            ticket_informational: false,
            allow_event_types: Vec::new(),
            deny_event_types: Vec::new(),
        }
    }
}

/// Parts of the codes of notices about money, not work: Reserved Instances, Savings Plans,
/// reserved nodes, capacity-reservation utilisation, billing. Plain substrings: this runs for
/// every event, twice, and compiling globs there cost a tenth of the triage's time.
const MONEY_NOTICES: &[&str] = &[
    "RESERVED_INSTANCE",
    "RESERVED_NODE",
    "RESERVED_CACHE_NODE",
    "RESERVED_DB",
    "_RI_",
    "RESERVATION",
    "ODCR",
    "UNDERUTILI",
    "SAVINGS_PLAN",
    "SAVINGSPLAN",
    "BILLING",
    "_INVOICE",
    "PAYMENT",
];

/// Whether the text is about a reservation or a bill rather than work on resources: a
/// reservation or plan that expires, renews or is under-used, or an invoice. A notice that only
/// mentions Reserved Instances in passing (an instance family's retirement says new ones can no
/// longer be bought) is not: the reservation must be the clause's subject.
fn money_text(description: &str) -> bool {
    // A cheap literal search first: nearly every notice has none of these words.
    static WORDS: OnceLock<Regex> = OnceLock::new();
    let words = WORDS.get_or_init(|| {
        Regex::new(r"(?i)reserv|savings|invoice|\bbill|payment|\bris?\b").expect("valid money words")
    });
    if !words.is_match(description) {
        return false;
    }
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:your|the|these|this|following)\s+(?:(?:amazon|aws|ec2|rds|elasticache|redshift|opensearch|elasticsearch|memorydb|dynamodb|compute|instance|ec2 instance|service)\s+)*(?:reserved\s+(?:instances?|nodes?|cache\s+nodes?|db\s+instances?|capacity)|savings\s+plans?|capacity\s+reservations?|ris?\b)[^.]{0,120}?\b(?:expir|renew|will\s+end|term\s+ends|utili[sz]|underutili[sz]|unused|under-?used)|\b(?:your|the)\s+(?:aws\s+)?(?:invoice|bill|payment)\b[^.]{0,80}?\b(?:due|overdue|failed|declined|available)",
        )
        .expect("valid money pattern")
    });
    pattern.is_match(description)
}

impl HealthSettings {
    /// Why `event` is not ticketed, or `None` when it is.
    pub fn exclusion(&self, event: &HealthEvent) -> Option<String> {
        let code = event.event_type_code.as_str();
        if event.service.eq_ignore_ascii_case("BILLING")
            || MONEY_NOTICES.iter().any(|part| code.contains(part))
        {
            return Some(format!("{code} is a Reserved Instance or billing notice"));
        }
        if money_text(&event.description) {
            return Some(format!(
                "{code} is a Reserved Instance, Savings Plans, reserved node or billing notice (by its text)"
            ));
        }
        if !self.event_categories.contains(&event.category) {
            return Some(format!(
                "category {} is not ticketed (--health-event-categories)",
                event.category.as_str()
            ));
        }
        if event.scope.eq_ignore_ascii_case("PUBLIC") && !self.ticket_public_events {
            return Some("public events are not ticketed (--health-ticket-public-events)".into());
        }
        if event.scope.eq_ignore_ascii_case("NONE") {
            return Some("eventScopeCode NONE: the event concerns no account's resources".into());
        }
        if !self.ticket_informational
            && event.actionability.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("INFORMATIONAL"))
        {
            return Some(
                "actionability INFORMATIONAL asks nothing of the team (--health-ticket-informational)".into(),
            );
        }
        let globs = |list: &[String]| -> Vec<Pattern> {
            list.iter().map(|g| g.trim()).filter(|g| !g.is_empty()).map(Pattern::new).collect()
        };
        let allow = globs(&self.allow_event_types);
        if !allow.is_empty() && !allow.iter().any(|glob| glob.matches(code)) {
            return Some(format!("{code} is not in --health-allow-event-types"));
        }
        if globs(&self.deny_event_types).iter().any(|glob| glob.matches(code)) {
            return Some(format!("{code} is in --health-deny-event-types"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        health: HealthSettings,
    }

    fn event(code: &str, category: &str, scope: &str) -> HealthEvent {
        let mut payload = crate::samples::retirement();
        crate::samples::set(&mut payload, "eventTypeCode", code);
        crate::samples::set(&mut payload, "eventTypeCategory", category);
        crate::samples::set(&mut payload, "eventScopeCode", scope);
        HealthEvent::from_payload(&payload).unwrap()
    }

    #[test]
    fn defaults_match_default_impl_and_filter_as_documented() {
        let parsed = Cli::parse_from(["x"]).health;
        assert_eq!(parsed.event_categories, HealthSettings::default().event_categories);
        let settings = HealthSettings::default();
        assert_eq!(
            settings.exclusion(&event(
                "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
                "scheduledChange",
                "ACCOUNT_SPECIFIC"
            )),
            None
        );
        assert_eq!(
            parsed.exclusion(&event(
                "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
                "scheduledChange",
                "ACCOUNT_SPECIFIC"
            )),
            None
        );
        assert!(
            settings.exclusion(&event("AWS_EC2_OPERATIONAL_ISSUE", "issue", "ACCOUNT_SPECIFIC")).is_some()
        );
        assert!(settings.exclusion(&event("AWS_EC2_X", "investigation", "ACCOUNT_SPECIFIC")).is_some());
        assert!(
            settings.exclusion(&event("AWS_EC2_X", "scheduledChange", "PUBLIC")).unwrap().contains("public")
        );
        let ri = settings.exclusion(&event(
            "AWS_EC2_RESERVED_INSTANCE_EXPIRATION_NOTICE",
            "accountNotification",
            "ACCOUNT_SPECIFIC",
        ));
        assert!(ri.unwrap().contains("Reserved Instance"));
        assert!(
            settings
                .exclusion(&event("AWS_BILLING_NOTIFICATION", "accountNotification", "ACCOUNT_SPECIFIC"))
                .is_some()
        );
    }

    #[test]
    fn allow_and_deny_lists_by_event_type_code() {
        let cli = Cli::parse_from([
            "x",
            "--health-allow-event-types",
            "AWS_EC2_*,AWS_RDS_*",
            "--health-deny-event-types",
            "AWS_EC2_INSTANCE_STOP_SCHEDULED",
            "--health-event-categories",
            "scheduledChange,issue",
            "--health-ticket-public-events",
        ]);
        let settings = cli.health;
        assert!(settings.exclusion(&event("AWS_EC2_X_SCHEDULED", "scheduledChange", "PUBLIC")).is_none());
        assert!(settings.exclusion(&event("AWS_EC2_X", "issue", "ACCOUNT_SPECIFIC")).is_none());
        assert!(settings.exclusion(&event("AWS_LAMBDA_X", "scheduledChange", "ACCOUNT_SPECIFIC")).is_some());
        assert!(
            settings
                .exclusion(&event("AWS_EC2_INSTANCE_STOP_SCHEDULED", "scheduledChange", "ACCOUNT_SPECIFIC"))
                .is_some()
        );
        assert!(settings.exclusion(&event("AWS_RDS_X", "accountNotification", "ACCOUNT_SPECIFIC")).is_some());
        assert!(Cli::try_parse_from(["x", "--health-event-categories", "scheduledchanges"]).is_err());
    }
}
