//! Loading the exploitation feeds (CISA KEV, EPSS) and the policy profile for the Snyk policy.
//!
//! A source is a file path or an `http(s)://` URL. A file, or a URL at start, that cannot be
//! read stops triage with the reason (a feed the operator asked for is never silently absent
//! from the first event on). A URL is fetched again every `--feeds-refresh` (a day); a refresh
//! that fails, or returns a document that is not the feed, changes nothing: the last good copy
//! stays in use and the failure is logged and counted. The text of each good copy read from a URL
//! is kept in the `feeds` object store ([`FeedCopies`]), so a triage (re)started during the feed's
//! outage starts from it. Parsing is the policy crate's, pure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::object_store::{ObjectMetadata, ObjectStore};
use snyk_policy::feeds::{EpssScores, FeedError, Feeds, KevCatalog};
use snyk_policy::{Profile, ProfileError, SnykSettings};
use tokio::io::AsyncReadExt;

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

impl FeedArgs {
    /// Whether a feed is fetched from a URL (refreshed, and its copy kept).
    pub fn any_url(&self) -> bool {
        [&self.kev_catalog, &self.epss_scores].iter().any(|s| s.as_deref().is_some_and(is_url))
    }
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

/// Where the last good copy of each feed fetched from a URL is kept: the `feeds` object store
/// (its own stream, `OBJ_feeds`, made by the topology). A triage started while the feed's site is
/// down, or answering a page that is not the feed, then starts with the copy it last read
/// instead of refusing to start; a copy kept for another URL is not used (the operator changed
/// the source on purpose). Without a store (explain, tests), nothing is kept.
#[derive(Clone, Default)]
pub struct FeedCopies {
    store: Option<ObjectStore>,
}

/// Why a kept copy could not be written or read (logged: the copy is a fallback, never a reason
/// to stop).
#[derive(Debug, thiserror::Error)]
enum CopyError {
    #[error("{0}")]
    Store(String),
    #[error("the copy kept is of {kept}, not of the configured source")]
    OtherSource { kept: String },
}

/// The metadata key naming the URL a kept copy was fetched from.
const SOURCE_KEY: &str = "source";

impl FeedCopies {
    /// Copies kept nowhere.
    pub fn none() -> Self {
        Self::default()
    }

    /// Where the copies of the feeds `args` names go: the topology's `feeds` object store when
    /// a feed comes from a URL, nowhere when all are files (nothing to keep).
    pub async fn for_feeds(
        args: &FeedArgs,
        js: &async_nats::jetstream::Context,
    ) -> Result<Self, bus::BusError> {
        if args.any_url() { Self::in_store(js).await } else { Ok(Self::none()) }
    }

    /// Copies kept in the topology's `feeds` object store.
    pub async fn in_store(js: &async_nats::jetstream::Context) -> Result<Self, bus::BusError> {
        let store = js.get_object_store(bus::topology::FEEDS).await.map_err(|e| bus::BusError::Topology {
            what: format!("object store {}", bus::topology::FEEDS),
            source: Box::new(e),
        })?;
        Ok(Self { store: Some(store) })
    }

    async fn keep(&self, object: &str, source: &str, text: &str) {
        let Some(store) = &self.store else { return };
        let meta = ObjectMetadata {
            name: object.to_owned(),
            description: Some("the last good copy triage read".into()),
            metadata: [(SOURCE_KEY.to_owned(), source.to_owned())].into(),
            ..Default::default()
        };
        if let Err(error) = store.put(meta, &mut text.as_bytes()).await {
            metrics::counter!("itk_feed_copy_failures_total", "feed" => object.to_owned()).increment(1);
            tracing::warn!(object, %error, "Could not keep the feed's copy; the feed itself is in use.");
        }
    }

    async fn last_good(&self, object: &str, source: &str) -> Result<Option<(String, String)>, CopyError> {
        let Some(store) = &self.store else { return Ok(None) };
        let info = match store.info(object).await {
            Ok(info) => info,
            Err(e) if e.kind() == async_nats::jetstream::object_store::InfoErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(CopyError::Store(e.to_string())),
        };
        let kept = info.metadata.get(SOURCE_KEY).cloned().unwrap_or_default();
        if kept != source {
            return Err(CopyError::OtherSource { kept });
        }
        let mut object_reader = store.get(object).await.map_err(|e| CopyError::Store(e.to_string()))?;
        let mut text = String::new();
        object_reader.read_to_string(&mut text).await.map_err(|e| CopyError::Store(e.to_string()))?;
        let kept_at = info.modified.map(|t| t.to_string()).unwrap_or_default();
        Ok(Some((text, kept_at)))
    }
}

/// One feed: its object name in the store, and how its text is read.
struct FeedKind<T> {
    object: &'static str,
    parse: fn(&str) -> Result<T, FeedError>,
    loaded: fn(&str, &T),
}

const KEV: FeedKind<KevCatalog> =
    FeedKind { object: "kev-catalog", parse: KevCatalog::parse, loaded: kev_loaded };
const EPSS: FeedKind<EpssScores> =
    FeedKind { object: "epss-scores", parse: EpssScores::parse, loaded: epss_loaded };

fn kev_loaded(source: &str, catalog: &KevCatalog) {
    for skipped in &catalog.rejected {
        tracing::warn!(source, position = skipped.position, reason = %skipped.reason, "KEV record skipped.");
    }
    metrics::gauge!("itk_feed_records", "feed" => "kev").set(catalog.len() as f64);
    metrics::gauge!("itk_feed_rejected", "feed" => "kev").set(catalog.rejected.len() as f64);
    tracing::info!(source, version = %catalog.catalog_version, listed = catalog.len(), skipped = catalog.rejected.len(), "KEV catalog loaded.");
}

fn epss_loaded(source: &str, scores: &EpssScores) {
    for skipped in scores.rejected.iter().take(20) {
        tracing::warn!(source, line = skipped.position, reason = %skipped.reason, "EPSS row skipped.");
    }
    metrics::gauge!("itk_feed_records", "feed" => "epss").set(scores.len() as f64);
    metrics::gauge!("itk_feed_rejected", "feed" => "epss").set(scores.rejected.len() as f64);
    tracing::info!(source, model = %scores.model_version, date = %scores.score_date, scored = scores.len(), skipped = scores.rejected.len(), "EPSS scores loaded.");
}

/// Whether a failed fetch may fall back to the kept copy: at start yes; at a refresh the copy in
/// memory is already the last good one.
#[derive(Clone, Copy, PartialEq)]
enum Fallback {
    KeptCopy,
    None,
}

/// The feed at `source`, read and parsed; a URL's good text is kept in `copies`.
async fn load<T>(
    kind: &FeedKind<T>,
    source: &str,
    copies: &FeedCopies,
    fallback: Fallback,
) -> Result<T, FeedLoadError> {
    let parse = |text: &str| {
        (kind.parse)(text).map_err(|error| FeedLoadError::Feed { source_name: source.to_owned(), error })
    };
    let fetched = read_source(source).await.and_then(|text| parse(&text).map(|feed| (feed, text)));
    match fetched {
        Ok((feed, text)) => {
            (kind.loaded)(source, &feed);
            if is_url(source) {
                copies.keep(kind.object, source, &text).await;
            }
            Ok(feed)
        }
        Err(error) if is_url(source) && fallback == Fallback::KeptCopy => {
            match copies.last_good(kind.object, source).await {
                Ok(Some((text, kept_at))) => {
                    let feed = parse(&text)?;
                    metrics::counter!("itk_feed_kept_copy_used_total", "feed" => kind.object).increment(1);
                    tracing::warn!(%error, kept_at, object = kind.object, "Feed unreadable at start; using the last good copy kept.");
                    (kind.loaded)(source, &feed);
                    Ok(feed)
                }
                Ok(None) => Err(error),
                Err(copy_error) => {
                    tracing::warn!(%copy_error, object = kind.object, "No usable kept copy of the feed.");
                    Err(error)
                }
            }
        }
        Err(error) => Err(error),
    }
}

/// The feeds named in `args`, each loaded once; a URL that cannot be read falls back to the copy
/// kept in `copies` when there is one.
pub async fn load_feeds(args: &FeedArgs, copies: &FeedCopies) -> Result<Feeds, FeedLoadError> {
    let mut feeds = Feeds::default();
    if let Some(source) = &args.kev_catalog {
        feeds.kev = Some(Arc::new(load(&KEV, source, copies, Fallback::KeptCopy).await?));
    }
    if let Some(source) = &args.epss_scores {
        feeds.epss = Some(Arc::new(load(&EPSS, source, copies, Fallback::KeptCopy).await?));
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

/// The next copy of the feeds after a refresh: each URL fetched again (and its copy kept), a
/// failure keeping that feed's last good copy.
pub async fn refreshed(args: &FeedArgs, current: &Feeds, copies: &FeedCopies) -> Feeds {
    let mut next = current.clone();
    if let Some(source) = args.kev_catalog.as_deref().filter(|s| is_url(s)) {
        match load(&KEV, source, copies, Fallback::None).await {
            Ok(catalog) => next.kev = Some(Arc::new(catalog)),
            Err(error) => refresh_failed("kev", &error),
        }
    }
    if let Some(source) = args.epss_scores.as_deref().filter(|s| is_url(s)) {
        match load(&EPSS, source, copies, Fallback::None).await {
            Ok(scores) => next.epss = Some(Arc::new(scores)),
            Err(error) => refresh_failed("epss", &error),
        }
    }
    next
}

fn refresh_failed(feed: &'static str, error: &FeedLoadError) {
    metrics::counter!("itk_feed_refresh_failures_total", "feed" => feed).increment(1);
    tracing::warn!(feed, %error, "Feed refresh failed; the last good copy stays in use.");
}
