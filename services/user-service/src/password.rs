//! Passwords an IdP sends (Okta can push them) are hashed with Argon2id and
//! never stored in clear or returned.

use argon2::{Argon2, PasswordHash, PasswordHasher};
use idmesh_runtime::cpu::CpuPool;

/// The PHC string of `password`, computed on `cpu`: Argon2 is deliberately
/// slow and takes about 19 MiB, so at most one hash per core runs at a time.
pub async fn hash(cpu: &CpuPool, password: String) -> Result<String, crate::Error> {
    cpu.run(move || {
        let hash: PasswordHash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|err| crate::Error::Password(err.to_string()))?;
        Ok(hash.to_string())
    })
    .await?
}
