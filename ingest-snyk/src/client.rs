//! The Snyk REST client: pinned version, `Authorization: token`, JSON:API pages followed
//! through `links.next`, one rate limiter per token, backoff on 429 (honouring `Retry-After`)
//! and 5xx.

use std::sync::Arc;
use std::time::Duration;

use bus::{Classify, ErrorClass};
use rand::Rng;
use service_kit::Secret;
use snyk_policy::rest::{Issue, IssuesPage, Project, ProjectsPage};
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
    #[error("the next-page link {link:?} from {url} cannot be followed")]
    BadLink { url: String, link: String },
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Unauthorized { .. } => ErrorClass::Pause { after: Duration::from_secs(60) },
            ApiError::Exhausted { .. } => ErrorClass::Retry { after: None },
            ApiError::Status { status, .. } if *status >= 500 || *status == 429 => {
                ErrorClass::Retry { after: None }
            }
            ApiError::Status { .. } | ApiError::Malformed { .. } | ApiError::BadLink { .. } => {
                ErrorClass::DeadLetter
            }
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
}

/// `next` resolved against the base URL: absolute links as they are, `/rest/…` against the
/// origin, other relative links against the base URL (which ends in `/rest`).
pub fn resolve_link(base_url: &str, link: &str) -> Option<String> {
    if link.starts_with("http://") || link.starts_with("https://") {
        return Some(link.to_owned());
    }
    let base = url::Url::parse(base_url).ok()?;
    let origin = base.origin().ascii_serialization();
    let base_path = base.path().trim_end_matches('/');
    let link = if link.starts_with('/') { link.to_owned() } else { format!("/{link}") };
    if let Some(rest) = link.strip_prefix("/rest/rest/") {
        // A doubled prefix (seen in the wild) is one prefix.
        return Some(format!("{origin}/rest/{rest}"));
    }
    if link.starts_with("/rest/") {
        Some(format!("{origin}{link}"))
    } else {
        Some(format!("{origin}{base_path}{link}"))
    }
}

/// `Retry-After` in seconds (an HTTP date is not used by Snyk; it falls back to backoff).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(300)))
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
                        200 => {
                            return response.bytes().await.map_err(|e| ApiError::Exhausted {
                                url: url.to_owned(),
                                attempts: attempt,
                                last: format!("reading the body: {e}"),
                            });
                        }
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

    /// Every page of a listing, parsed by `parse`, following `links.next` until it is absent.
    async fn pages<T>(
        &self,
        base_url: &str,
        first: String,
        parse: impl Fn(&[u8]) -> Result<(Vec<T>, Option<String>), String>,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut seen = std::collections::HashSet::new();
        while let Some(url) = next.take() {
            if !seen.insert(url.clone()) {
                return Err(ApiError::BadLink { url: url.clone(), link: url });
            }
            let body = self.get(&url).await?;
            let (page, link) =
                parse(&body).map_err(|reason| ApiError::Malformed { url: url.clone(), reason, body })?;
            items.extend(page);
            if let Some(link) = link {
                next = Some(
                    resolve_link(base_url, &link)
                        .ok_or_else(|| ApiError::BadLink { url: url.clone(), link })?,
                );
            }
        }
        Ok(items)
    }

    /// Every project of an org (with its target), or only `ids`.
    pub async fn projects(
        &self,
        base_url: &str,
        org: &str,
        ids: Option<&str>,
    ) -> Result<Vec<Project>, ApiError> {
        let mut extra = vec![("expand", "target")];
        if let Some(ids) = ids {
            extra.push(("ids", ids));
        }
        let first = self.listing_url(base_url, org, "projects", &extra);
        self.pages(base_url, first, |body| {
            let page: ProjectsPage =
                snyk_policy::rest::parse_projects_page(body).map_err(|e| e.to_string())?;
            let next = page.links.next_href().map(str::to_owned);
            Ok((page.data, next))
        })
        .await
    }

    /// Issues of an org at the given severities updated after `since`, open or resolved (a fix
    /// is an update too).
    pub async fn issues_updated_after(
        &self,
        base_url: &str,
        org: &str,
        severities: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Issue>, ApiError> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let extra = [("effective_severity_level", severities), ("updated_after", since.as_str())];
        let first = self.listing_url(base_url, org, "issues", &extra);
        self.pages(base_url, first, |body| {
            let page: IssuesPage = snyk_policy::rest::parse_issues_page(body).map_err(|e| e.to_string())?;
            let next = page.links.next_href().map(str::to_owned);
            Ok((page.data, next))
        })
        .await
    }

    /// Open issues of an org at the given severities (comma-separated), or of one project.
    pub async fn issues(
        &self,
        base_url: &str,
        org: &str,
        severities: &str,
        project: Option<&str>,
    ) -> Result<Vec<Issue>, ApiError> {
        let mut extra = vec![("effective_severity_level", severities), ("status", "open")];
        if let Some(project) = project {
            extra.push(("scan_item.id", project));
            extra.push(("scan_item.type", "project"));
        }
        let first = self.listing_url(base_url, org, "issues", &extra);
        self.pages(base_url, first, |body| {
            let page: IssuesPage = snyk_policy::rest::parse_issues_page(body).map_err(|e| e.to_string())?;
            let next = page.links.next_href().map(str::to_owned);
            Ok((page.data, next))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(resolve_link(base, "https://other/x").unwrap(), "https://other/x");
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
