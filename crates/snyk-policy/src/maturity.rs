//! Exploit maturity: one concept, several encodings.
//!
//! | bucket           | v1 (`exploitMaturity`) | CVSSv3 level                | CVSSv4 level       |
//! |------------------|------------------------|-----------------------------|--------------------|
//! | Mature           | `mature`               | `High` (`Functional`: flag) | `Attacked`         |
//! | Proof of concept | `proof-of-concept`     | `Proof of Concept`          | `Proof of Concept` |
//! | No known exploit | `no-known-exploit`     | `Unproven`                  | `Unreported`       |
//! | No data          | `no-data`              | `Not Defined`               | `Not Defined`      |
//!
//! Snyk publishes no mapping table; this one follows the CVSS definitions. `Functional` (a
//! working exploit exists) counts as mature unless `--snyk-functional-is-mature=false`: the
//! conservative choice. Missing exploit details count as no data, so as not mature. When several
//! statements are given, the spec says clients should prefer the primary CVSS vector: the
//! statements marked `type: primary` decide (the most mature of them); only when none is marked
//! does the most mature of all decide. Snyk's own word `Mature` (the v1 value, also seen as a
//! level) is mature in every form. A webhook's `exploitMaturity` (v1) counts when its
//! `exploitDetails` give no statement.

use serde::{Deserialize, Serialize};

use crate::rest::MaturityLevel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Maturity {
    NoData,
    NoKnownExploit,
    ProofOfConcept,
    Mature,
}

impl Maturity {
    pub fn is_mature(self) -> bool {
        self == Maturity::Mature
    }

    /// As Snyk's UI says it.
    pub fn label(self) -> &'static str {
        match self {
            Maturity::Mature => "Mature",
            Maturity::ProofOfConcept => "Proof of concept",
            Maturity::NoKnownExploit => "No known exploit",
            Maturity::NoData => "No data",
        }
    }

    /// The v1 encoding (`mature`, `proof-of-concept`, `no-known-exploit`, `no-data`), also
    /// accepting the UI labels. Unknown values are no data.
    pub fn from_v1(value: &str) -> Maturity {
        match normalise(value).as_str() {
            "mature" => Maturity::Mature,
            "proofofconcept" | "poc" => Maturity::ProofOfConcept,
            "noknownexploit" => Maturity::NoKnownExploit,
            _ => Maturity::NoData,
        }
    }

    /// One CVSS-style statement (`format` `CVSSv3`/`CVSSv4`, also `CVSS_v4`, `cvssv4`…).
    pub fn from_cvss(_format: &str, level: &str, functional_is_mature: bool) -> Maturity {
        // The level names of CVSSv3 and CVSSv4 do not overlap in meaning (v4 has no `High`,
        // v3 no `Attacked`), so the level alone decides, whatever the format is spelt like.
        match normalise(level).as_str() {
            "attacked" | "high" | "mature" => Maturity::Mature,
            "functional" if functional_is_mature => Maturity::Mature,
            "functional" | "proofofconcept" | "poc" => Maturity::ProofOfConcept,
            "unproven" | "unreported" => Maturity::NoKnownExploit,
            _ => Maturity::NoData,
        }
    }

    /// The primary statements' maturity (the most mature of them), else the most mature of
    /// all; none is no data.
    pub fn from_levels(levels: &[MaturityLevel], functional_is_mature: bool) -> Maturity {
        let is_primary =
            |l: &&MaturityLevel| l.kind.as_deref().is_some_and(|k| k.trim().eq_ignore_ascii_case("primary"));
        let read = |l: &MaturityLevel| Maturity::from_cvss(&l.format, &l.level, functional_is_mature);
        let primary = levels.iter().filter(is_primary).map(read).max();
        primary.or_else(|| levels.iter().map(read).max()).unwrap_or(Maturity::NoData)
    }
}

/// Lower case without spaces, dashes, underscores or dots.
fn normalise(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(format: &str, level: &str) -> MaturityLevel {
        MaturityLevel { format: format.into(), level: level.into(), kind: None }
    }

    #[test]
    fn every_v1_encoding() {
        assert_eq!(Maturity::from_v1("mature"), Maturity::Mature);
        assert_eq!(Maturity::from_v1("proof-of-concept"), Maturity::ProofOfConcept);
        assert_eq!(Maturity::from_v1("no-known-exploit"), Maturity::NoKnownExploit);
        assert_eq!(Maturity::from_v1("no-data"), Maturity::NoData);
        assert_eq!(Maturity::from_v1("Mature"), Maturity::Mature);
        assert_eq!(Maturity::from_v1("Proof of concept"), Maturity::ProofOfConcept);
        assert_eq!(Maturity::from_v1("No known exploit"), Maturity::NoKnownExploit);
        assert_eq!(Maturity::from_v1(""), Maturity::NoData);
        assert_eq!(Maturity::from_v1("something-new"), Maturity::NoData);
    }

    #[test]
    fn every_cvss_v3_level() {
        let v3 = |l: &str| Maturity::from_cvss("CVSSv3", l, true);
        assert_eq!(v3("High"), Maturity::Mature);
        assert_eq!(v3("Functional"), Maturity::Mature);
        assert_eq!(Maturity::from_cvss("CVSSv3", "Functional", false), Maturity::ProofOfConcept);
        assert_eq!(v3("Proof of Concept"), Maturity::ProofOfConcept);
        assert_eq!(v3("Unproven"), Maturity::NoKnownExploit);
        assert_eq!(v3("Not Defined"), Maturity::NoData);
    }

    #[test]
    fn every_cvss_v4_level_in_both_spellings() {
        for format in ["CVSSv4", "CVSS_v4", "cvssv4"] {
            let v4 = |l: &str| Maturity::from_cvss(format, l, false);
            assert_eq!(v4("Attacked"), Maturity::Mature);
            assert_eq!(v4("attacked"), Maturity::Mature);
            assert_eq!(v4("Proof of Concept"), Maturity::ProofOfConcept);
            assert_eq!(v4("proof_of_concept"), Maturity::ProofOfConcept);
            assert_eq!(v4("Unreported"), Maturity::NoKnownExploit);
            assert_eq!(v4("Not Defined"), Maturity::NoData);
        }
    }

    fn marked(format: &str, level: &str, kind: &str) -> MaturityLevel {
        MaturityLevel { format: format.into(), level: level.into(), kind: Some(kind.into()) }
    }

    #[test]
    fn the_primary_vector_decides_when_one_is_marked() {
        let lagging_primary =
            [marked("CVSSv4", "Unreported", "primary"), marked("CVSSv3", "High", "secondary")];
        assert_eq!(Maturity::from_levels(&lagging_primary, true), Maturity::NoKnownExploit);
        let mature_primary =
            [marked("CVSSv3", "Proof of Concept", "secondary"), marked("CVSSv4", "Attacked", "Primary")];
        assert_eq!(Maturity::from_levels(&mature_primary, false), Maturity::Mature);
        // No statement marked: the most mature of all.
        let unmarked = [level("CVSSv4", "Unreported"), level("CVSSv3", "High")];
        assert_eq!(Maturity::from_levels(&unmarked, false), Maturity::Mature);
        // Only secondaries marked: as unmarked.
        let secondaries =
            [marked("CVSSv4", "Unreported", "secondary"), marked("CVSSv3", "High", "secondary")];
        assert_eq!(Maturity::from_levels(&secondaries, false), Maturity::Mature);
    }

    #[test]
    fn mature_is_mature_in_every_form() {
        assert_eq!(Maturity::from_v1("Mature"), Maturity::Mature);
        assert_eq!(Maturity::from_v1("MATURE"), Maturity::Mature);
        assert_eq!(Maturity::from_cvss("Snyk", "Mature", false), Maturity::Mature);
        assert_eq!(Maturity::from_levels(&[marked("CVSSv3", "Mature", "primary")], false), Maturity::Mature);
    }

    #[test]
    fn missing_details_are_not_mature_and_the_most_mature_statement_wins() {
        assert_eq!(Maturity::from_levels(&[], true), Maturity::NoData);
        assert!(!Maturity::from_levels(&[], true).is_mature());
        let mixed = [level("CVSSv4", "Proof of Concept"), level("CVSSv3", "High")];
        assert_eq!(Maturity::from_levels(&mixed, false), Maturity::Mature);
        let functional = [level("CVSSv3", "Functional")];
        assert_eq!(Maturity::from_levels(&functional, true), Maturity::Mature);
        assert_eq!(Maturity::from_levels(&functional, false), Maturity::ProofOfConcept);
    }
}
