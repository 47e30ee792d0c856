//! FIRST's EPSS scores, as the daily CSV they publish.
//!
//! The format (FIRST, <https://www.first.org/epss/data_stats> and
//! <https://www.first.org/epss/api>; the daily file is
//! `https://epss.empiricalsecurity.com/epss_scores-current.csv.gz`, formerly on
//! epss.cyentia.com): a first comment line `#model_version:v2025.03.14,score_date:2025-03-16T00:00:00Z`,
//! then the header `cve,epss,percentile`, then one line per CVE with the probability of
//! exploitation in the next 30 days and its percentile, both between 0 and 1.
//!
//! Read leniently where that is safe: a byte order mark, CRLF line ends, blank lines, columns in
//! another order or extra columns, no comment line; a row that cannot be read (not a CVE id, a
//! score that is not a number between 0 and 1, too few cells) is skipped and reported with its
//! line number.

use std::collections::HashMap;

use super::{FeedError, Rejected, canonical_cve, strip_bom};

/// One CVE's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpssScore {
    /// Probability of exploitation in the next 30 days, 0 to 1.
    pub epss: f32,
    pub percentile: Option<f32>,
}

impl EpssScore {
    /// As a ticket shows it: `0.943 (percentile 0.999)`.
    pub fn label(&self) -> String {
        match self.percentile {
            Some(p) => format!("{:.3} (percentile {:.3})", self.epss, p),
            None => format!("{:.3}", self.epss),
        }
    }
}

/// The scores, indexed by CVE id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpssScores {
    pub model_version: String,
    /// `score_date` as written.
    pub score_date: String,
    scores: HashMap<String, EpssScore>,
    /// Rows skipped, with their line numbers (1-based).
    pub rejected: Vec<Rejected>,
}

impl EpssScores {
    pub fn parse(text: &str) -> Result<EpssScores, FeedError> {
        let mut scores = EpssScores::default();
        let mut columns: Option<(usize, usize, Option<usize>)> = None;
        let mut any = false;
        for (index, line) in strip_bom(text).lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            any = true;
            if let Some(comment) = line.strip_prefix('#') {
                for pair in comment.split(',') {
                    match pair.split_once(':') {
                        Some((key, value)) if key.trim() == "model_version" => {
                            scores.model_version = value.trim().to_owned()
                        }
                        Some((key, value)) if key.trim() == "score_date" => {
                            scores.score_date = value.trim().to_owned()
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(|c| c.trim().trim_matches('"')).collect();
            let Some((cve_at, epss_at, percentile_at)) = columns else {
                let find = |name: &str| cells.iter().position(|c| c.eq_ignore_ascii_case(name));
                match (find("cve"), find("epss")) {
                    (Some(cve), Some(epss)) => columns = Some((cve, epss, find("percentile"))),
                    _ => return Err(FeedError::EpssNoHeader),
                }
                continue;
            };
            let reject = |reason: String| Rejected { position: number, reason };
            let (Some(raw_cve), Some(raw_epss)) = (cells.get(cve_at), cells.get(epss_at)) else {
                scores.rejected.push(reject(format!("{} cell(s), too few", cells.len())));
                continue;
            };
            let Some(cve) = canonical_cve(raw_cve) else {
                let shown: String = raw_cve.chars().take(40).collect();
                scores.rejected.push(reject(format!("{shown:?} is not a CVE id")));
                continue;
            };
            let Some(epss) = probability(raw_epss) else {
                let shown: String = raw_epss.chars().take(40).collect();
                scores.rejected.push(reject(format!("{cve}: epss {shown:?} is not a number from 0 to 1")));
                continue;
            };
            // A percentile that cannot be read costs only its display; the score still counts.
            let percentile = percentile_at.and_then(|at| cells.get(at)).and_then(|raw| probability(raw));
            scores.scores.insert(cve, EpssScore { epss, percentile });
        }
        match (any, columns) {
            (false, _) => Err(FeedError::EpssEmpty),
            (true, None) => Err(FeedError::EpssNoHeader),
            (true, Some(_)) => Ok(scores),
        }
    }

    /// The score of `cve` (canonical, upper case), in constant time.
    pub fn get(&self, cve: &str) -> Option<EpssScore> {
        self.scores.get(cve).copied()
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

fn probability(raw: &str) -> Option<f32> {
    let value: f32 = raw.trim().parse().ok()?;
    (value.is_finite() && (0.0..=1.0).contains(&value)).then_some(value)
}
