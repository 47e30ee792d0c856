//! The `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>` check of a signed webhook: Snyk's
//! webhooks and JIRA Cloud's admin webhooks registered with a secret sign their bodies the same
//! way, so both intakes call this one check.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Secret;

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`; the
/// comparison is constant-time. A missing header, another algorithm or bad hex is `false`.
pub fn hub_signature_is_valid(secret: &Secret, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else { return false };
    let Ok(expected) = hex::decode(hex_digest) else { return false };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hmac_sha256_of_the_body_under_the_secret() {
        // RFC 4231 test case 2 (key "Jefe").
        let secret = Secret::new("Jefe");
        let body = b"what do ya want for nothing?";
        let good = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(hub_signature_is_valid(&secret, body, Some(good)));
        assert!(!hub_signature_is_valid(&secret, b"what do ya want for nothing!", Some(good)));
        assert!(!hub_signature_is_valid(&secret, body, None));
        assert!(!hub_signature_is_valid(&secret, body, Some("sha1=5bdcc146")));
        assert!(!hub_signature_is_valid(&secret, body, Some("sha256=not-hex")));
        assert!(!hub_signature_is_valid(&Secret::new("other"), body, Some(good)));
    }
}
