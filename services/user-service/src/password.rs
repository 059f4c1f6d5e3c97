//! Passwords an IdP sends (Okta can push them) are hashed with Argon2id and
//! never stored in clear or returned.

use argon2::{Argon2, PasswordHash, PasswordHasher};

/// The PHC string of `password`, computed off the async runtime: Argon2 is
/// deliberately slow.
pub async fn hash(password: String) -> Result<String, crate::Error> {
    tokio::task::spawn_blocking(move || {
        let hash: PasswordHash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|err| crate::Error::Password(err.to_string()))?;
        Ok(hash.to_string())
    })
    .await
    .map_err(|err| crate::Error::Password(err.to_string()))?
}
