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

/// The v1 API's base beside a REST base (`…/rest` → `…/v1`), where the webhooks are.
pub fn v1_base(rest_base: &str) -> String {
    let base = rest_base.trim_end_matches('/');
    match base.strip_suffix("/rest") {
        Some(root) => format!("{root}/v1"),
        None => format!("{base}/v1"),
    }
}

/// `GET /v1/org/{orgId}/webhooks`: some webhook of the org points at ingest-snyk's
/// `/webhooks/snyk` (<https://docs.snyk.io/snyk-api/reference/webhooks-v1>).
pub fn webhook_check(org: &str, v1: &str, answer: Result<&serde_json::Value, &str>) -> Check {
    let name = format!("snyk: org {}: webhook to /webhooks/snyk registered", vendor(org));
    let register = format!(
        "register one: POST {}/org/{}/webhooks with {{\"url\": \"https://<ingest-snyk>/webhooks/snyk\", \"secret\": <SNYK_WEBHOOK_SECRET>}} (or drop --snyk-webhook-secret to rely on polling)",
        vendor(v1),
        vendor(org)
    );
    match answer {
        Err(error) => Check::fail(name, vendor(error), "the token needs View Outbound Webhooks on the org"),
        Ok(list) => {
            let urls: Vec<&str> = list
                .get("results")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|w| w.get("url")?.as_str())
                .collect();
            match urls.iter().find(|u| u.trim_end_matches('/').ends_with("/webhooks/snyk")) {
                Some(url) => Check::pass(name, vendor(url)),
                None => Check::fail(
                    name,
                    format!(
                        "the org's webhooks: {}",
                        if urls.is_empty() { "none".to_owned() } else { vendor(&urls.join(", ")) }
                    ),
                    register,
                ),
            }
        }
    }
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
        for org in &config.orgs {
            let v1 = v1_base(&config.base_url(org));
            let url = format!("{v1}/org/{}/webhooks", org.id);
            let answer = client.get(&url).await.map_err(|e| e.to_string()).and_then(|body| {
                serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| format!("not JSON: {e}"))
            });
            out.push(webhook_check(&org.id, &v1, answer.as_ref().map_err(String::as_str)));
        }
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

    #[test]
    fn a_webhook_is_found_by_its_path_and_a_missing_one_says_how_to_register() {
        assert_eq!(v1_base("https://api.eu.snyk.io/rest"), "https://api.eu.snyk.io/v1");
        let listed = serde_json::json!({"results": [{"id": "1", "url": "https://itk.example.com/webhooks/snyk"}], "total": 1});
        assert!(webhook_check("o", "v1", Ok(&listed)).ok);
        let other =
            serde_json::json!({"results": [{"id": "1", "url": "https://else.example.com/hook"}], "total": 1});
        let out = webhook_check("o", "https://api.snyk.io/v1", Ok(&other));
        assert!(!out.ok && out.remedy.contains("POST https://api.snyk.io/v1/org/o/webhooks"), "{out:?}");
    }
}
