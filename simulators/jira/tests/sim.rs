//! The simulator speaks JIRA's shapes, checked against the official spec.

use std::time::Duration;

use jira_sim::contract::Spec;
use jira_sim::{BOT_EMAIL, BOT_TOKEN, Fault, JiraSim, SimConfig};
use serde_json::{Value, json};
use service_kit::Clock;

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(sim: &JiraSim) -> Self {
        Api { http: reqwest::Client::new(), base: sim.url() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).basic_auth(BOT_EMAIL, Some(BOT_TOKEN));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the simulator answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn create_body(label: &str) -> Value {
    json!({
        "fields": {
            "project": {"key": "PLAT"}, "issuetype": {"name": "Task"}, "summary": "Instance retirement",
            "description": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "We will stop it."}]}]},
            "duedate": "2027-02-09", "labels": ["infra-tickets", label], "priority": {"name": "High"},
            "components": [{"name": "fleet"}], "customfield_10050": {"value": "Platform"}
        },
        "properties": [{"key": "infra-tickets", "value": {"idempotencyKey": label, "schemaVersion": 1}}]
    })
}

#[tokio::test]
async fn issues_live_through_create_search_edit_transition_and_links() -> anyhow::Result<()> {
    let clock = Clock::manual("2026-11-27T09:00:00Z".parse()?);
    let sim = JiraSim::start(SimConfig {
        clock: clock.clone(),
        search_lag: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await?;
    let api = Api::new(&sim);
    let (status, created) =
        api.send(reqwest::Method::POST, "/rest/api/3/issue", Some(create_body("itk-aaaa"))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(key, "PLAT-1");
    let id: u64 = created["id"].as_str().unwrap().parse()?;

    let search = |reconcile: Vec<u64>| json!({"jql": "labels = \"itk-aaaa\" ORDER BY created ASC", "fields": ["summary", "duedate"], "properties": ["infra-tickets"], "reconcileIssues": reconcile});
    let (_, page) = api.send(reqwest::Method::POST, "/rest/api/3/search/jql", Some(search(vec![]))).await;
    assert_eq!(page["issues"].as_array().unwrap().len(), 0, "fresh issues are not indexed yet");
    let (_, page) = api.send(reqwest::Method::POST, "/rest/api/3/search/jql", Some(search(vec![id]))).await;
    assert_eq!(page["issues"][0]["key"], key, "reconcileIssues reads after write");
    assert_eq!(page["issues"][0]["properties"]["infra-tickets"]["idempotencyKey"], "itk-aaaa");
    clock.advance(chrono::Duration::seconds(31));
    let (_, page) = api.send(reqwest::Method::POST, "/rest/api/3/search/jql", Some(search(vec![]))).await;
    assert_eq!(page["issues"][0]["fields"]["duedate"], "2027-02-09");

    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            &format!("/rest/api/3/issue/{key}"),
            Some(json!({"fields": {"duedate": "2027-03-01"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, transitions) =
        api.send(reqwest::Method::GET, &format!("/rest/api/3/issue/{key}/transitions"), None).await;
    let done = transitions["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"]["statusCategory"]["key"] == "done")
        .unwrap();
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            &format!("/rest/api/3/issue/{key}/transitions"),
            Some(json!({"transition": {"id": done["id"]}})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/rest/api/3/issue/{key}/transitions"),
            Some(json!({"transition": {"id": "31"}})),
        )
        .await;
    assert_eq!(status, 400, "Done is not available from Done: {body}");

    let link = json!({"globalId": "aws-health:arn:1", "object": {"title": "Event", "url": "https://health.aws.amazon.com/x"}});
    let (first, _) = api
        .send(reqwest::Method::POST, &format!("/rest/api/3/issue/{key}/remotelink"), Some(link.clone()))
        .await;
    let (second, _) =
        api.send(reqwest::Method::POST, &format!("/rest/api/3/issue/{key}/remotelink"), Some(link)).await;
    assert_eq!((first, second), (201, 200), "globalId upserts");
    assert_eq!(sim.issue(&key).unwrap().remote_links.len(), 1);

    let (status, body) =
        api.send(reqwest::Method::POST, "/rest/api/3/search", Some(json!({"jql": "labels = x"}))).await;
    assert_eq!(status, 410);
    assert!(body["errorMessages"][0].as_str().unwrap().contains("/rest/api/3/search/jql"));

    let spec = Spec::load_default()?;
    let violations = spec.check_calls(&sim.calls());
    assert!(violations.is_empty(), "{violations:#?}");
    Ok(())
}

#[tokio::test]
async fn errors_have_jiras_shapes_and_faults_are_injectable() -> anyhow::Result<()> {
    let sim = JiraSim::start(SimConfig::default()).await?;
    let api = Api::new(&sim);
    sim.remove_from_screen("PLAT", "labels");
    let (status, body) =
        api.send(reqwest::Method::POST, "/rest/api/3/issue", Some(create_body("itk-b"))).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["labels"],
        "Field 'labels' cannot be set. It is not on the appropriate screen, or unknown."
    );
    assert_eq!(body["errorMessages"], json!([]));

    sim.fail_next(Fault::RateLimited { retry_after_secs: 3 });
    let response = reqwest::Client::new()
        .get(format!("{}/rest/api/3/myself", sim.url()))
        .basic_auth(BOT_EMAIL, Some(BOT_TOKEN))
        .send()
        .await?;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");

    let response = reqwest::Client::new()
        .get(format!("{}/rest/api/3/myself", sim.url()))
        .basic_auth(BOT_EMAIL, Some("wrong"))
        .send()
        .await?;
    assert_eq!(response.status(), 401);

    let (status, body) = api
        .send(reqwest::Method::POST, "/rest/api/3/search/jql", Some(json!({"jql": "order by key desc"})))
        .await;
    assert_eq!(status, 400);
    assert!(body["errorMessages"][0].as_str().unwrap().contains("Unbounded"));

    let spec = Spec::load_default()?;
    let violations = spec.check_calls(&sim.calls());
    assert!(violations.is_empty(), "{violations:#?}");
    Ok(())
}

#[tokio::test]
async fn search_pages_with_next_page_token() -> anyhow::Result<()> {
    let sim = JiraSim::start(SimConfig::default()).await?;
    let api = Api::new(&sim);
    for _ in 0..5 {
        api.send(reqwest::Method::POST, "/rest/api/3/issue", Some(create_body("itk-page"))).await;
    }
    let mut token: Option<String> = None;
    let mut keys = Vec::new();
    loop {
        let mut body =
            json!({"jql": "labels = itk-page ORDER BY created ASC", "maxResults": 2, "fields": ["summary"]});
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        let (_, page) = api.send(reqwest::Method::POST, "/rest/api/3/search/jql", Some(body)).await;
        keys.extend(page["issues"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap().to_owned()));
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(keys, ["PLAT-1", "PLAT-2", "PLAT-3", "PLAT-4", "PLAT-5"]);
    Ok(())
}

/// The check cannot pass silently: requests that break the spec are caught.
#[test]
fn the_contract_check_catches_wrong_requests_and_responses() -> anyhow::Result<()> {
    let spec = Spec::load_default()?;
    // The legacy `startAt` is not part of SearchAndReconcileRequestBean.
    let wrong = json!({"jql": "labels = x", "startAt": 0});
    assert!(spec.check_request("POST", "/rest/api/3/search/jql", Some(&wrong)).is_err());
    // reconcileIssues are integers.
    let wrong = json!({"jql": "labels = x", "reconcileIssues": ["10001"]});
    assert!(spec.check_request("POST", "/rest/api/3/search/jql", Some(&wrong)).is_err());
    // An issue link needs a type.
    let wrong = json!({"inwardIssue": {"key": "A-1"}, "outwardIssue": {"key": "A-2"}});
    assert!(spec.check_request("POST", "/rest/api/3/issueLink", Some(&wrong)).is_err());
    // A remote link needs an object with a title and url.
    let wrong = json!({"globalId": "g", "object": {"url": "https://x"}});
    assert!(spec.check_request("POST", "/rest/api/3/issue/A-1/remotelink", Some(&wrong)).is_err());
    // CreatedIssue allows no other properties; ErrorCollection's errors are strings.
    let wrong = json!({"id": "1", "key": "A-1", "self": "x", "fields": {}});
    assert!(spec.check_response("POST", "/rest/api/3/issue", 201, Some(&wrong)).is_err());
    let wrong = json!({"errorMessages": [], "errors": {"summary": 1}});
    assert!(spec.check_response("POST", "/rest/api/3/issue", 400, Some(&wrong)).is_err());
    // Undocumented status.
    assert!(spec.check_response("POST", "/rest/api/3/issue", 418, None).is_err());
    // And the right ones pass.
    let right = json!({"jql": "labels = x", "reconcileIssues": [10001], "fields": ["summary"]});
    spec.check_request("POST", "/rest/api/3/search/jql", Some(&right)).map_err(anyhow::Error::msg)?;
    Ok(())
}
