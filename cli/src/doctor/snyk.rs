//! Snyk (ingest-snyk): the token is accepted, the pinned REST API version is served, and every
//! configured org is visible to the token (`GET /rest/orgs`, the listing the intake itself
//! reads; an org it cannot list is one it cannot poll).

use std::collections::BTreeMap;

use ingest_snyk::client::{ApiError, RetryPolicy, SnykClient};

use super::{Check, vendor};

/// The answer to `GET /orgs` at one API base as checks: the token, the version, each org.
pub fn org_checks(
    base_url: &str,
    version: &str,
    listed: Result<&[String], &ApiError>,
    wanted: &[String],
) -> Vec<Check> {
    let base = vendor(base_url);
    let token = format!("snyk {base}: token accepted");
    let version_name = format!("snyk {base}: API version {} served", vendor(version));
    let visible = match listed {
        Ok(visible) => visible,
        Err(ApiError::Unauthorized { status, .. }) => {
            return vec![Check::fail(
                token,
                format!("Snyk answered {status}"),
                "give ingest-snyk a valid service account token (SNYK_TOKEN) for this Region's API",
            )];
        }
        Err(ApiError::Status { status: status @ (400 | 404), detail, .. }) => {
            return vec![
                Check::pass(token, "not refused"),
                Check::fail(
                    version_name,
                    format!("Snyk answered {status}: {}", vendor(detail)),
                    "set --snyk-api-version to a version Snyk's REST API lists as supported (GA versions are served for at least 6 months)",
                ),
            ];
        }
        Err(other) => {
            return vec![Check::fail(
                token,
                format!("the org listing failed: {}", vendor(&other.to_string())),
                "check --snyk-api-url (or the org's @REGION) and that Snyk is reachable from here",
            )];
        }
    };
    let mut out = vec![Check::pass(token, "accepted"), Check::pass(version_name, "served")];
    for org in wanted {
        let name = format!("snyk {base}: org {} visible", vendor(org));
        if visible.iter().any(|v| v == org) {
            out.push(Check::pass(name, "listed for the token"));
        } else {
            out.push(Check::fail(
                name,
                format!("the token sees {} other org(s), not this one", visible.len()),
                "grant the service account read access to this org, or fix the org id in --snyk-org",
            ));
        }
    }
    out
}

pub async fn checks(config: &ingest_snyk::Config) -> Vec<Check> {
    let client = SnykClient::new(
        config.token.clone(),
        &config.api_version,
        config.page_limit,
        config.rate_limit,
        RetryPolicy { max_attempts: config.max_attempts.min(2), backoff: config.backoff },
    );
    let mut by_base: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for org in &config.orgs {
        by_base.entry(config.base_url(org)).or_default().push(org.id.clone());
    }
    for group in &config.groups {
        by_base.entry(config.base_url(group)).or_default();
    }
    if by_base.is_empty() {
        by_base.insert(config.api_url.trim_end_matches('/').to_owned(), Vec::new());
    }
    let mut out = Vec::new();
    for (base, wanted) in by_base {
        let listed = client.orgs(&base).await.map(|l| l.items.into_iter().map(|o| o.id).collect::<Vec<_>>());
        out.extend(org_checks(&base, &config.api_version, listed.as_deref(), &wanted));
    }
    if config.webhook_secret.is_some() {
        out.push(Check::pass(
            "snyk: webhook",
            "a webhook secret is set; Snyk's v1 webhook listing is not read by doctor yet: check the org's webhook points at /webhooks/snyk",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_an_unknown_version_and_an_invisible_org_each_fail() {
        let refused = ApiError::Unauthorized { url: "u".into(), status: 401 };
        let out = org_checks("https://api.snyk.io/rest", "2024-10-15", Err(&refused), &[]);
        assert!(!out[0].ok && out[0].remedy.contains("SNYK_TOKEN"), "{out:?}");
        let version = ApiError::Status { url: "u".into(), status: 400, detail: "unsupported version".into() };
        let out = org_checks("b", "2019-01-01", Err(&version), &[]);
        assert!(out[0].ok && !out[1].ok && out[1].remedy.contains("--snyk-api-version"), "{out:?}");
        let visible = vec!["a".to_owned()];
        let out = org_checks("b", "v", Ok(&visible), &["a".into(), "b".into()]);
        assert!(out[2].ok && !out[3].ok, "{out:?}");
    }
}
