//! Bearer secrets: 256 random bits, shown once, kept only as a SHA-256 hash.
//!
//! The secrets are high-entropy, so a fast hash is enough: there is nothing
//! to brute-force, and resolving a token stays one indexed lookup.

use sha2::{Digest, Sha256};

/// Prefix that makes an idmesh token recognisable in logs and secret scanners.
const PREFIX: &str = "idm_";

/// A new random secret.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
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
        Ok(())
    }
}
