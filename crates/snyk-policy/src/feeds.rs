//! Exploitation feeds: CISA's Known Exploited Vulnerabilities catalog ([`kev`]) and FIRST's
//! Exploit Prediction Scoring System scores ([`epss`]). Pure: they parse text they are given
//! (triage fetches, refreshes and keeps the last good copy) and answer lookups by CVE id in
//! constant time, so loading them costs nothing per finding beyond a hash probe per CVE.
//!
//! A document that is not the feed at all (not JSON, no `vulnerabilities` array, no CSV header)
//! is an error, and the caller keeps the copy it had; a single record that cannot be read is
//! skipped, counted and reported with its reason, and the rest of the feed is used.

pub mod epss;
pub mod kev;

use std::sync::Arc;

pub use epss::{EpssScore, EpssScores};
pub use kev::{KevCatalog, KevEntry};

/// Why a whole feed document was refused (the previous copy stays in use).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the KEV catalog is not JSON: {0}")]
    KevNotJson(String),
    #[error("the KEV catalog has no `vulnerabilities` array")]
    KevNoVulnerabilities,
    #[error("the EPSS scores have no header line with `cve` and `epss` columns")]
    EpssNoHeader,
    #[error("the EPSS scores are empty")]
    EpssEmpty,
}

/// One record of a feed that could not be read: where and why. Skipped, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The array index (KEV) or the 1-based line number (EPSS).
    pub position: usize,
    pub reason: String,
}

/// The feeds the Snyk policy consults, as loaded now. Either may be absent.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    pub kev: Option<Arc<KevCatalog>>,
    pub epss: Option<Arc<EpssScores>>,
}

impl Feeds {
    pub fn is_empty(&self) -> bool {
        self.kev.is_none() && self.epss.is_none()
    }

    /// The KEV entry of a CVE, when the catalog lists it.
    pub fn kev(&self, cve: &str) -> Option<&KevEntry> {
        self.kev.as_ref()?.get(cve)
    }

    /// The EPSS score of a CVE, when the scores have it.
    pub fn epss(&self, cve: &str) -> Option<EpssScore> {
        self.epss.as_ref()?.get(cve)
    }
}

/// A CVE id in its canonical form (`CVE-YYYY-NNNN…`, upper case), or `None` when `raw` is not
/// one. Feeds and Snyk both write them upper case; the check keeps a stray word or an empty
/// cell out of the index.
pub fn canonical_cve(raw: &str) -> Option<String> {
    let id = raw.trim().to_ascii_uppercase();
    let rest = id.strip_prefix("CVE-")?;
    let (year, number) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (year.len() == 4 && digits(year) && number.len() >= 4 && digits(number)).then_some(id)
}

/// Strips a UTF-8 byte order mark, which spreadsheet exports and some mirrors put first.
pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids() {
        for (raw, want) in [
            ("CVE-2021-44228", Some("CVE-2021-44228")),
            (" cve-2021-44228 ", Some("CVE-2021-44228")),
            ("CVE-2024-1234567", Some("CVE-2024-1234567")),
            ("CVE-21-44228", None),
            ("CVE-2021-442", None),
            ("GHSA-xxxx", None),
            ("", None),
            ("CVE-2021-4422x", None),
        ] {
            assert_eq!(canonical_cve(raw).as_deref(), want, "{raw:?}");
        }
    }
}
