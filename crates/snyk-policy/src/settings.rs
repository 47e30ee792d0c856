//! The Snyk policy's settings, flattened into triage's config (and the CLI's `explain`).

use chrono::NaiveDate;

use crate::due::SlaCalendar;
use crate::exposure::Exposure;
use crate::severity::Severity;

/// How Snyk findings are triaged. Every flag starts with `--snyk-` and has a `SNYK_…`
/// environment variable and a default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct SnykSettings {
    /// Lowest effective severity that counts (qualifying findings are at or above it).
    #[cfg_attr(feature = "clap", arg(long = "snyk-severity-floor", env = "SNYK_SEVERITY_FLOOR", value_enum, default_value_t = Severity::Critical))]
    pub severity_floor: Severity,

    /// Whether a CVSSv3 `Functional` exploit counts as mature (as `High` and CVSSv4
    /// `Attacked` do).
    #[cfg_attr(feature = "clap", arg(long = "snyk-functional-is-mature", env = "SNYK_FUNCTIONAL_IS_MATURE", default_value_t = true,
          action = clap::ArgAction::Set))]
    pub functional_is_mature: bool,

    /// Exposure assumed for a group none of whose projects says `external` or `internal`
    /// (and the catalog does not override); the ticket says it was assumed.
    #[cfg_attr(feature = "clap", arg(long = "snyk-unknown-exposure", env = "SNYK_UNKNOWN_EXPOSURE", value_enum,
          default_value_t = Exposure::InternetFacing))]
    pub unknown_exposure: Exposure,

    /// First day of any sprint (YYYY-MM-DD); sprints tile the calendar from it.
    #[cfg_attr(
        feature = "clap",
        arg(long = "snyk-sprint-anchor", env = "SNYK_SPRINT_ANCHOR", default_value = "2026-01-05")
    )]
    pub sprint_anchor: NaiveDate,

    /// Sprint length in days (P1 is due at the end of the next sprint).
    #[cfg_attr(feature = "clap", arg(long = "snyk-sprint-days", env = "SNYK_SPRINT_DAYS", default_value_t = 14,
          value_parser = clap::value_parser!(u32).range(1..=90)))]
    pub sprint_days: u32,

    /// Months a P2 group has (from when it first qualified).
    #[cfg_attr(feature = "clap", arg(long = "snyk-p2-months", env = "SNYK_P2_MONTHS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=24)))]
    pub p2_months: u32,

    /// Months a P3 group has.
    #[cfg_attr(feature = "clap", arg(long = "snyk-p3-months", env = "SNYK_P3_MONTHS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=36)))]
    pub p3_months: u32,

    /// Which origins are ticketed: container registries, GitHub, other source control (GitLab,
    /// Bitbucket, Azure Repos), the CLI and API. Projects of the others are logged with the
    /// reason and counted as ignored.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "snyk-ticketed-origins",
            env = "SNYK_TICKETED_ORIGINS",
            value_enum,
            value_delimiter = ',',
            default_value = "container,github,scm,cli"
        )
    )]
    pub ticketed_origins: Vec<crate::grouping::OriginClass>,

    /// Whether a finding below the severity floor still qualifies when CISA KEV lists its CVE
    /// (a policy profile's `kev.below_floor` overrides it).
    #[cfg_attr(feature = "clap", arg(long = "snyk-kev-below-floor", env = "SNYK_KEV_BELOW_FLOOR", default_value_t = false,
          action = clap::ArgAction::Set))]
    pub kev_below_floor: bool,

    /// EPSS score (0 to 1] at or above which a finding's exploit counts as mature, when EPSS
    /// scores are loaded (a policy profile's `epss.threshold` overrides it).
    #[cfg_attr(
        feature = "clap",
        arg(long = "snyk-epss-threshold", env = "SNYK_EPSS_THRESHOLD", default_value = "0.5")
    )]
    pub epss_threshold: Probability,

    /// Base URL of the Snyk web app, for links in tickets.
    #[cfg_attr(
        feature = "clap",
        arg(long = "snyk-app-url", env = "SNYK_APP_URL", default_value = "https://app.snyk.io")
    )]
    pub app_url: String,
}

impl Default for SnykSettings {
    fn default() -> Self {
        SnykSettings {
            severity_floor: Severity::Critical,
            functional_is_mature: true,
            unknown_exposure: Exposure::InternetFacing,
            sprint_anchor: NaiveDate::from_ymd_opt(2026, 1, 5).expect("a valid date"),
            sprint_days: 14,
            p2_months: 1,
            p3_months: 3,
            app_url: "https://app.snyk.io".into(),
            kev_below_floor: false,
            epss_threshold: Probability(0.5),
            ticketed_origins: vec![
                crate::grouping::OriginClass::Container,
                crate::grouping::OriginClass::Github,
                crate::grouping::OriginClass::Scm,
                crate::grouping::OriginClass::Cli,
            ],
        }
    }
}

/// A probability in (0, 1], as a flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probability(pub f32);

// Only values in (0, 1] are constructed (from_str checks; the default is 0.5): no NaN.
impl Eq for Probability {}

impl std::str::FromStr for Probability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let value: f32 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
        if value > 0.0 && value <= 1.0 {
            Ok(Probability(value))
        } else {
            Err(format!("{s} is not above 0 and at most 1"))
        }
    }
}

impl std::fmt::Display for Probability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl SnykSettings {
    pub fn calendar(&self) -> SlaCalendar {
        SlaCalendar {
            sprint_anchor: self.sprint_anchor,
            sprint_days: self.sprint_days,
            rules: crate::due::LaneRules::seed(self.p2_months, self.p3_months),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        snyk: SnykSettings,
    }

    #[test]
    fn defaults_match_the_flag_defaults_and_flags_parse() {
        let parsed = Wrapper::parse_from(["x"]);
        assert_eq!(parsed.snyk, SnykSettings::default());
        let parsed = Wrapper::parse_from([
            "x",
            "--snyk-severity-floor",
            "high",
            "--snyk-functional-is-mature",
            "false",
            "--snyk-unknown-exposure",
            "internal",
            "--snyk-sprint-anchor",
            "2026-02-02",
        ]);
        assert_eq!(parsed.snyk.severity_floor, Severity::High);
        assert!(!parsed.snyk.functional_is_mature);
        assert_eq!(parsed.snyk.unknown_exposure, Exposure::Internal);
        let err = Wrapper::try_parse_from(["x", "--snyk-sprint-anchor", "soon"]).unwrap_err();
        assert!(err.to_string().contains("--snyk-sprint-anchor"), "{err}");
    }
}
