//! ingest-snyk's settings: one typed clap struct, every setting a flag and an environment
//! variable.

use std::str::FromStr;
use std::time::Duration;

use service_kit::{Clock, HttpArgs, NatsArgs, Secret, TelemetryArgs, TopologyArgs};

/// Snyk's regional REST base URLs.
pub const REGIONS: [(&str, &str); 4] = [
    ("us-01", "https://api.snyk.io/rest"),
    ("us-02", "https://api.us.snyk.io/rest"),
    ("eu-01", "https://api.eu.snyk.io/rest"),
    ("au-01", "https://api.au.snyk.io/rest"),
];

/// One Snyk organisation to ingest, and where its REST API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgTarget {
    pub id: String,
    /// Base URL ending in `/rest`, or `None` for `--snyk-api-url`.
    pub base_url: Option<String>,
}

impl FromStr for OrgTarget {
    type Err = String;

    /// `ORG_ID`, `ORG_ID@REGION` (us-01, us-02, eu-01, au-01) or `ORG_ID@https://…/rest`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, location) = match text.split_once('@') {
            Some((id, location)) => (id.trim(), Some(location.trim())),
            None => (text.trim(), None),
        };
        if !is_uuid(id) {
            return Err(format!("{id:?} is not a Snyk org id (a UUID); expected ORG_ID[@REGION|@BASE_URL]"));
        }
        let base_url = match location {
            None => None,
            Some(location) => {
                match REGIONS.iter().find(|(region, _)| region.eq_ignore_ascii_case(location)) {
                    Some((_, url)) => Some((*url).to_owned()),
                    None if location.starts_with("https://") || location.starts_with("http://") => {
                        Some(location.trim_end_matches('/').to_owned())
                    }
                    None => {
                        return Err(format!(
                            "{location:?} is neither a Snyk region (us-01, us-02, eu-01, au-01) nor an http(s) base URL"
                        ));
                    }
                }
            }
        };
        Ok(OrgTarget { id: id.to_ascii_lowercase(), base_url })
    }
}

/// Whether `id` has the shape of a UUID (as Snyk's org and group ids do).
pub(crate) fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id
            .chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// A token for the orgs at one REST base URL.
#[derive(Debug, Clone)]
pub struct RegionToken {
    pub base_url: String,
    pub token: Secret,
}

impl FromStr for RegionToken {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Never echo the text: it holds a token.
        let Some((location, token)) = text.rsplit_once('=') else {
            return Err("expected REGION=TOKEN or BASE_URL=TOKEN".into());
        };
        let location = location.trim();
        let base_url = match REGIONS.iter().find(|(region, _)| region.eq_ignore_ascii_case(location)) {
            Some((_, url)) => (*url).to_owned(),
            None if location.starts_with("https://") || location.starts_with("http://") => {
                location.trim_end_matches('/').to_owned()
            }
            None => return Err("the part before = is neither a Snyk region (us-01, us-02, eu-01, au-01) nor an http(s) base URL".into()),
        };
        if token.trim().is_empty() {
            return Err("the token after = is empty".into());
        }
        Ok(RegionToken { base_url, token: Secret::new(token.trim()) })
    }
}

/// A group and where its API is (read as an org target: the same UUID and location forms).
fn group_target(text: &str) -> Result<OrgTarget, String> {
    text.parse::<OrgTarget>()
        .map_err(|e| e.replace("Snyk org id", "Snyk group id").replace("ORG_ID", "GROUP_ID"))
}

fn api_version(text: &str) -> Result<String, String> {
    let date = text.split('~').next().unwrap_or(text);
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|_| text.to_owned())
        .map_err(|_| format!("{text:?} is not a Snyk API version (YYYY-MM-DD, optionally ~beta)"))
}

fn severity_list(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 5] = ["info", "low", "medium", "high", "critical"];
    let levels: Vec<&str> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if levels.is_empty() || levels.iter().any(|l| !LEVELS.contains(l)) {
        return Err(format!("{text:?}: expected a comma-separated list of {}", LEVELS.join(", ")));
    }
    Ok(levels.join(","))
}

/// Where a started service can be reached (set once its HTTP server is bound).
#[derive(Debug, Clone, Default)]
pub struct BoundAddress(std::sync::Arc<std::sync::OnceLock<std::net::SocketAddr>>);

impl BoundAddress {
    pub fn get(&self) -> Option<std::net::SocketAddr> {
        self.0.get().copied()
    }

    pub(crate) fn set(&self, address: std::net::SocketAddr) {
        let _ = self.0.set(address);
    }
}

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ingest-snyk", version, about = "Polls the Snyk REST API and receives Snyk webhooks.")]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Snyk org to ingest: ORG_ID, ORG_ID@REGION (us-01, us-02, eu-01, au-01) or
    /// ORG_ID@https://…/rest. Repeat the flag, or separate with commas.
    #[arg(
        long = "snyk-org",
        visible_alias = "snyk-orgs",
        env = "SNYK_ORGS",
        value_delimiter = ',',
        required_unless_present_any = ["discover_orgs", "groups"]
    )]
    pub orgs: Vec<OrgTarget>,

    /// Also ingest every org of this Snyk group (`GET /rest/groups/{group_id}/orgs`, at start):
    /// GROUP_ID, GROUP_ID@REGION or GROUP_ID@https://…/rest, narrowed by --snyk-org-include and
    /// --snyk-org-exclude. Repeat the flag, or separate with commas.
    #[arg(long = "snyk-group", visible_alias = "snyk-groups", env = "SNYK_GROUPS", value_delimiter = ',',
          value_parser = group_target)]
    pub groups: Vec<OrgTarget>,

    /// Also ingest every org the token can see (`GET /rest/orgs` at `--snyk-api-url`, at start),
    /// narrowed by --snyk-org-include and --snyk-org-exclude.
    #[arg(long = "snyk-discover-orgs", env = "SNYK_DISCOVER_ORGS", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub discover_orgs: bool,

    /// Discovered orgs to keep, by id or slug (all when empty).
    #[arg(long = "snyk-org-include", env = "SNYK_ORG_INCLUDE", value_delimiter = ',')]
    pub org_include: Vec<String>,

    /// Discovered orgs to leave out, by id or slug.
    #[arg(long = "snyk-org-exclude", env = "SNYK_ORG_EXCLUDE", value_delimiter = ',')]
    pub org_exclude: Vec<String>,

    /// REST base URL for orgs given without a region.
    #[arg(long = "snyk-api-url", env = "SNYK_API_URL", default_value = "https://api.snyk.io/rest")]
    pub api_url: String,

    /// Snyk API token (a service account's), sent as `Authorization: token …`.
    #[arg(long = "snyk-token", env = "SNYK_TOKEN", hide_env_values = true)]
    pub token: Secret,

    /// Another token for the orgs of one Region: REGION=TOKEN (us-01, us-02, eu-01, au-01) or
    /// BASE_URL=TOKEN; repeat the flag. Orgs elsewhere use --snyk-token.
    /// (Read as secrets, so that a refused value is never echoed; see [`Config::region_tokens`].)
    #[arg(
        long = "snyk-region-token",
        env = "SNYK_REGION_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub region_tokens: Vec<Secret>,

    /// The pinned REST API version.
    #[arg(long = "snyk-api-version", env = "SNYK_API_VERSION", default_value = "2024-10-15", value_parser = api_version)]
    pub api_version: String,

    /// How often every org is fully synced (webhooks miss imports, Snyk Code, attribute changes
    /// and lost deliveries); 0 turns scheduled full syncs off.
    #[arg(long = "snyk-reconcile-interval", env = "SNYK_RECONCILE_INTERVAL",
          default_value = "1h", value_parser = service_kit::args::parse_duration)]
    pub reconcile_interval: Duration,

    /// How often issues updated since the last pull are fetched (`updated_after`) and their
    /// projects refreshed, between full syncs; 0 turns incremental pulls off.
    #[arg(long = "snyk-poll-interval", env = "SNYK_POLL_INTERVAL",
          default_value = "5m", value_parser = service_kit::args::parse_duration)]
    pub poll_interval: Duration,

    /// Issue severities fetched (`effective_severity_level`); must include triage's floor.
    #[arg(long = "snyk-issue-severities", env = "SNYK_ISSUE_SEVERITIES", default_value = "critical",
          value_parser = severity_list)]
    pub issue_severities: String,

    /// Page size of REST listings (10–100, in tens).
    #[arg(long = "snyk-page-limit", env = "SNYK_PAGE_LIMIT", default_value_t = 100,
          value_parser = page_limit)]
    pub page_limit: u32,

    /// REST requests per minute for the token (Snyk allows 1620).
    #[arg(long = "snyk-rate-limit", env = "SNYK_RATE_LIMIT", default_value_t = 1500,
          value_parser = clap::value_parser!(u32).range(1..=1620))]
    pub rate_limit: u32,

    /// Attempts of one request on 429, 5xx and transport errors before the sync gives up.
    #[arg(long = "snyk-max-attempts", env = "SNYK_MAX_ATTEMPTS", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,

    /// First backoff after a 429 without Retry-After or a 5xx; doubles each time, with jitter.
    #[arg(long = "snyk-backoff", env = "SNYK_BACKOFF", default_value = "1s", value_parser = service_kit::args::parse_duration)]
    pub backoff: Duration,

    /// Largest REST response read, in bytes; a larger page stops the listing with an error
    /// instead of filling memory.
    #[arg(long = "snyk-max-response-bytes", env = "SNYK_MAX_RESPONSE_BYTES",
          default_value_t = crate::client::DEFAULT_MAX_RESPONSE_BYTES,
          value_parser = clap::value_parser!(u64).range(65_536..=1_073_741_824))]
    pub max_response_bytes: u64,

    /// Bytes of an org's issues (as JSON) a full sync holds to join them to their projects
    /// with the fewest calls (one per 100 issues); an org with more is walked project by
    /// project (one call per project), so memory stays bounded however large the org.
    #[arg(long = "snyk-sync-issue-budget", env = "SNYK_SYNC_ISSUE_BUDGET",
          default_value_t = crate::sync::DEFAULT_ISSUE_BUDGET_BYTES,
          value_parser = clap::value_parser!(u64).range(0..=4_294_967_296))]
    pub issue_budget_bytes: u64,

    /// Shared secret of the Snyk webhook; without it `POST /webhooks/snyk` is not served.
    #[arg(long = "snyk-webhook-secret", env = "SNYK_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,

    /// Largest webhook body accepted, in bytes (413 above).
    #[arg(long = "snyk-webhook-max-bytes", env = "SNYK_WEBHOOK_MAX_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub webhook_max_bytes: u64,

    /// Webhook deliveries for a project refreshed less than this ago do not refresh it again
    /// at once: one more refresh runs at the end of the window, however many arrive (replays
    /// with new transport ids cost little); 0 refreshes on every delivery.
    #[arg(long = "snyk-webhook-coalesce", env = "SNYK_WEBHOOK_COALESCE", default_value = "30s",
          value_parser = service_kit::args::parse_duration)]
    pub webhook_coalesce: Duration,

    #[arg(skip)]
    pub clock: Clock,

    /// Set to the HTTP address once bound (tests listen on port 0).
    #[arg(skip)]
    pub bound: BoundAddress,
}

fn page_limit(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (10..=100).contains(&n) && n % 10 == 0 => Ok(n),
        _ => Err(format!("{text:?}: Snyk pages hold 10 to 100 items, in tens")),
    }
}

impl Config {
    /// The tokens per Region, validated (the message never repeats the value).
    pub fn region_tokens(&self) -> Result<Vec<RegionToken>, String> {
        self.region_tokens
            .iter()
            .enumerate()
            .map(|(n, secret)| {
                secret.expose().parse().map_err(|e| format!("--snyk-region-token value {}: {e}", n + 1))
            })
            .collect()
    }

    /// Whether a discovered org (id, slug) is kept by the include and exclude lists.
    pub fn keeps_discovered(&self, id: &str, slug: &str) -> bool {
        let named = |list: &[String]| {
            list.iter().any(|n| n.trim().eq_ignore_ascii_case(id) || n.trim().eq_ignore_ascii_case(slug))
        };
        (self.org_include.is_empty() || named(&self.org_include)) && !named(&self.org_exclude)
    }

    /// The REST base URL of an org.
    pub fn base_url(&self, org: &OrgTarget) -> String {
        org.base_url.clone().unwrap_or_else(|| self.api_url.trim_end_matches('/').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const ORG: &str = "0e8a11c4-7d2b-4c55-9e61-3f2a1b0c9d84";

    #[test]
    fn orgs_with_regions_and_urls() {
        let config = Config::parse_from([
            "ingest-snyk",
            "--snyk-token",
            "t0ken",
            "--snyk-org",
            ORG,
            "--snyk-orgs",
            &format!("{}@eu-01,{}@http://127.0.0.1:9/rest/", &ORG.replace('0', "1"), &ORG.replace('0', "2")),
        ]);
        assert_eq!(config.orgs.len(), 3);
        assert_eq!(config.base_url(&config.orgs[0]), "https://api.snyk.io/rest");
        assert_eq!(config.base_url(&config.orgs[1]), "https://api.eu.snyk.io/rest");
        assert_eq!(config.base_url(&config.orgs[2]), "http://127.0.0.1:9/rest");
        assert!(!format!("{config:?}").contains("t0ken"), "the token never prints");
    }

    #[test]
    fn a_token_per_region_never_prints() {
        let config = Config::parse_from([
            "ingest-snyk",
            "--snyk-token",
            "t0ken",
            "--snyk-org",
            ORG,
            "--snyk-region-token",
            "eu-01=eu-s3cret",
            "--snyk-region-token",
            "http://127.0.0.1:9/rest/=local-s3cret",
        ]);
        let tokens = config.region_tokens().unwrap();
        let urls: Vec<&str> = tokens.iter().map(|r| r.base_url.as_str()).collect();
        assert_eq!(urls, ["https://api.eu.snyk.io/rest", "http://127.0.0.1:9/rest"]);
        assert!(!format!("{config:?} {tokens:?}").contains("s3cret"));
        let config = Config::parse_from([
            "x",
            "--snyk-token",
            "t",
            "--snyk-org",
            ORG,
            "--snyk-region-token",
            "mars=s3cret",
        ]);
        let err = config.region_tokens().unwrap_err();
        assert!(
            err.contains("--snyk-region-token") && err.contains("region") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn bad_settings_fail_with_the_flag_named() {
        let err = Config::try_parse_from(["x", "--snyk-token", "t", "--snyk-org", "globex"]).unwrap_err();
        assert!(err.to_string().contains("not a Snyk org id"), "{err}");
        let err = Config::try_parse_from(["x", "--snyk-token", "t", "--snyk-org", &format!("{ORG}@mars")])
            .unwrap_err();
        assert!(err.to_string().contains("region"), "{err}");
        let err = Config::try_parse_from(["x", "--snyk-org", ORG]).unwrap_err();
        assert!(err.to_string().contains("--snyk-token"), "{err}");
        let err =
            Config::try_parse_from(["x", "--snyk-token", "t", "--snyk-org", ORG, "--snyk-page-limit", "55"])
                .unwrap_err();
        assert!(err.to_string().contains("--snyk-page-limit"), "{err}");
        let err = Config::try_parse_from([
            "x",
            "--snyk-token",
            "t",
            "--snyk-org",
            ORG,
            "--snyk-rate-limit",
            "5000",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--snyk-rate-limit"), "{err}");
        let err = Config::try_parse_from([
            "x",
            "--snyk-token",
            "t",
            "--snyk-org",
            ORG,
            "--snyk-issue-severities",
            "severe",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--snyk-issue-severities"), "{err}");
    }
}
