//! The feed parsers over the corpus in `tests/feeds` (README there: the cases and where the
//! formats are documented): what each file parses to, what is skipped and why, what is refused.

use chrono::NaiveDate;
use snyk_policy::feeds::{EpssScores, FeedError, KevCatalog};

fn read(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn day(text: &str) -> Option<NaiveDate> {
    Some(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
}

/// (cve, dateAdded, dueDate, ransomware) for listed CVEs; `None` dates when unreadable.
type KevRow = (&'static str, Option<&'static str>, Option<&'static str>, bool);

struct KevCase {
    file: &'static str,
    version: &'static str,
    entries: usize,
    listed: &'static [KevRow],
    absent: &'static [&'static str],
    /// Substrings of the skip reasons, in order.
    rejected: &'static [&'static str],
    unreadable_dates: &'static [&'static str],
}

#[test]
fn kev_corpus() {
    let cases = [
        KevCase {
            file: "kev-regular.json",
            version: "2026.11.30",
            entries: 3,
            listed: &[
                ("CVE-2026-10001", Some("2026-11-20"), Some("2026-12-11"), true),
                ("CVE-2025-20002", Some("2025-06-02"), Some("2025-06-23"), false),
                ("CVE-2024-3003003", Some("2024-02-01"), Some("2024-02-22"), false),
            ],
            absent: &["CVE-2026-99999", "cve-2026-10001"],
            rejected: &[],
            unreadable_dates: &[],
        },
        KevCase {
            file: "kev-odd-dates.json",
            version: "2026.11.01",
            entries: 4,
            listed: &[
                ("CVE-2026-11001", Some("2026-10-01"), Some("2026-10-22"), false),
                ("CVE-2026-11002", Some("2026-10-02"), Some("2026-10-23"), true),
                ("CVE-2026-11003", None, Some("2026-10-24"), false),
                ("CVE-2026-11004", Some("2026-10-04"), None, false),
            ],
            absent: &[],
            rejected: &[],
            unreadable_dates: &[
                "CVE-2026-11003: dateAdded \"October 3, 2026\" unreadable",
                "CVE-2026-11004: dueDate missing",
            ],
        },
        KevCase {
            file: "kev-bad-records.json",
            version: "2026.10.15",
            entries: 2,
            listed: &[
                // The duplicate's earlier dates and its ransomware use win.
                ("CVE-2026-12001", Some("2026-10-03"), Some("2026-10-24"), true),
                ("CVE-2026-12002", Some("2026-10-06"), Some("2026-10-27"), false),
            ],
            absent: &["CVE-2026-12000"],
            rejected: &["no cveID", "\"GHSA-abcd-efgh-ijkl\" is not a CVE id", "not an object"],
            unreadable_dates: &[],
        },
        KevCase {
            file: "kev-bom-extra-fields.json",
            version: "2026.12.01",
            entries: 2,
            listed: &[
                ("CVE-2026-13001", Some("2026-11-28"), Some("2026-12-19"), false),
                ("CVE-2026-13002", Some("2026-11-29"), Some("2026-12-20"), false),
            ],
            absent: &[],
            rejected: &[],
            unreadable_dates: &[],
        },
    ];
    for case in cases {
        let catalog = KevCatalog::parse(&read(case.file)).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        assert_eq!(catalog.catalog_version, case.version, "{}", case.file);
        assert_eq!(catalog.len(), case.entries, "{}", case.file);
        for (cve, added, due, ransomware) in case.listed {
            let entry = catalog.get(cve).unwrap_or_else(|| panic!("{}: {cve} not listed", case.file));
            assert_eq!(entry.date_added, added.and_then(day), "{}: {cve}", case.file);
            assert_eq!(entry.due_date, due.and_then(day), "{}: {cve}", case.file);
            assert_eq!(entry.known_ransomware, *ransomware, "{}: {cve}", case.file);
        }
        for cve in case.absent {
            assert!(catalog.get(cve).is_none(), "{}: {cve} listed", case.file);
        }
        let reasons: Vec<&str> = catalog.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), case.rejected.len(), "{}: {reasons:?}", case.file);
        for (reason, want) in reasons.iter().zip(case.rejected) {
            assert!(reason.contains(want), "{}: {reason:?} lacks {want:?}", case.file);
        }
        let dates: Vec<&str> = catalog.unreadable_dates.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(dates, case.unreadable_dates, "{}", case.file);
    }
    assert_eq!(KevCatalog::parse(&read("kev-not-a-catalog.json")), Err(FeedError::KevNoVulnerabilities));
    assert!(matches!(KevCatalog::parse("<html>maintenance</html>"), Err(FeedError::KevNotJson(_))));
    let sentence =
        KevCatalog::parse(&read("kev-regular.json")).unwrap().get("CVE-2026-10001").unwrap().sentence();
    assert_eq!(
        sentence,
        "CVE-2026-10001 is in CISA KEV since 2026-11-20, due 2026-12-11; known to be used in ransomware campaigns."
    );
}

struct EpssCase {
    file: &'static str,
    model: &'static str,
    scores: &'static [(&'static str, f32, Option<f32>)],
    /// (line, reason substring)
    rejected: &'static [(usize, &'static str)],
}

#[test]
fn epss_corpus() {
    let cases = [
        EpssCase {
            file: "epss-regular.csv",
            model: "v2025.03.14",
            scores: &[
                ("CVE-1999-0001", 0.01234, Some(0.781)),
                ("CVE-2026-10001", 0.94312, Some(0.99911)),
                ("CVE-2025-20002", 0.00045, Some(0.12)),
                ("CVE-2024-3003003", 0.5, Some(0.98)),
            ],
            rejected: &[],
        },
        EpssCase {
            file: "epss-bom-crlf.csv",
            model: "",
            scores: &[("CVE-2026-20001", 0.71, Some(0.995)), ("CVE-2026-20002", 0.001, Some(0.1))],
            rejected: &[],
        },
        EpssCase {
            file: "epss-bad-rows.csv",
            model: "v2025.03.14",
            scores: &[("CVE-2026-30001", 0.2, Some(0.9)), ("CVE-2026-30005", 0.3, None)],
            rejected: &[
                (4, "\"NOT-A-CVE\" is not a CVE id"),
                (5, "CVE-2026-30002: epss \"1.5\" is not a number from 0 to 1"),
                (6, "CVE-2026-30003: epss \"high\""),
                (7, "1 cell(s), too few"),
            ],
        },
    ];
    for case in cases {
        let scores = EpssScores::parse(&read(case.file)).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        assert_eq!(scores.model_version, case.model, "{}", case.file);
        assert_eq!(scores.len(), case.scores.len(), "{}", case.file);
        for (cve, epss, percentile) in case.scores {
            let score = scores.get(cve).unwrap_or_else(|| panic!("{}: {cve} missing", case.file));
            assert!((score.epss - epss).abs() < 1e-6, "{}: {cve} {}", case.file, score.epss);
            assert_eq!(score.percentile.map(|p| (p * 1e5).round()), percentile.map(|p| (p * 1e5).round()));
        }
        let rejected: Vec<(usize, &str)> =
            scores.rejected.iter().map(|r| (r.position, r.reason.as_str())).collect();
        assert_eq!(rejected.len(), case.rejected.len(), "{}: {rejected:?}", case.file);
        for ((line, reason), (want_line, want)) in rejected.iter().zip(case.rejected) {
            assert_eq!(line, want_line, "{}: {reason}", case.file);
            assert!(reason.contains(want), "{}: {reason:?} lacks {want:?}", case.file);
        }
    }
    let regular = EpssScores::parse(&read("epss-regular.csv")).unwrap();
    assert_eq!(regular.score_date, "2026-12-01T12:55:00Z");
    assert_eq!(regular.get("CVE-2026-10001").unwrap().label(), "0.943 (percentile 0.999)");
    assert_eq!(EpssScores::parse(&read("epss-no-header.csv")), Err(FeedError::EpssNoHeader));
    assert_eq!(EpssScores::parse("\u{feff}\n\n"), Err(FeedError::EpssEmpty));
}
