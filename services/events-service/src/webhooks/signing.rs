//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): a
//! secret is `whsec_` and the base64 of its key bytes; a signature is
//! `v1,` and the base64 of HMAC-SHA256 over `<id>.<timestamp>.<body>`; the
//! `webhook-signature` header lists one per live secret, space-separated.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new secret: 192 bits, as the specification suggests
/// (between 24 and 64 bytes).
const SECRET_BYTES: usize = 24;

/// A new signing secret.
pub(crate) fn new_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The signature of one delivery under `secret`; `None` when the secret is
/// not one this module wrote.
fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: a signature per secret.
pub(crate) fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let signatures: Vec<String> = secrets
        .into_iter()
        .filter_map(|secret| sign(secret, id, timestamp, body))
        .collect();
    signatures.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries (the Python
    /// package `standardwebhooks` 1.3.0 signs it the same way).
    #[test]
    fn signs_the_reference_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn a_header_carries_one_signature_per_secret_and_new_secrets_differ() {
        let first = new_secret().expect("random bytes");
        let second = new_secret().expect("random bytes");
        assert_ne!(first, second);
        assert!(first.starts_with(SECRET_PREFIX));
        let header = signature_header([first.as_str(), second.as_str()], "id", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Some(parts[0].to_owned()), sign(&first, "id", 1, b"{}"));
        assert_eq!(Some(parts[1].to_owned()), sign(&second, "id", 1, b"{}"));
        assert_eq!(sign("not-a-secret", "id", 1, b"{}"), None);
    }
}
