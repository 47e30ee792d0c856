//! `infra-tickets probe URL`: exits 0 when the URL answers 2xx, for container health checks in
//! images without curl.

use std::time::Duration;

pub async fn probe(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let response = client.get(url).send().await?;
    anyhow::ensure!(response.status().is_success(), "{url} answered {}", response.status());
    Ok(())
}
