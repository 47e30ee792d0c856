//! The Snyk REST client: pinned version, `Authorization: token`, JSON:API pages followed
//! through `links.next`, one rate limiter per token, backoff on 429 (honouring `Retry-After`)
//! and 5xx.

use std::sync::Arc;
use std::time::Duration;

use bus::{Classify, ErrorClass};
use rand::Rng;
use service_kit::Secret;
use snyk_policy::rest::{Issue, OrgResource, Project, ReadPage, RejectedResource};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Why a request or a listing failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Snyk refused the token ({status}) for {url}: check --snyk-token and its org access")]
    Unauthorized { url: String, status: u16 },
    #[error("Snyk answered {status} for {url}: {detail}")]
    Status { url: String, status: u16, detail: String },
    #[error("Snyk kept failing for {url} after {attempts} attempts: {last}")]
    Exhausted { url: String, attempts: u32, last: String },
    #[error("a page from {url} is malformed: {reason}")]
    Malformed { url: String, reason: String, body: bytes::Bytes },
    #[error("the next-page link {link} from {url} is not followed: {reason}")]
    LinkRefused { url: String, link: String, reason: LinkRefused },
    #[error("the listing at {url} repeats the cursor {cursor}; stopped instead of looping")]
    CursorRepeated { url: String, cursor: String },
    #[error("the response from {url} is larger than {limit} bytes (--snyk-max-response-bytes)")]
    TooLarge { url: String, limit: u64 },
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Unauthorized { .. } => ErrorClass::Pause { after: Duration::from_secs(60) },
            ApiError::Exhausted { .. } => ErrorClass::Retry { after: None },
            ApiError::Status { status, .. } if *status >= 500 || *status == 429 => {
                ErrorClass::Retry { after: None }
            }
            ApiError::Status { .. }
            | ApiError::Malformed { .. }
            | ApiError::LinkRefused { .. }
            | ApiError::CursorRepeated { .. }
            | ApiError::TooLarge { .. } => ErrorClass::DeadLetter,
        }
    }
}

/// Spaces requests evenly under a per-minute budget; a 429 pushes every request back.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> Self {
        RateLimiter { interval: Duration::from_secs(60) / requests.max(1), next: Mutex::new(Instant::now()) }
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// No request before `until` (Snyk said so with a 429).
    pub async fn hold_until(&self, until: Instant) {
        let mut next = self.next.lock().await;
        *next = (*next).max(until);
    }
}

/// How a client retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Duration,
}

/// A client for one token, shared by every org that uses it.
#[derive(Clone)]
pub struct SnykClient {
    http: reqwest::Client,
    token: Secret,
    version: String,
    page_limit: u32,
    limiter: Arc<RateLimiter>,
    retry: RetryPolicy,
    max_response_bytes: u64,
}

/// A listing read page by page, following `links.next` until it is absent. A link to another
/// origin is refused, and a URL or cursor seen twice stops the listing: a server that hands
/// back the same cursor would otherwise be paged for ever.
pub struct Pager<T> {
    base_url: String,
    next: Option<String>,
    seen_urls: std::collections::HashSet<String>,
    seen_cursors: std::collections::HashSet<String>,
    parse: fn(&[u8]) -> Result<ReadPage<T>, serde_json::Error>,
}

impl<T> Pager<T> {
    fn new(
        base_url: &str,
        first: String,
        parse: fn(&[u8]) -> Result<ReadPage<T>, serde_json::Error>,
    ) -> Self {
        Pager {
            base_url: base_url.to_owned(),
            next: Some(first),
            seen_urls: Default::default(),
            seen_cursors: Default::default(),
            parse,
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self, client: &SnykClient) -> Result<Option<ReadPage<T>>, ApiError> {
        let Some(url) = self.next.take() else { return Ok(None) };
        let cursor = cursor_of(&url);
        let repeated_cursor = cursor.as_ref().is_some_and(|c| !self.seen_cursors.insert(c.clone()));
        if !self.seen_urls.insert(url.clone()) || repeated_cursor {
            let cursor = quoted(cursor.as_deref().unwrap_or(&url));
            return Err(ApiError::CursorRepeated { url, cursor });
        }
        let body = client.get(&url).await?;
        let page = (self.parse)(&body).map_err(|error| ApiError::Malformed {
            url: url.clone(),
            reason: error.to_string(),
            body,
        })?;
        if let Some(link) = page.links.next_href() {
            let resolved = resolve_link(&self.base_url, link).map_err(|reason| ApiError::LinkRefused {
                url: url.clone(),
                link: quoted(link),
                reason,
            })?;
            self.next = Some(resolved);
        }
        Ok(Some(page))
    }
}

/// What a listing gave: the resources read, and those set aside with why.
#[derive(Debug, Clone, Default)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub rejected: Vec<RejectedResource>,
}

/// The largest response read unless configured otherwise: a page of 100 issues is well under
/// a megabyte; a page far above this is not a page Snyk meant to send.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a next-page link is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    #[error("the configured API base {0:?} is not a URL")]
    BadBase(String),
    #[error("it is not a URL")]
    NotAUrl,
    /// The token is only ever sent to the configured API host.
    #[error("it points to {found}, not to the configured API at {expected}")]
    OtherOrigin { found: String, expected: String },
}

/// The origin of a URL as `scheme://host:port` (the port always spelt out, so
/// `https://h` and `https://h:443` are one origin).
fn origin_of(url: &url::Url) -> String {
    let port = url.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}", url.scheme(), url.host_str().unwrap_or(""))
}

/// `next` resolved against the configured base URL: `/rest/…` against its origin, other
/// relative links against the base URL (which ends in `/rest`), absolute links as they are.
/// Whatever the link says, the result has the base URL's scheme, host and port, or the link is
/// refused: the page's author must not be able to send our token elsewhere.
pub fn resolve_link(base_url: &str, link: &str) -> Result<String, LinkRefused> {
    let base = url::Url::parse(base_url).map_err(|_| LinkRefused::BadBase(base_url.to_owned()))?;
    let expected = origin_of(&base);
    let link = link.trim();
    let resolved = if link.contains("://") {
        link.to_owned()
    } else {
        let base_path = base.path().trim_end_matches('/');
        let link = if link.starts_with('/') { link.to_owned() } else { format!("/{link}") };
        if let Some(rest) = link.strip_prefix("/rest/rest/") {
            // A doubled prefix (seen in the wild) is one prefix.
            format!("{expected}/rest/{rest}")
        } else if link.starts_with("/rest/") {
            format!("{expected}{link}")
        } else {
            format!("{expected}{base_path}{link}")
        }
    };
    let parsed = url::Url::parse(&resolved).map_err(|_| LinkRefused::NotAUrl)?;
    // Compared on the parsed URL, so user info, odd casing or `//host` tricks are seen
    // for what they are.
    let found = origin_of(&parsed);
    if found != expected || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(LinkRefused::OtherOrigin { found, expected });
    }
    Ok(parsed.into())
}

/// The `starting_after` cursor of a page URL, if it has one.
fn cursor_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed.query_pairs().find(|(k, _)| k == "starting_after").map(|(_, v)| v.into_owned())
}

/// Text from a page, made safe for errors and logs: escaped and bounded.
fn quoted(text: &str) -> String {
    let short: String = text.chars().take(200).collect();
    format!("{short:?}")
}

/// The longest `Retry-After` a sync waits out in place: the sync holds its limiter meanwhile,
/// and past five minutes the next scheduled sync is the better retry.
const MAX_SNYK_WAIT: Duration = Duration::from_secs(300);

/// `Retry-After` by the shared rule (seconds or an HTTP-date, never overflowing), at most
/// [`MAX_SNYK_WAIT`]; anything unreadable falls back to backoff.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    Some(bus::safe::retry_after(value)?.min(MAX_SNYK_WAIT))
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let base = policy
        .backoff
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(Duration::from_secs(60));
    let jitter = rand::rng().random_range(0.0..0.25);
    base + base.mul_f64(jitter)
}

impl SnykClient {
    pub fn new(
        token: Secret,
        version: &str,
        page_limit: u32,
        requests_per_minute: u32,
        retry: RetryPolicy,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("infra-tickets-ingest-snyk/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls");
        SnykClient {
            http,
            token,
            version: version.to_owned(),
            page_limit,
            limiter: Arc::new(RateLimiter::per_minute(requests_per_minute)),
            retry,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Refuses responses larger than `bytes` (read no further than that).
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The body of a 200, read chunk by chunk up to the size bound.
    async fn read_body(
        &self,
        url: &str,
        attempt: u32,
        mut response: reqwest::Response,
    ) -> Result<bytes::Bytes, ApiError> {
        let limit = self.max_response_bytes;
        let too_large = || ApiError::TooLarge { url: url.to_owned(), limit };
        if response.content_length().is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        let mut body = bytes::BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => {
                    return Err(ApiError::Exhausted {
                        url: url.to_owned(),
                        attempts: attempt,
                        last: format!("reading the body: {e}"),
                    });
                }
            }
        }
    }

    /// GETs one URL with the rate limiter and retries; returns the body of a 200.
    pub async fn get(&self, url: &str) -> Result<bytes::Bytes, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire().await;
            let sent = self
                .http
                .get(url)
                .header("authorization", format!("token {}", self.token.expose()))
                .header("accept", "application/vnd.api+json")
                .send()
                .await;
            let (wait, last) = match sent {
                Err(error) => (backoff(&self.retry, attempt), format!("transport error: {error}")),
                Ok(response) => {
                    let status = response.status().as_u16();
                    metrics::counter!("itk_snyk_api_requests_total", "status" => status.to_string())
                        .increment(1);
                    if let Some(sunset) = response.headers().get("sunset").and_then(|v| v.to_str().ok()) {
                        tracing::warn!(sunset, version = %self.version, "The pinned Snyk API version has a sunset date.");
                    }
                    match status {
                        200 => return self.read_body(url, attempt, response).await,
                        401 | 403 => return Err(ApiError::Unauthorized { url: url.to_owned(), status }),
                        429 => {
                            let wait = retry_after(response.headers())
                                .unwrap_or_else(|| backoff(&self.retry, attempt));
                            self.limiter.hold_until(Instant::now() + wait).await;
                            (wait, "429 Too Many Requests".to_owned())
                        }
                        500..=599 => (backoff(&self.retry, attempt), format!("{status} from Snyk")),
                        _ => {
                            let detail = response.text().await.unwrap_or_default();
                            let detail: String = detail.chars().take(500).collect();
                            return Err(ApiError::Status { url: url.to_owned(), status, detail });
                        }
                    }
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(ApiError::Exhausted { url: url.to_owned(), attempts: attempt, last });
            }
            tracing::warn!(url, attempt, wait_ms = wait.as_millis() as u64, reason = %last, "Snyk request failed; retrying.");
            tokio::time::sleep(wait).await;
        }
    }

    fn listing_url(&self, base_url: &str, org: &str, what: &str, extra: &[(&str, &str)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("version", &self.version);
        query.append_pair("limit", &self.page_limit.to_string());
        for (k, v) in extra {
            query.append_pair(k, v);
        }
        format!("{}/orgs/{org}/{what}?{}", base_url.trim_end_matches('/'), query.finish())
    }

    /// Every page of a listing, parsed by `parse`, held together (for listings of one project).
    async fn pages<T>(
        &self,
        base_url: &str,
        first: String,
        parse: fn(&[u8]) -> Result<ReadPage<T>, serde_json::Error>,
    ) -> Result<Listing<T>, ApiError> {
        let mut items = Listing { items: Vec::new(), rejected: Vec::new() };
        let mut pager = Pager::new(base_url, first, parse);
        while let Some(page) = pager.next_page(self).await? {
            items.items.extend(page.data);
            items.rejected.extend(page.rejected);
        }
        Ok(items)
    }

    /// Every org the token can see (`GET /orgs`).
    pub async fn orgs(&self, base_url: &str) -> Result<Listing<OrgResource>, ApiError> {
        let first = self.orgs_url(base_url);
        self.pages(base_url, first, snyk_policy::rest::read_orgs_page).await
    }

    /// Every org of a group (`GET /groups/{group_id}/orgs`).
    pub async fn group_orgs(&self, base_url: &str, group: &str) -> Result<Listing<OrgResource>, ApiError> {
        let first = self.group_orgs_url(base_url, group);
        self.pages(base_url, first, snyk_policy::rest::read_orgs_page).await
    }

    fn group_orgs_url(&self, base_url: &str, group: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("version", &self.version);
        query.append_pair("limit", &self.page_limit.to_string());
        format!("{}/groups/{group}/orgs?{}", base_url.trim_end_matches('/'), query.finish())
    }

    /// The first page of `GET /orgs` (built outside the async listing: the query serializer
    /// is not `Send`).
    fn orgs_url(&self, base_url: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("version", &self.version);
        query.append_pair("limit", &self.page_limit.to_string());
        format!("{}/orgs?{}", base_url.trim_end_matches('/'), query.finish())
    }

    /// The pages of every project of an org (with its target), one at a time.
    pub fn project_pages(&self, base_url: &str, org: &str) -> Pager<Project> {
        let first = self.listing_url(base_url, org, "projects", &[("expand", "target")]);
        Pager::new(base_url, first, snyk_policy::rest::read_projects_page)
    }

    /// The pages of an org's open issues at the given severities, one at a time.
    pub fn issue_pages(&self, base_url: &str, org: &str, severities: &str) -> Pager<Issue> {
        let extra = [("effective_severity_level", severities), ("status", "open")];
        let first = self.listing_url(base_url, org, "issues", &extra);
        Pager::new(base_url, first, snyk_policy::rest::read_issues_page)
    }

    /// Every project of an org (with its target), or only `ids`.
    pub async fn projects(
        &self,
        base_url: &str,
        org: &str,
        ids: Option<&str>,
    ) -> Result<Listing<Project>, ApiError> {
        let mut extra = vec![("expand", "target")];
        if let Some(ids) = ids {
            extra.push(("ids", ids));
        }
        let first = self.listing_url(base_url, org, "projects", &extra);
        self.pages(base_url, first, snyk_policy::rest::read_projects_page).await
    }

    /// The pages of an org's issues updated after `since`, open or resolved (a fix is an update
    /// too), at every severity, one at a time: a finding downgraded below the floor is a change
    /// too, which a filter on the current severity would hide.
    pub fn issue_update_pages(
        &self,
        base_url: &str,
        org: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Pager<Issue> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let first = self.listing_url(base_url, org, "issues", &[("updated_after", since.as_str())]);
        Pager::new(base_url, first, snyk_policy::rest::read_issues_page)
    }

    /// Open issues of an org at the given severities (comma-separated), or of one project.
    pub async fn issues(
        &self,
        base_url: &str,
        org: &str,
        severities: &str,
        project: Option<&str>,
    ) -> Result<Listing<Issue>, ApiError> {
        let mut extra = vec![("effective_severity_level", severities), ("status", "open")];
        if let Some(project) = project {
            extra.push(("scan_item.id", project));
            extra.push(("scan_item.type", "project"));
        }
        let first = self.listing_url(base_url, org, "issues", &extra);
        self.pages(base_url, first, snyk_policy::rest::read_issues_page).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_retry_after_values_are_capped_or_ignored_never_overflow() {
        let wait = |value: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("retry-after", value.parse().unwrap());
            retry_after(&headers)
        };
        assert_eq!(wait("7"), Some(Duration::from_secs(7)));
        assert_eq!(wait("18446744073709551615"), Some(MAX_SNYK_WAIT));
        assert_eq!(wait("999999999999999999999999"), Some(MAX_SNYK_WAIT));
        assert_eq!(wait("-1"), None);
        assert_eq!(wait("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_SNYK_WAIT));
        assert_eq!(wait("Mon, 01 Jan 2001 00:00:00 GMT"), Some(Duration::ZERO));
        let _ = Instant::now() + wait("18446744073709551615").unwrap();
    }

    #[test]
    fn next_links_with_and_without_the_rest_prefix() {
        let base = "https://api.snyk.io/rest";
        assert_eq!(
            resolve_link(base, "/orgs/o/projects?version=1&starting_after=x").unwrap(),
            "https://api.snyk.io/rest/orgs/o/projects?version=1&starting_after=x"
        );
        assert_eq!(
            resolve_link(base, "/rest/orgs/o/issues?version=1").unwrap(),
            "https://api.snyk.io/rest/orgs/o/issues?version=1"
        );
        assert_eq!(
            resolve_link(base, "/rest/rest/orgs/o/issues?version=1").unwrap(),
            "https://api.snyk.io/rest/orgs/o/issues?version=1"
        );
        assert_eq!(
            resolve_link("http://127.0.0.1:8080/rest/", "/orgs/o/x").unwrap(),
            "http://127.0.0.1:8080/rest/orgs/o/x"
        );
        // An absolute link to the configured API itself is followed, default port or not.
        assert_eq!(
            resolve_link(base, "https://api.snyk.io/rest/orgs/o/x?starting_after=y").unwrap(),
            "https://api.snyk.io/rest/orgs/o/x?starting_after=y"
        );
        assert_eq!(
            resolve_link(base, "https://API.snyk.io:443/rest/x").unwrap(),
            "https://api.snyk.io/rest/x"
        );
    }

    #[test]
    fn links_to_another_scheme_host_or_port_are_refused() {
        let base = "https://api.snyk.io/rest";
        for link in [
            "https://other/x",
            "http://api.snyk.io/rest/orgs/o/x",
            "https://api.snyk.io:8443/rest/orgs/o/x",
            "https://api.snyk.io.evil.example/rest/x",
            "https://api.snyk.io@evil.example/rest/x",
            "https://token:x@api.snyk.io/rest/x",
            "ftp://api.snyk.io/rest/x",
        ] {
            let refused = resolve_link(base, link).unwrap_err();
            assert!(matches!(refused, LinkRefused::OtherOrigin { .. }), "{link}: {refused}");
        }
        // Relative links cannot escape the host either.
        assert!(resolve_link(base, "//evil.example/x").unwrap().starts_with("https://api.snyk.io/"));
        let local = "http://127.0.0.1:8080/rest";
        assert!(resolve_link(local, "http://127.0.0.1:8081/rest/x").is_err());
        assert!(resolve_link(local, "http://localhost:8080/rest/x").is_err());
    }

    #[test]
    fn cursors_are_read_from_the_page_url() {
        assert_eq!(cursor_of("https://h/rest/x?version=1&starting_after=v1.abc").as_deref(), Some("v1.abc"));
        assert_eq!(cursor_of("https://h/rest/x?version=1"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_requests_and_holds_after_a_429() {
        let limiter = RateLimiter::per_minute(600);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        limiter.hold_until(Instant::now() + Duration::from_secs(3)).await;
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(3400));
    }
}
