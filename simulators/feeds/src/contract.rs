//! What the simulator serves, written from the feeds' official documentation (no text of the
//! feeds copied): the paths, the media types and the shape of each document. `tests` in lib.rs
//! check the simulator's answers against it, and the policy crate's corpus
//! (crates/snyk-policy/tests/feeds) against the same shapes.
//!
//! CISA KEV: <https://www.cisa.gov/known-exploited-vulnerabilities-catalog>; the JSON schema
//! <https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities_schema.json>.
//! FIRST EPSS: <https://www.first.org/epss/data_stats>, <https://www.first.org/epss/api>.

/// The KEV feed's path on www.cisa.gov.
pub const KEV_PATH: &str = "/sites/default/files/feeds/known_exploited_vulnerabilities.json";
/// The KEV feed is served as JSON.
pub const KEV_MEDIA_TYPE: &str = "application/json";
/// Top-level fields of the catalog.
pub const KEV_TOP_LEVEL: [&str; 5] = ["title", "catalogVersion", "dateReleased", "count", "vulnerabilities"];
/// Fields of each `vulnerabilities[]` entry; dates `YYYY-MM-DD`, `knownRansomwareCampaignUse`
/// `Known` or `Unknown`, `cwes` an array of CWE ids.
pub const KEV_ENTRY: [&str; 11] = [
    "cveID",
    "vendorProject",
    "product",
    "vulnerabilityName",
    "dateAdded",
    "shortDescription",
    "requiredAction",
    "dueDate",
    "knownRansomwareCampaignUse",
    "notes",
    "cwes",
];

/// The EPSS daily file's path (on epss.empiricalsecurity.com, formerly epss.cyentia.com, it is
/// gzip-compressed as `.csv.gz`; the simulator serves the CSV itself).
pub const EPSS_PATH: &str = "/epss_scores-current.csv";
pub const EPSS_MEDIA_TYPE: &str = "text/csv";
/// The first line is a comment with the model version and the score date.
pub const EPSS_COMMENT_PREFIX: &str = "#model_version:";
/// The header after the comment line.
pub const EPSS_HEADER: &str = "cve,epss,percentile";
