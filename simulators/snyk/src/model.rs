//! The simulated Snyk data: organisations with projects and issues, the seeded org, and large
//! synthetic orgs for benchmarks. Rendering to Snyk's JSON:API shapes is in [`crate::render`].

use chrono::{DateTime, Duration, Utc};

/// A deterministic UUID (version 4 layout) from a namespace and a number.
pub fn uuid(namespace: u32, n: u64) -> String {
    format!(
        "{namespace:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 32) & 0xffff,
        n & 0xfff,
        (n >> 12) & 0xfff,
        n
    )
}

/// Active or deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectStatus {
    Active,
    Inactive,
}

/// One Snyk project.
#[derive(Debug, Clone, PartialEq)]
pub struct SimProject {
    pub id: String,
    pub name: String,
    /// `deb`, `apk`, `npm`, `maven`, `sast`…
    pub project_type: String,
    pub origin: String,
    pub target_id: String,
    pub target_name: String,
    pub target_url: Option<String>,
    pub target_reference: String,
    pub target_file: String,
    pub status: ProjectStatus,
    pub environment: Vec<String>,
    pub business_criticality: Vec<String>,
    pub lifecycle: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub created: DateTime<Utc>,
    /// Container projects: the platform, and the base image Snyk detected (v1 only).
    pub platform: Option<String>,
    pub base_image: Option<String>,
}

/// Open or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStatus {
    Open,
    Resolved,
}

/// One issue in one project.
#[derive(Debug, Clone, PartialEq)]
pub struct SimIssue {
    pub id: String,
    pub project_id: String,
    pub key: String,
    pub title: String,
    /// `package_vulnerability` or `code`.
    pub issue_type: String,
    pub severity: String,
    pub status: IssueStatus,
    pub ignored: bool,
    pub package: Option<(String, String)>,
    /// Snyk Code: file and line.
    pub location: Option<(String, u32)>,
    pub cve: Option<String>,
    /// `(format, level)` statements; `None`: no exploit details at all.
    pub maturity: Option<Vec<(String, String)>>,
    pub fixable_upstream: bool,
    pub upgradeable: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// What a test gives to add a finding.
#[derive(Debug, Clone)]
pub struct NewIssue {
    pub key: String,
    pub title: String,
    pub severity: String,
    pub package: (String, String),
    pub cve: Option<String>,
    pub maturity: Option<Vec<(String, String)>>,
    pub upgradeable: bool,
}

impl NewIssue {
    /// A critical finding with a mature exploit (CVSSv4 `Attacked`).
    pub fn critical_mature(key: &str, package: &str, version: &str) -> Self {
        NewIssue {
            key: key.into(),
            title: format!("Remote Code Execution in {package}"),
            severity: "critical".into(),
            package: (package.into(), version.into()),
            cve: Some(format!("CVE-2099-{}", 5000 + key.len())),
            maturity: Some(vec![("CVSSv4".into(), "Attacked".into()), ("CVSSv3".into(), "High".into())]),
            upgradeable: true,
        }
    }
}

/// An organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrg {
    pub id: String,
    pub name: String,
    pub slug: String,
    /// The group the org belongs to (`GET /rest/groups/{group_id}/orgs`).
    pub group_id: String,
    pub projects: Vec<SimProject>,
    pub issues: Vec<SimIssue>,
    /// Resources served as given, in their id's place in the listing: the shapes this model
    /// does not produce but Snyk may send (a project without `relationships`, which the spec
    /// allows; a severity or status added to an enumeration; a resource that is plain wrong).
    pub raw_projects: Vec<serde_json::Value>,
    /// As `raw_projects`, for issues (listed for their `relationships.scan_item`).
    pub raw_issues: Vec<serde_json::Value>,
    next_issue: u64,
}

/// The group of every org unless a test moves it (the group the webhook bodies name).
pub const SEEDED_GROUP_ID: &str = "5d2c0000-0000-4000-8000-0000000000e8";

/// The registry of the seeded org's images.
pub const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
/// The seeded org's id.
pub const SEEDED_ORG_ID: &str = "0e8a11c4-7d2b-4c55-9e61-3f2a1b0c9d84";

fn base_time() -> DateTime<Utc> {
    "2026-06-01T08:00:00Z".parse().expect("a valid time")
}

struct ProjectSpec<'a> {
    origin: &'a str,
    target: &'a str,
    reference: &'a str,
    project_type: &'a str,
    file: &'a str,
    environment: &'a [&'a str],
    tags: &'a [(&'a str, &'a str)],
}

struct IssueSpec<'a> {
    key: &'a str,
    title: &'a str,
    severity: &'a str,
    package: &'a str,
    version: &'a str,
    maturity: Option<&'a [(&'a str, &'a str)]>,
    ignored: bool,
    resolved: bool,
}

impl SimOrg {
    pub fn new(id: &str, name: &str, slug: &str) -> Self {
        SimOrg {
            id: id.into(),
            name: name.into(),
            slug: slug.into(),
            group_id: SEEDED_GROUP_ID.into(),
            projects: Vec::new(),
            issues: Vec::new(),
            raw_projects: Vec::new(),
            raw_issues: Vec::new(),
            next_issue: 1,
        }
    }

    fn namespace(&self) -> u32 {
        u32::from_str_radix(&self.id[..8], 16).unwrap_or(0xabcdef01) ^ 0x5a5a_0000
    }

    fn add_project(&mut self, spec: ProjectSpec<'_>) -> String {
        let n = self.projects.len() as u64 + 1;
        let id = uuid(self.namespace() ^ 0x0000_0f00, n);
        let is_image = spec.origin == "ecr";
        let name = match (is_image, spec.file.is_empty()) {
            (true, true) => {
                format!("{}:{}", spec.target.rsplit('/').next().unwrap_or(spec.target), spec.reference)
            }
            (true, false) => {
                format!(
                    "{}:{}:{}",
                    spec.target.rsplit('/').next().unwrap_or(spec.target),
                    spec.reference,
                    spec.file
                )
            }
            (false, true) => format!("{}({})", spec.target, spec.reference),
            (false, false) => format!("{}({}):{}", spec.target, spec.reference, spec.file),
        };
        let target_id = uuid(self.namespace() ^ 0x0000_0a00, fnv(spec.target));
        let os = matches!(spec.project_type, "deb" | "apk" | "rpm");
        self.projects.push(SimProject {
            id: id.clone(),
            name,
            project_type: spec.project_type.into(),
            origin: spec.origin.into(),
            target_id,
            target_name: spec.target.into(),
            target_url: (!is_image).then(|| format!("https://github.com/{}", spec.target)),
            target_reference: spec.reference.into(),
            target_file: spec.file.into(),
            status: ProjectStatus::Active,
            environment: spec.environment.iter().map(|e| (*e).to_owned()).collect(),
            business_criticality: vec!["high".into()],
            lifecycle: vec!["production".into()],
            tags: spec.tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            created: base_time() + Duration::minutes(n as i64),
            platform: is_image.then(|| "linux/amd64".into()),
            base_image: (is_image && os).then(|| match spec.project_type {
                "apk" => "alpine:3.19.1".into(),
                _ => "debian:12.5-slim".into(),
            }),
        });
        id
    }

    fn add_issue(&mut self, project_id: &str, spec: IssueSpec<'_>) -> String {
        let n = self.next_issue;
        self.next_issue += 1;
        let id = uuid(self.namespace() ^ 0x0000_01e0, n);
        let created = base_time() + Duration::hours(n as i64);
        let code = spec.package.is_empty();
        self.issues.push(SimIssue {
            id: id.clone(),
            project_id: project_id.into(),
            key: spec.key.into(),
            title: spec.title.into(),
            issue_type: if code { "code".into() } else { "package_vulnerability".into() },
            severity: spec.severity.into(),
            status: if spec.resolved { IssueStatus::Resolved } else { IssueStatus::Open },
            ignored: spec.ignored,
            package: (!code).then(|| (spec.package.to_owned(), spec.version.to_owned())),
            location: code.then(|| ("src/server/handlers.ts".to_owned(), 40 + n as u32)),
            cve: (!code).then(|| format!("CVE-2099-{:04}", 1000 + fnv(spec.key) % 9000)),
            maturity: spec
                .maturity
                .map(|levels| levels.iter().map(|(f, l)| ((*f).to_owned(), (*l).to_owned())).collect()),
            fixable_upstream: !code,
            upgradeable: spec.package.starts_with("lib") || spec.package.contains('-'),
            created_at: created,
            updated_at: created + Duration::days(1),
            resolved_at: spec.resolved.then(|| created + Duration::days(2)),
        });
        id
    }

    /// Adds an issue a test describes to a project; returns its id.
    pub fn add_new_issue(&mut self, project_id: &str, issue: NewIssue, now: DateTime<Utc>) -> String {
        let n = self.next_issue;
        self.next_issue += 1;
        let id = uuid(self.namespace() ^ 0x0000_01e0, n);
        self.issues.push(SimIssue {
            id: id.clone(),
            project_id: project_id.into(),
            key: issue.key,
            title: issue.title,
            issue_type: "package_vulnerability".into(),
            severity: issue.severity,
            status: IssueStatus::Open,
            ignored: false,
            package: Some(issue.package),
            location: None,
            cve: issue.cve,
            maturity: issue.maturity,
            fixable_upstream: true,
            upgradeable: issue.upgradeable,
            created_at: now,
            updated_at: now,
            resolved_at: None,
        });
        id
    }

    pub fn project_by_name(&self, name: &str) -> Option<&SimProject> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// The seeded org: a realistic mix of what triage must tell apart.
    ///
    /// | target | projects | findings | expected ticket |
    /// |---|---|---|---|
    /// | image `payments-api` | tags 2.7.3 and 2.8.0, each an OS (deb) and an app (npm) project; environment external; tag team=payments | critical libxml2 (CVSSv4 Attacked) in both tags; highs | P1, payments |
    /// | image `ledger-worker` | tag 1.4.0, OS (apk) and app (maven); internal; tag team=payments | critical, proof of concept | P4, payments |
    /// | image `image-resizer` | tag 3.1.0 OS (deb); no environment | critical without exploit details | P3 (exposure assumed), catalog rule |
    /// | image `search-indexer` | tag 5.0.2 OS (deb); internal, backend | critical, CVSSv3 High only | P2, default team |
    /// | image `legacy-batch` | tag 0.9.0 OS (deb); external | one critical ignored, one resolved | none |
    /// | image `old-cron` | tag 1.0.0 OS (deb), **inactive**; external | critical mature | none |
    /// | repo `acme/checkout` | `github` package.json, `github-cloud-app` pom.xml, Snyk Code (sast); external; tag team=payments | critical CVSSv3 Functional (npm), high Code issue | P1, payments |
    /// | repo `acme/website` | `github-cloud-app` package.json, `github` Dockerfile; external | critical proof of concept | P3, catalog rule |
    /// | repo `acme/internal-tools` | `github-enterprise` requirements.txt; internal | critical, no exploit details | P4, default team |
    pub fn seeded() -> SimOrg {
        let mut org = SimOrg::new(SEEDED_ORG_ID, "Globex Platform", "globex-platform");
        let image = |name: &str| format!("{REGISTRY}/{name}");
        let mature_v4: &[(&str, &str)] = &[("CVSSv4", "Attacked"), ("CVSSv3", "High")];
        let poc: &[(&str, &str)] = &[("CVSSv4", "Proof of Concept"), ("CVSSv3", "Proof of Concept")];
        let v3_high: &[(&str, &str)] = &[("CVSSv3", "High")];
        let functional: &[(&str, &str)] = &[("CVSSv3", "Functional")];
        let unproven: &[(&str, &str)] = &[("CVSSv4", "Unreported")];
        let issue = |key, title, severity, package, version, maturity| IssueSpec {
            key,
            title,
            severity,
            package,
            version,
            maturity,
            ignored: false,
            resolved: false,
        };

        // payments-api: two tags, OS and app projects each.
        let payments = image("payments-api");
        for tag in ["2.7.3", "2.8.0"] {
            let os = org.add_project(ProjectSpec {
                origin: "ecr",
                target: &payments,
                reference: tag,
                project_type: "deb",
                file: "",
                environment: &["external", "hosted"],
                tags: &[("team", "payments")],
            });
            org.add_issue(
                &os,
                issue(
                    "SNYK-DEBIAN12-LIBXML2-6012345",
                    "Use After Free",
                    "critical",
                    "libxml2",
                    "2.9.14+dfsg-1.3~deb12u1",
                    Some(mature_v4),
                ),
            );
            org.add_issue(
                &os,
                issue(
                    "SNYK-DEBIAN12-OPENSSL-6023456",
                    "Out-of-bounds Read",
                    "high",
                    "openssl",
                    "3.0.11-1~deb12u2",
                    Some(poc),
                ),
            );
            let app = org.add_project(ProjectSpec {
                origin: "ecr",
                target: &payments,
                reference: tag,
                project_type: "npm",
                file: "/app/package.json",
                environment: &["external", "hosted"],
                tags: &[("team", "payments")],
            });
            org.add_issue(
                &app,
                issue(
                    "SNYK-JS-EXPRESS-6034567",
                    "Open Redirect",
                    "medium",
                    "express",
                    "4.18.2",
                    Some(unproven),
                ),
            );
        }

        // ledger-worker: internal, critical without a mature exploit.
        let ledger = image("ledger-worker");
        let ledger_os = org.add_project(ProjectSpec {
            origin: "ecr",
            target: &ledger,
            reference: "1.4.0",
            project_type: "apk",
            file: "",
            environment: &["internal", "backend"],
            tags: &[("team", "payments")],
        });
        org.add_issue(
            &ledger_os,
            issue(
                "SNYK-ALPINE319-BUSYBOX-6045678",
                "Stack-based Buffer Overflow",
                "critical",
                "busybox",
                "1.36.1-r15",
                Some(poc),
            ),
        );
        let ledger_app = org.add_project(ProjectSpec {
            origin: "ecr",
            target: &ledger,
            reference: "1.4.0",
            project_type: "maven",
            file: "/app/pom.xml",
            environment: &["internal", "backend"],
            tags: &[("team", "payments")],
        });
        org.add_issue(
            &ledger_app,
            issue(
                "SNYK-JAVA-COMFASTERXMLJACKSONCORE-6056789",
                "Deserialization of Untrusted Data",
                "high",
                "com.fasterxml.jackson.core:jackson-databind",
                "2.13.0",
                Some(poc),
            ),
        );

        // image-resizer: no environment, no exploit details.
        let resizer = org.add_project(ProjectSpec {
            origin: "ecr",
            target: &image("image-resizer"),
            reference: "3.1.0",
            project_type: "deb",
            file: "",
            environment: &[],
            tags: &[],
        });
        org.add_issue(
            &resizer,
            issue(
                "SNYK-DEBIAN12-IMAGEMAGICK-6067890",
                "Heap-based Buffer Overflow",
                "critical",
                "imagemagick",
                "8:6.9.11.60+dfsg-1.6",
                None,
            ),
        );

        // search-indexer: internal, CVSSv3 High only.
        let search = org.add_project(ProjectSpec {
            origin: "ecr",
            target: &image("search-indexer"),
            reference: "5.0.2",
            project_type: "deb",
            file: "",
            environment: &["internal", "backend"],
            tags: &[],
        });
        org.add_issue(
            &search,
            issue(
                "SNYK-DEBIAN12-ZLIB-6078901",
                "Integer Overflow or Wraparound",
                "critical",
                "zlib1g",
                "1:1.2.13.dfsg-1",
                Some(v3_high),
            ),
        );

        // legacy-batch: its critical findings are ignored or resolved.
        let legacy = org.add_project(ProjectSpec {
            origin: "ecr",
            target: &image("legacy-batch"),
            reference: "0.9.0",
            project_type: "deb",
            file: "",
            environment: &["external"],
            tags: &[],
        });
        org.add_issue(
            &legacy,
            IssueSpec {
                ignored: true,
                ..issue(
                    "SNYK-DEBIAN12-GLIBC-6089012",
                    "Buffer Overflow",
                    "critical",
                    "libc6",
                    "2.36-9+deb12u3",
                    Some(mature_v4),
                )
            },
        );
        org.add_issue(
            &legacy,
            IssueSpec {
                resolved: true,
                ..issue(
                    "SNYK-DEBIAN12-CURL-6090123",
                    "Heap Overflow",
                    "critical",
                    "curl",
                    "7.88.1-10+deb12u4",
                    Some(mature_v4),
                )
            },
        );

        // old-cron: an inactive project with a critical mature finding.
        let cron = org.add_project(ProjectSpec {
            origin: "ecr",
            target: &image("old-cron"),
            reference: "1.0.0",
            project_type: "deb",
            file: "",
            environment: &["external"],
            tags: &[],
        });
        org.add_issue(
            &cron,
            issue(
                "SNYK-DEBIAN12-SUDO-6101234",
                "Privilege Escalation",
                "critical",
                "sudo",
                "1.9.13p3-1",
                Some(mature_v4),
            ),
        );
        org.projects.iter_mut().find(|p| p.id == cron).expect("just added").status = ProjectStatus::Inactive;

        // acme/checkout: three origins' worth of projects, including Snyk Code.
        let checkout_npm = org.add_project(ProjectSpec {
            origin: "github",
            target: "acme/checkout",
            reference: "main",
            project_type: "npm",
            file: "package.json",
            environment: &["external", "frontend"],
            tags: &[("team", "payments")],
        });
        org.add_issue(
            &checkout_npm,
            issue(
                "SNYK-JS-LODASH-6112345",
                "Prototype Pollution",
                "critical",
                "lodash",
                "4.17.15",
                Some(functional),
            ),
        );
        let checkout_maven = org.add_project(ProjectSpec {
            origin: "github-cloud-app",
            target: "acme/checkout",
            reference: "main",
            project_type: "maven",
            file: "pom.xml",
            environment: &["external"],
            tags: &[("team", "payments")],
        });
        org.add_issue(
            &checkout_maven,
            issue(
                "SNYK-JAVA-ORGYAML-6123456",
                "Arbitrary Code Execution",
                "high",
                "org.yaml:snakeyaml",
                "1.33",
                Some(poc),
            ),
        );
        let checkout_code = org.add_project(ProjectSpec {
            origin: "github",
            target: "acme/checkout",
            reference: "main",
            project_type: "sast",
            file: "",
            environment: &["external"],
            tags: &[("team", "payments")],
        });
        org.add_issue(
            &checkout_code,
            issue("b7c6a5d4-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "SQL Injection", "high", "", "", None),
        );

        // acme/website: github-cloud-app and github origins of one repository.
        let website_npm = org.add_project(ProjectSpec {
            origin: "github-cloud-app",
            target: "acme/website",
            reference: "main",
            project_type: "npm",
            file: "package.json",
            environment: &["external"],
            tags: &[],
        });
        org.add_issue(
            &website_npm,
            issue(
                "SNYK-JS-NEXT-6134567",
                "Server-Side Request Forgery",
                "critical",
                "next",
                "13.4.1",
                Some(poc),
            ),
        );
        org.add_project(ProjectSpec {
            origin: "github",
            target: "acme/website",
            reference: "main",
            project_type: "dockerfile",
            file: "Dockerfile",
            environment: &["external"],
            tags: &[],
        });

        // acme/internal-tools: GitHub Enterprise, internal, no exploit details.
        let tools = org.add_project(ProjectSpec {
            origin: "github-enterprise",
            target: "acme/internal-tools",
            reference: "develop",
            project_type: "pip",
            file: "requirements.txt",
            environment: &["internal"],
            tags: &[],
        });
        org.add_issue(
            &tools,
            issue(
                "SNYK-PYTHON-PYYAML-6145678",
                "Arbitrary Code Execution",
                "critical",
                "pyyaml",
                "5.3",
                None,
            ),
        );
        org
    }

    /// A large org for benchmarks: `projects` projects over images (OS + app per tag) and
    /// repositories, and `issues` issues spread over them (about one in twenty critical).
    pub fn synthetic(id: &str, projects: usize, issues: usize) -> SimOrg {
        let mut org = SimOrg::new(id, "Synthetic", "synthetic");
        let severities = ["low", "medium", "medium", "high", "low", "medium", "high", "low", "medium", "low"];
        for n in 0..projects {
            let (origin, target, reference, project_type, file) = if n % 4 == 3 {
                (
                    "github",
                    format!("acme/repo-{}", n / 8),
                    "main".to_owned(),
                    "npm",
                    "package.json".to_owned(),
                )
            } else {
                let app = n % 2 == 1;
                (
                    "ecr",
                    format!("{REGISTRY}/service-{}", n / 12),
                    format!("1.{}.0", (n / 4) % 3),
                    if app { "npm" } else { "deb" },
                    if app { "/app/package.json".to_owned() } else { String::new() },
                )
            };
            let environment: &[&str] = if n % 3 == 0 { &["external"] } else { &["internal"] };
            org.add_project(ProjectSpec {
                origin,
                target: &target,
                reference: &reference,
                project_type,
                file: &file,
                environment,
                tags: &[("team", if n % 2 == 0 { "payments" } else { "platform" })],
            });
        }
        let ids: Vec<String> = org.projects.iter().map(|p| p.id.clone()).collect();
        for n in 0..issues {
            let project = &ids[n % ids.len().max(1)];
            let severity = if n % 20 == 0 { "critical" } else { severities[n % severities.len()] };
            let key = format!("SNYK-SYN-PKG{}-{}", n % 500, 7_000_000 + n % 2_000);
            let maturity: Option<&[(&str, &str)]> = match n % 7 {
                0 => Some(&[("CVSSv4", "Attacked")]),
                1 | 2 => Some(&[("CVSSv4", "Proof of Concept")]),
                3 => None,
                _ => Some(&[("CVSSv4", "Unreported")]),
            };
            org.add_issue(
                project,
                IssueSpec {
                    key: &key,
                    title: "Synthetic vulnerability",
                    severity,
                    package: &format!("pkg{}", n % 500),
                    version: "1.0.0",
                    maturity,
                    ignored: n % 97 == 0,
                    resolved: false,
                },
            );
        }
        org
    }
}

/// FNV-1a, for stable ids from names.
fn fnv(text: &str) -> u64 {
    text.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
        & 0xffff_ffff_ffff
}
