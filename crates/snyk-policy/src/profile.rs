//! Policy profiles: the lanes and their due rules, and whether CISA KEV and EPSS count, as data
//! in one validated TOML file.
//!
//! ```toml
//! name = "fixed-days"               # shown by `explain --why` and on tickets
//!
//! [lanes]                           # exposure × exploit maturity → lane (the seed's matrix)
//! internet_facing_mature = "P1"
//! internet_facing_other = "P3"
//! internal_mature = "P2"
//! internal_other = "P4"
//!
//! [due]                             # per lane: "next sprint", "N days", "N months" or "none"
//! P1 = "7 days"
//! P2 = "30 days"
//! P3 = "90 days"
//! P4 = "none"
//!
//! [kev]
//! enabled = true                    # a listed CVE is a mature exploit, its dueDate a deadline
//! below_floor = false               # a listed finding below the severity floor still counts
//!
//! [epss]
//! enabled = true
//! threshold = 0.5                   # a score at or above it is a mature exploit
//! ```
//!
//! Every section and key is optional; what is left out is the seed's (the `--snyk-…` settings).
//! Unknown keys, lanes other than P1–P4, a matrix in which more exposure or a mature exploit
//! would make a lane less urgent, day counts outside 1–730, month counts outside 1–36 and a
//! threshold outside (0, 1] are refused with the key named. Pure: the caller reads the file.

use contracts::Lane;
use serde::Deserialize;

use crate::due::{DueRule, LaneRules};
use crate::exposure::Exposure;
use crate::settings::SnykSettings;

/// The lane of each cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matrix {
    pub internet_facing_mature: Lane,
    pub internet_facing_other: Lane,
    pub internal_mature: Lane,
    pub internal_other: Lane,
}

impl Matrix {
    pub const SEED: Matrix = Matrix {
        internet_facing_mature: Lane::P1,
        internet_facing_other: Lane::P3,
        internal_mature: Lane::P2,
        internal_other: Lane::P4,
    };

    pub fn lane(&self, exposure: Exposure, mature: bool) -> Lane {
        match (exposure, mature) {
            (Exposure::InternetFacing, true) => self.internet_facing_mature,
            (Exposure::InternetFacing, false) => self.internet_facing_other,
            (Exposure::Internal, true) => self.internal_mature,
            (Exposure::Internal, false) => self.internal_other,
        }
    }
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub matrix: Matrix,
    pub due: LaneRules,
    pub kev_enabled: bool,
    pub kev_below_floor: bool,
    pub epss_enabled: bool,
    pub epss_threshold: f32,
}

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("the policy profile is not valid TOML for a profile: {0}")]
    Syntax(String),
    #[error("policy profile: {key} = {value:?}: {why}")]
    Invalid { key: String, value: String, why: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    #[serde(default)]
    lanes: LanesFile,
    #[serde(default)]
    due: DueFile,
    #[serde(default)]
    kev: KevFile,
    #[serde(default)]
    epss: EpssFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LanesFile {
    internet_facing_mature: Option<String>,
    internet_facing_other: Option<String>,
    internal_mature: Option<String>,
    internal_other: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DueFile {
    #[serde(rename = "P1")]
    p1: Option<String>,
    #[serde(rename = "P2")]
    p2: Option<String>,
    #[serde(rename = "P3")]
    p3: Option<String>,
    #[serde(rename = "P4")]
    p4: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KevFile {
    enabled: Option<bool>,
    below_floor: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EpssFile {
    enabled: Option<bool>,
    threshold: Option<f64>,
}

fn invalid(key: &str, value: &str, why: &str) -> ProfileError {
    ProfileError::Invalid { key: key.into(), value: value.chars().take(60).collect(), why: why.into() }
}

fn ticket_lane(key: &str, raw: &str) -> Result<Lane, ProfileError> {
    match raw.trim().parse::<Lane>() {
        Ok(lane @ (Lane::P1 | Lane::P2 | Lane::P3 | Lane::P4)) => Ok(lane),
        _ => Err(invalid(key, raw, "a lane is P1, P2, P3 or P4")),
    }
}

/// `next sprint`, `N days`, `N months`, `none`.
pub fn parse_rule(key: &str, raw: &str) -> Result<DueRule, ProfileError> {
    let text = raw.trim().to_ascii_lowercase().replace('-', " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["next", "sprint"] => Ok(DueRule::NextSprint),
        ["none"] => Ok(DueRule::None),
        [count, unit] => {
            let n: u32 = count.parse().map_err(|_| invalid(key, raw, "the count is not a whole number"))?;
            match *unit {
                "day" | "days" if (1..=730).contains(&n) => Ok(DueRule::Days(n)),
                "day" | "days" => Err(invalid(key, raw, "days are 1 to 730")),
                "month" | "months" if (1..=36).contains(&n) => Ok(DueRule::Months(n)),
                "month" | "months" => Err(invalid(key, raw, "months are 1 to 36")),
                _ => Err(invalid(key, raw, "the unit is days or months")),
            }
        }
        _ => Err(invalid(key, raw, "a due rule is \"next sprint\", \"N days\", \"N months\" or \"none\"")),
    }
}

impl Profile {
    /// The seed's policy, as the `--snyk-…` settings configure it.
    pub fn seed(settings: &SnykSettings) -> Profile {
        Profile {
            name: "seed".into(),
            matrix: Matrix::SEED,
            due: LaneRules::seed(settings.p2_months, settings.p3_months),
            kev_enabled: true,
            kev_below_floor: settings.kev_below_floor,
            epss_enabled: true,
            epss_threshold: settings.epss_threshold.0,
        }
    }

    /// Reads and validates a profile; what it leaves out is the seed's.
    pub fn parse(text: &str, settings: &SnykSettings) -> Result<Profile, ProfileError> {
        let file: File = toml::from_str(text).map_err(|e| ProfileError::Syntax(e.message().to_owned()))?;
        let mut profile = Profile::seed(settings);
        profile.name = match file.name {
            Some(name) if !name.trim().is_empty() && name.len() <= 80 => name.trim().to_owned(),
            Some(name) => return Err(invalid("name", &name, "a name is 1 to 80 characters")),
            None => "profile".into(),
        };
        let m = &mut profile.matrix;
        for (key, raw, cell) in [
            (
                "lanes.internet_facing_mature",
                &file.lanes.internet_facing_mature,
                &mut m.internet_facing_mature,
            ),
            ("lanes.internet_facing_other", &file.lanes.internet_facing_other, &mut m.internet_facing_other),
            ("lanes.internal_mature", &file.lanes.internal_mature, &mut m.internal_mature),
            ("lanes.internal_other", &file.lanes.internal_other, &mut m.internal_other),
        ] {
            if let Some(raw) = raw {
                *cell = ticket_lane(key, raw)?;
            }
        }
        // More exposure or a mature exploit never makes a lane less urgent (a lower number is
        // more urgent): a profile that did would rank a worse finding below a milder one.
        let m = profile.matrix;
        for (worse, milder, key) in [
            (m.internet_facing_mature, m.internet_facing_other, "lanes.internet_facing_mature"),
            (m.internal_mature, m.internal_other, "lanes.internal_mature"),
            (m.internet_facing_mature, m.internal_mature, "lanes.internet_facing_mature"),
            (m.internet_facing_other, m.internal_other, "lanes.internet_facing_other"),
        ] {
            if worse > milder {
                return Err(invalid(
                    key,
                    worse.as_str(),
                    &format!("less urgent than {milder}, a cell with less exposure or no mature exploit"),
                ));
            }
        }
        for (index, (key, raw)) in [
            ("due.P1", &file.due.p1),
            ("due.P2", &file.due.p2),
            ("due.P3", &file.due.p3),
            ("due.P4", &file.due.p4),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(raw) = raw {
                profile.due.0[index] = parse_rule(key, raw)?;
            }
        }
        profile.kev_enabled = file.kev.enabled.unwrap_or(profile.kev_enabled);
        profile.kev_below_floor = file.kev.below_floor.unwrap_or(profile.kev_below_floor);
        profile.epss_enabled = file.epss.enabled.unwrap_or(profile.epss_enabled);
        if let Some(threshold) = file.epss.threshold {
            if !(threshold > 0.0 && threshold <= 1.0) {
                return Err(invalid(
                    "epss.threshold",
                    &threshold.to_string(),
                    "a threshold is above 0 and at most 1",
                ));
            }
            profile.epss_threshold = threshold as f32;
        }
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_table() {
        let settings = SnykSettings::default();
        let seed = Profile::seed(&settings);
        let fixed = "name = \"fixed-days\"\n[due]\nP1 = \"7 days\"\nP2 = \"30 days\"\nP3 = \"90 days\"\nP4 = \"none\"\n[kev]\nbelow_floor = true\n[epss]\nenabled = false\n";
        let parsed = Profile::parse(fixed, &settings).unwrap();
        assert_eq!(parsed.name, "fixed-days");
        assert_eq!(parsed.matrix, Matrix::SEED);
        assert_eq!(
            parsed.due,
            LaneRules([DueRule::Days(7), DueRule::Days(30), DueRule::Days(90), DueRule::None])
        );
        assert!(parsed.kev_enabled && parsed.kev_below_floor && !parsed.epss_enabled);
        assert_eq!(
            Profile::parse("", &settings).unwrap(),
            Profile { name: "profile".into(), ..seed.clone() }
        );
        let tighter = Profile::parse(
            "[lanes]\ninternal_other = \"P3\"\n[due]\nP1 = \"next sprint\"\nP2 = \"2 months\"",
            &settings,
        )
        .unwrap();
        assert_eq!(tighter.matrix.lane(Exposure::Internal, false), Lane::P3);
        assert_eq!(tighter.due.of(Lane::P2), DueRule::Months(2));

        for (text, wants) in [
            ("[due]\nP2 = \"0 days\"", "due.P2 = \"0 days\": days are 1 to 730"),
            ("[due]\nP2 = \"40 months\"", "months are 1 to 36"),
            ("[due]\nP3 = \"soon\"", "due.P3 = \"soon\": a due rule is"),
            ("[due]\nP3 = \"3 weeks\"", "the unit is days or months"),
            ("[lanes]\ninternal_mature = \"Maintenance\"", "a lane is P1, P2, P3 or P4"),
            (
                "[lanes]\ninternal_mature = \"P4\"\ninternal_other = \"P2\"",
                "lanes.internal_mature = \"P4\": less urgent than P2",
            ),
            (
                "[lanes]\ninternet_facing_other = \"P4\"\ninternal_other = \"P3\"",
                "lanes.internet_facing_other",
            ),
            ("[epss]\nthreshold = 1.5", "epss.threshold = \"1.5\""),
            ("[epss]\nthreshold = 0", "a threshold is above 0"),
            ("[kev]\nenabeld = true", "unknown field `enabeld`"),
            ("[due]\nP5 = \"1 day\"", "unknown field `P5`"),
            ("name = \"\"", "a name is 1 to 80"),
            ("due = 3", "invalid type"),
        ] {
            let error = Profile::parse(text, &settings).unwrap_err().to_string();
            assert!(error.contains(wants), "{text:?}: {error}");
        }
    }
}
