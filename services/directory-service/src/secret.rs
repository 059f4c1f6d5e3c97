//! Bearer secrets (SCIM tokens and API keys): 256 random bits, shown once, kept only as a SHA-256 hash.
//!
//! The secrets are high-entropy, so a fast hash is enough: there is nothing
//! to brute-force, and resolving a token stays one indexed lookup.

use sha2::{Digest, Sha256};

/// Prefix that makes an idmesh SCIM token recognisable in logs and secret
/// scanners.
const PREFIX: &str = "idm_";
/// Prefix of an API key, a gRPC caller's credential.
pub const API_KEY_PREFIX: &str = "idmk_";

/// A new random SCIM bearer secret.
pub fn generate() -> Result<String, getrandom::Error> {
    generate_with(PREFIX)
}

/// A new random API key.
pub fn generate_api_key() -> Result<String, getrandom::Error> {
    generate_with(API_KEY_PREFIX)
}

fn generate_with(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hash_stably() -> Result<(), getrandom::Error> {
        let (a, b) = (generate()?, generate()?);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a[PREFIX.len()..]));
        let key = generate_api_key()?;
        assert!(key.starts_with(API_KEY_PREFIX) && key.len() == API_KEY_PREFIX.len() + 64);
        Ok(())
    }
}
