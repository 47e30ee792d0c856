//! Sends Snyk v1 webhooks as Snyk does: `POST` with `Content-Type: application/json`,
//! `X-Snyk-Event: <event>/v0`, `X-Snyk-Transport-ID` (a GUID per delivery), `X-Snyk-Timestamp`,
//! `User-Agent: Snyk-Webhooks/…` and `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How a delivery is signed.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Signed with this secret, as Snyk does.
    Secret(String),
    /// This header value as it is (a wrong signature).
    Header(String),
    /// No `X-Hub-Signature` at all.
    Missing,
}

/// One delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `project_snapshot/v0`, `ping/v0`…
    pub event: String,
    pub transport_id: String,
    pub body: Vec<u8>,
    pub signing: Signing,
}

impl Delivery {
    /// A `project_snapshot/v0` delivery of `body`, signed with `secret`.
    pub fn project_snapshot(body: &serde_json::Value, secret: &str, transport_id: &str) -> Self {
        Delivery {
            event: "project_snapshot/v0".into(),
            transport_id: transport_id.into(),
            body: serde_json::to_vec(body).expect("a JSON value serialises"),
            signing: Signing::Secret(secret.into()),
        }
    }

    /// A `ping/v0` delivery, signed with `secret`.
    pub fn ping(webhook_id: &str, secret: &str, transport_id: &str) -> Self {
        Delivery {
            event: "ping/v0".into(),
            transport_id: transport_id.into(),
            body: serde_json::to_vec(&serde_json::json!({"webhookId": webhook_id})).expect("JSON"),
            signing: Signing::Secret(secret.into()),
        }
    }

    pub fn with_signing(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }

    /// Posts it to `url`; returns the status and body of the answer.
    pub async fn send(&self, client: &reqwest::Client, url: &str) -> reqwest::Result<(u16, String)> {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "Snyk-Webhooks/044aadd")
            .header("x-snyk-event", &self.event)
            .header("x-snyk-transport-id", &self.transport_id)
            .header("x-snyk-timestamp", chrono::Utc::now().to_rfc3339())
            .body(self.body.clone());
        match &self.signing {
            Signing::Secret(secret) => {
                request = request.header("x-hub-signature", signature(secret, &self.body))
            }
            Signing::Header(value) => request = request.header("x-hub-signature", value),
            Signing::Missing => {}
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
