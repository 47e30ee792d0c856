//! The simulator driven by the real `aws-sdk-health` client, and by raw AWS JSON 1.1 requests.

use aws_health_sim::{AwsHealthSim, PageLimits, seed};
use aws_sdk_health::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_health::primitives::DateTime;
use aws_sdk_health::types::{
    DateTimeRange, EntityFilter, EventAccountFilter, EventFilter, OrganizationEventFilter,
};
use chrono::{Duration, Utc};

fn client(sim: &AwsHealthSim) -> aws_sdk_health::Client {
    let config = aws_sdk_health::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "test-secret", None, None, "static"))
        .endpoint_url(sim.url())
        .build();
    aws_sdk_health::Client::from_conf(config)
}

async fn seeded() -> anyhow::Result<AwsHealthSim> {
    Ok(AwsHealthSim::start_with(seed::events(Utc::now())).await?)
}

#[tokio::test]
async fn describe_events_pages_with_next_token_and_filters_by_last_updated_time() -> anyhow::Result<()> {
    let sim = seeded().await?;
    sim.set_page_limits(PageLimits { events: 2, entities: 1, accounts: 1 });
    let health = client(&sim);
    let since = DateTime::from_secs((Utc::now() - Duration::days(1)).timestamp());
    let filter =
        EventFilter::builder().last_updated_times(DateTimeRange::builder().from(since).build()).build();
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let page = health
            .describe_events()
            .filter(filter.clone())
            .max_results(100)
            .set_next_token(token)
            .send()
            .await?;
        let events = page.events();
        assert!(events.len() <= 2);
        arns.extend(events.iter().filter_map(|e| e.arn().map(str::to_owned)));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(arns.len(), seed::events(Utc::now()).len());
    assert_eq!(sim.calls()["DescribeEvents"], 5);

    let future = DateTime::from_secs((Utc::now() + Duration::hours(1)).timestamp());
    let none = health
        .describe_events()
        .filter(
            EventFilter::builder().last_updated_times(DateTimeRange::builder().from(future).build()).build(),
        )
        .send()
        .await?;
    assert!(none.events().is_empty());
    Ok(())
}

#[tokio::test]
async fn details_and_entities_with_pages_and_failed_sets() -> anyhow::Result<()> {
    let sim = seeded().await?;
    sim.set_page_limits(PageLimits { events: 10, entities: 1, accounts: 10 });
    let health = client(&sim);
    let details = health
        .describe_event_details()
        .event_arns(seed::LAMBDA_RUNTIME_ARN)
        .event_arns("arn:aws:health:us-east-1::event/EC2/NOPE/NOPE_1")
        .send()
        .await?;
    let detail = &details.successful_set()[0];
    let event = detail.event().unwrap();
    assert_eq!(event.event_type_code(), Some("AWS_LAMBDA_OPERATIONAL_NOTIFICATION"));
    assert!(event.last_updated_time().is_some());
    assert!(detail.event_description().unwrap().latest_description().unwrap().contains("ending support"));
    assert_eq!(details.failed_set()[0].event_arn(), Some("arn:aws:health:us-east-1::event/EC2/NOPE/NOPE_1"));

    let mut values = Vec::new();
    let mut token = None;
    loop {
        let page = health
            .describe_affected_entities()
            .filter(EntityFilter::builder().event_arns(seed::TWO_TEAMS_ARN).build()?)
            .set_next_token(token)
            .send()
            .await?;
        values.extend(page.entities().iter().filter_map(|e| e.entity_value().map(str::to_owned)));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(values, vec!["i-0pay1111aaaa2222b", "i-0web3333cccc4444d"]);
    assert_eq!(sim.calls()["DescribeAffectedEntities"], 2);
    Ok(())
}

#[tokio::test]
async fn organization_view_accounts_details_and_entities() -> anyhow::Result<()> {
    let sim = seeded().await?;
    let health = client(&sim);
    let since = DateTime::from_secs((Utc::now() - Duration::days(1)).timestamp());
    let events = health
        .describe_events_for_organization()
        .filter(
            OrganizationEventFilter::builder()
                .last_updated_time(DateTimeRange::builder().from(since).build())
                .build(),
        )
        .send()
        .await?;
    assert_eq!(events.events().len(), seed::events(Utc::now()).len());
    let accounts = health
        .describe_affected_accounts_for_organization()
        .event_arn(seed::ELASTICACHE_PATCH_ARN)
        .send()
        .await?;
    assert_eq!(accounts.affected_accounts(), [seed::DATA_ACCOUNT.to_owned()]);
    let filter = EventAccountFilter::builder()
        .event_arn(seed::ELASTICACHE_PATCH_ARN)
        .aws_account_id(seed::DATA_ACCOUNT)
        .build()?;
    let details = health
        .describe_event_details_for_organization()
        .organization_event_detail_filters(filter.clone())
        .send()
        .await?;
    assert_eq!(details.successful_set()[0].aws_account_id(), Some(seed::DATA_ACCOUNT));
    #[allow(deprecated)]
    let entities = health
        .describe_affected_entities_for_organization()
        .organization_entity_filters(filter)
        .send()
        .await?;
    assert_eq!(entities.entities()[0].entity_value(), Some("sessions-cache-001"));
    assert_eq!(entities.entities()[0].aws_account_id(), Some(seed::DATA_ACCOUNT));
    Ok(())
}

#[tokio::test]
async fn a_bad_token_is_an_aws_error() -> anyhow::Result<()> {
    let sim = seeded().await?;
    let error = client(&sim).describe_events().next_token("bm90LWEtdG9rZW4=").send().await.unwrap_err();
    let service = error.into_service_error();
    assert!(service.is_invalid_pagination_token(), "{service:?}");
    Ok(())
}

#[tokio::test]
async fn aws_json_1_1_requests_and_errors() -> anyhow::Result<()> {
    let sim = seeded().await?;
    sim.set_page_limits(PageLimits { events: 3, entities: 10, accounts: 10 });
    let http = reqwest::Client::new();
    let post = |target: &str, body: &str, signed: bool| {
        let mut request = http
            .post(format!("{}/", sim.url()))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", target)
            .body(body.to_owned());
        if signed {
            request = request.header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/health/aws4_request, SignedHeaders=host, Signature=0");
        }
        request.send()
    };
    let response =
        post("AWSHealth_20160804.DescribeEvents", r#"{"filter": {"lastUpdatedTimes": [{"from": 0}]}}"#, true)
            .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-amz-json-1.1");
    let page: serde_json::Value = response.json().await?;
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    assert!(page["events"][0]["lastUpdatedTime"].is_f64(), "epoch seconds");
    let token = page["nextToken"].as_str().unwrap();
    let next = post(
        "AWSHealth_20160804.DescribeEvents",
        &format!(r#"{{"filter": {{"lastUpdatedTimes": [{{"from": 0}}]}}, "nextToken": "{token}"}}"#),
        true,
    )
    .await?;
    assert_eq!(next.status(), 200);

    let unknown = post("AWSHealth_20160804.DescribeEverything", "{}", true).await?;
    assert_eq!(unknown.status(), 400);
    let error: serde_json::Value = unknown.json().await?;
    assert_eq!(error["__type"], "UnknownOperationException");
    let missing = post("AWSHealth_20160804.DescribeAffectedEntities", r#"{"filter": {}}"#, true).await?;
    let error: serde_json::Value = missing.json().await?;
    assert_eq!(error["__type"], "ValidationException");
    assert!(error["message"].as_str().unwrap().contains("eventArns"));
    let unsigned = post("AWSHealth_20160804.DescribeEvents", "{}", false).await?;
    assert_eq!(unsigned.status(), 403);
    Ok(())
}
