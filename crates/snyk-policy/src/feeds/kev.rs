//! CISA's Known Exploited Vulnerabilities catalog, as published in JSON.
//!
//! The format (documented by CISA at
//! <https://www.cisa.gov/known-exploited-vulnerabilities-catalog>, with the JSON schema at
//! <https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities_schema.json>;
//! the feed itself is
//! <https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json>): an
//! object with `title`, `catalogVersion`, `dateReleased` (an ISO 8601 timestamp), `count` and
//! `vulnerabilities`, an array of objects with `cveID`, `vendorProject`, `product`,
//! `vulnerabilityName`, `dateAdded` and `dueDate` (`YYYY-MM-DD`), `shortDescription`,
//! `requiredAction`, `knownRansomwareCampaignUse` (`Known` or `Unknown`), `notes` and `cwes`
//! (an array of CWE ids).
//!
//! Read leniently where that is safe: unknown fields are ignored, a date is also read as a
//! timestamp or with slashes, a record without a readable `cveID` is skipped and reported, a
//! record whose dates cannot be read is kept (the CVE is still known exploited) without them.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::Value;

use super::{FeedError, Rejected, canonical_cve, strip_bom};

/// One listed CVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KevEntry {
    pub cve: String,
    pub vendor_project: String,
    pub product: String,
    pub vulnerability_name: String,
    pub date_added: Option<NaiveDate>,
    /// When U.S. federal agencies must have applied `requiredAction` (BOD 22-01).
    pub due_date: Option<NaiveDate>,
    /// `knownRansomwareCampaignUse` is `Known`.
    pub known_ransomware: bool,
}

impl KevEntry {
    /// The sentence a ticket carries: why this CVE makes the finding urgent.
    pub fn sentence(&self) -> String {
        let since = self.date_added.map(|d| format!(" since {d}")).unwrap_or_default();
        let due = self.due_date.map(|d| format!(", due {d}")).unwrap_or_default();
        let ransomware =
            if self.known_ransomware { "; known to be used in ransomware campaigns" } else { "" };
        format!("{} is in CISA KEV{since}{due}{ransomware}.", self.cve)
    }
}

/// The catalog, indexed by CVE id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KevCatalog {
    pub catalog_version: String,
    /// `dateReleased` as written.
    pub date_released: String,
    /// The `count` the catalog states, when it states one.
    pub stated_count: Option<u64>,
    entries: HashMap<String, KevEntry>,
    /// Records skipped (no readable CVE id, not an object).
    pub rejected: Vec<Rejected>,
    /// Records kept whose `dateAdded` or `dueDate` could not be read.
    pub unreadable_dates: Vec<Rejected>,
}

impl KevCatalog {
    /// Reads the catalog's JSON.
    pub fn parse(text: &str) -> Result<KevCatalog, FeedError> {
        let document: Value =
            serde_json::from_str(strip_bom(text)).map_err(|e| FeedError::KevNotJson(e.to_string()))?;
        let vulnerabilities = document
            .get("vulnerabilities")
            .and_then(Value::as_array)
            .ok_or(FeedError::KevNoVulnerabilities)?;
        let text_of = |value: &Value, field: &str| {
            value.get(field).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned()
        };
        let mut catalog = KevCatalog {
            catalog_version: text_of(&document, "catalogVersion"),
            date_released: text_of(&document, "dateReleased"),
            stated_count: document.get("count").and_then(Value::as_u64),
            entries: HashMap::with_capacity(vulnerabilities.len()),
            ..KevCatalog::default()
        };
        for (position, record) in vulnerabilities.iter().enumerate() {
            if !record.is_object() {
                catalog.rejected.push(Rejected { position, reason: "not an object".into() });
                continue;
            }
            let raw_id = text_of(record, "cveID");
            let Some(cve) = canonical_cve(&raw_id) else {
                let reason = if raw_id.is_empty() {
                    "no cveID".to_owned()
                } else {
                    format!("cveID {:?} is not a CVE id", raw_id.chars().take(40).collect::<String>())
                };
                catalog.rejected.push(Rejected { position, reason });
                continue;
            };
            let mut date = |field: &str| {
                let raw = text_of(record, field);
                let parsed = parse_date(&raw);
                if parsed.is_none() {
                    let what =
                        if raw.is_empty() { "missing".to_owned() } else { format!("{raw:?} unreadable") };
                    catalog
                        .unreadable_dates
                        .push(Rejected { position, reason: format!("{cve}: {field} {what}") });
                }
                parsed
            };
            let date_added = date("dateAdded");
            let due_date = date("dueDate");
            let entry = KevEntry {
                vendor_project: text_of(record, "vendorProject"),
                product: text_of(record, "product"),
                vulnerability_name: text_of(record, "vulnerabilityName"),
                date_added,
                due_date,
                known_ransomware: text_of(record, "knownRansomwareCampaignUse").eq_ignore_ascii_case("known"),
                cve: cve.clone(),
            };
            // Listed twice (a correction republished): the earlier dates and any ransomware use
            // win, so a duplicate never makes a deadline later.
            catalog
                .entries
                .entry(cve)
                .and_modify(|existing| {
                    existing.date_added = min_date(existing.date_added, entry.date_added);
                    existing.due_date = min_date(existing.due_date, entry.due_date);
                    existing.known_ransomware |= entry.known_ransomware;
                })
                .or_insert(entry);
        }
        Ok(catalog)
    }

    /// The entry of `cve` (canonical, upper case), in constant time.
    pub fn get(&self, cve: &str) -> Option<&KevEntry> {
        self.entries.get(cve)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn min_date(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A KEV date: `YYYY-MM-DD` as CISA writes it; also a timestamp that starts with it (mirrors
/// that re-serialise dates), or `YYYY/MM/DD`.
pub(crate) fn parse_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    let head = raw.get(..10)?;
    let rest = &raw[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    NaiveDate::parse_from_str(head, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(head, "%Y/%m/%d")).ok()
}
