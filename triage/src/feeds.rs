//! Loading the exploitation feeds (CISA KEV, EPSS) and the policy profile for the Snyk policy.
//!
//! A source is a file path or an `http(s)://` URL. A file, or a URL at start, that cannot be
//! read stops triage with the reason (a feed the operator asked for is never silently absent
//! from the first event on). A URL is fetched again every `--feeds-refresh` (a day); a refresh
//! that fails, or returns a document that is not the feed, changes nothing: the last good copy
//! stays in use and the failure is logged and counted. Parsing is the policy crate's, pure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use snyk_policy::feeds::{EpssScores, FeedError, Feeds, KevCatalog};
use snyk_policy::{Profile, ProfileError, SnykSettings};

/// Where the feeds and the profile come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FeedArgs {
    /// CISA KEV catalog JSON: a file path or URL (the official feed is
    /// https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json).
    #[arg(long = "kev-catalog", env = "ITK_KEV_CATALOG")]
    pub kev_catalog: Option<String>,
    /// EPSS scores CSV (`#model_version:…` line, then `cve,epss,percentile`), uncompressed: a
    /// file path or URL.
    #[arg(long = "epss-scores", env = "ITK_EPSS_SCORES")]
    pub epss_scores: Option<String>,
    /// How often feeds given as URLs are fetched again.
    #[arg(long = "feeds-refresh", env = "ITK_FEEDS_REFRESH", default_value = "24h",
          value_parser = service_kit::args::parse_duration)]
    pub refresh: Duration,
    /// Policy profile (TOML): lanes, due rules, KEV and EPSS on or off. Without it, the seed's.
    #[arg(long = "policy-profile", env = "ITK_POLICY_PROFILE")]
    pub policy_profile: Option<PathBuf>,
}

/// Why a feed or the profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FeedLoadError {
    #[error("cannot read {source_name}: {reason}")]
    Read { source_name: String, reason: String },
    #[error("{source_name}: {error}")]
    Feed { source_name: String, error: FeedError },
    #[error("{path}: {error}")]
    Profile { path: String, error: ProfileError },
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The text of a source.
pub async fn read_source(source: &str) -> Result<String, FeedLoadError> {
    let fail = |reason: String| FeedLoadError::Read { source_name: source.to_owned(), reason };
    if !is_url(source) {
        return tokio::fs::read_to_string(source).await.map_err(|e| fail(e.to_string()));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = client.get(source).send().await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status().as_u16())));
    }
    response.text().await.map_err(|e| fail(e.to_string()))
}

async fn load_kev(source: &str) -> Result<KevCatalog, FeedLoadError> {
    let catalog = KevCatalog::parse(&read_source(source).await?)
        .map_err(|error| FeedLoadError::Feed { source_name: source.to_owned(), error })?;
    for skipped in &catalog.rejected {
        tracing::warn!(source, position = skipped.position, reason = %skipped.reason, "KEV record skipped.");
    }
    metrics::gauge!("itk_feed_records", "feed" => "kev").set(catalog.len() as f64);
    metrics::gauge!("itk_feed_rejected", "feed" => "kev").set(catalog.rejected.len() as f64);
    tracing::info!(source, version = %catalog.catalog_version, listed = catalog.len(), skipped = catalog.rejected.len(), "KEV catalog loaded.");
    Ok(catalog)
}

async fn load_epss(source: &str) -> Result<EpssScores, FeedLoadError> {
    let scores = EpssScores::parse(&read_source(source).await?)
        .map_err(|error| FeedLoadError::Feed { source_name: source.to_owned(), error })?;
    for skipped in scores.rejected.iter().take(20) {
        tracing::warn!(source, line = skipped.position, reason = %skipped.reason, "EPSS row skipped.");
    }
    metrics::gauge!("itk_feed_records", "feed" => "epss").set(scores.len() as f64);
    metrics::gauge!("itk_feed_rejected", "feed" => "epss").set(scores.rejected.len() as f64);
    tracing::info!(source, model = %scores.model_version, date = %scores.score_date, scored = scores.len(), skipped = scores.rejected.len(), "EPSS scores loaded.");
    Ok(scores)
}

/// The feeds named in `args`, each loaded once.
pub async fn load_feeds(args: &FeedArgs) -> Result<Feeds, FeedLoadError> {
    let mut feeds = Feeds::default();
    if let Some(source) = &args.kev_catalog {
        feeds.kev = Some(Arc::new(load_kev(source).await?));
    }
    if let Some(source) = &args.epss_scores {
        feeds.epss = Some(Arc::new(load_epss(source).await?));
    }
    Ok(feeds)
}

/// The profile named in `args`, or the seed's.
pub fn load_profile(args: &FeedArgs, settings: &SnykSettings) -> Result<Profile, FeedLoadError> {
    let Some(path) = &args.policy_profile else { return Ok(Profile::seed(settings)) };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| FeedLoadError::Read { source_name: shown.clone(), reason: e.to_string() })?;
    Profile::parse(&text, settings).map_err(|error| FeedLoadError::Profile { path: shown, error })
}

/// The next copy of the feeds after a refresh: each URL fetched again, a failure keeping that
/// feed's last good copy.
pub async fn refreshed(args: &FeedArgs, current: &Feeds) -> Feeds {
    let mut next = current.clone();
    if let Some(source) = args.kev_catalog.as_deref().filter(|s| is_url(s)) {
        match load_kev(source).await {
            Ok(catalog) => next.kev = Some(Arc::new(catalog)),
            Err(error) => {
                metrics::counter!("itk_feed_refresh_failures_total", "feed" => "kev").increment(1);
                tracing::warn!(%error, "KEV refresh failed; the last good copy stays in use.");
            }
        }
    }
    if let Some(source) = args.epss_scores.as_deref().filter(|s| is_url(s)) {
        match load_epss(source).await {
            Ok(scores) => next.epss = Some(Arc::new(scores)),
            Err(error) => {
                metrics::counter!("itk_feed_refresh_failures_total", "feed" => "epss").increment(1);
                tracing::warn!(%error, "EPSS refresh failed; the last good copy stays in use.");
            }
        }
    }
    next
}
