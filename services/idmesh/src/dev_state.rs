//! `<data dir>/dev.json`: where a running `idmesh dev` listens. Its internal
//! ports are picked by the kernel, so the admin commands read them here
//! instead of guessing; the file is rewritten on every start and removed on
//! a clean stop. Beside it, `api-key` holds the admin API key `idmesh dev`
//! creates on its first start, which the admin commands call with.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a running `idmesh dev` tells the admin commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevState {
    /// The SCIM endpoint's base URL as IdPs reach it.
    pub public_url: String,
    pub http_addr: SocketAddr,
    pub directory_addr: SocketAddr,
    pub user_addr: SocketAddr,
    pub group_addr: SocketAddr,
    pub session_addr: SocketAddr,
    pub role_addr: SocketAddr,
    pub event_addr: SocketAddr,
}

/// Where `idmesh dev` keeps its admin API key: created on the first start,
/// kept across restarts, readable by the owner only.
pub fn api_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("api-key")
}

/// `idmesh dev`'s admin key in `data_dir`, created there on the first start.
pub fn admin_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = api_key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok(key.trim().to_owned()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(anyhow::anyhow!("cannot read {}: {err}", path.display())),
    }
    std::fs::create_dir_all(data_dir)?;
    let key = directory_service::generate_api_key()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", path.display()))?;
    file.write_all(format!("{key}\n").as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

/// The admin key of the `idmesh dev` of `data_dir`, if it has one.
pub fn read_admin_key(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = api_key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(Some(key.trim().to_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(anyhow::anyhow!("cannot read {}: {err}", path.display())),
    }
}

/// Where `idmesh dev` with `data_dir` keeps its state.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev.json")
}

/// Replaces the state file at once: a reader sees the old file or the new
/// one, never half of one. Readable by the owner only, like the database
/// next to it.
pub fn write(data_dir: &Path, state: &DevState) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let temporary = data_dir.join(format!(".dev.json.{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(state)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path(data_dir))
    })();
    if written.is_err() {
        // Best effort: the error that matters is the write's.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// The state a running `idmesh dev` wrote in `data_dir`, if there is one.
pub fn read(data_dir: &Path) -> anyhow::Result<Option<DevState>> {
    let path = path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(anyhow::anyhow!("cannot read {}: {err}", path.display())),
    };
    let state = serde_json::from_str(&text).map_err(|err| anyhow::anyhow!("{} is malformed: {err}", path.display()))?;
    Ok(Some(state))
}

/// Removes the state file, on a clean stop: no admin command should try a
/// port that nothing listens on any more.
pub fn remove(data_dir: &Path) {
    if let Err(err) = std::fs::remove_file(path(data_dir))
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%err, "cannot remove the dev state file");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn state(port: u16) -> DevState {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        DevState {
            public_url: format!("http://127.0.0.1:{port}"),
            http_addr: addr(port),
            directory_addr: addr(port + 1),
            user_addr: addr(port + 2),
            group_addr: addr(port + 3),
            session_addr: addr(port + 4),
            role_addr: addr(port + 5),
            event_addr: addr(port + 6),
        }
    }

    #[test]
    fn the_state_is_written_for_the_owner_only_replaced_on_the_next_start_and_removed_on_stop() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data_dir = dir.path().join("data");
        assert_eq!(read(&data_dir).expect("no file is no state"), None);

        write(&data_dir, &state(8000)).expect("written");
        let mode = std::fs::metadata(path(&data_dir)).expect("a file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write(&data_dir, &state(9000)).expect("written again");
        assert_eq!(read(&data_dir).expect("readable"), Some(state(9000)));
        let leftovers: Vec<_> = std::fs::read_dir(&data_dir).expect("a directory").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");

        remove(&data_dir);
        assert_eq!(read(&data_dir).expect("no file is no state"), None);
    }

    #[test]
    fn the_admin_key_is_created_once_for_the_owner_only_and_kept() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data_dir = dir.path().join("data");
        assert_eq!(read_admin_key(&data_dir).expect("no key yet"), None);
        let key = admin_key(&data_dir).expect("created");
        assert!(key.starts_with("idmk_"));
        let mode = std::fs::metadata(api_key_path(&data_dir))
            .expect("a file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(admin_key(&data_dir).expect("kept"), key);
        assert_eq!(read_admin_key(&data_dir).expect("readable"), Some(key));
    }

    #[test]
    fn a_malformed_state_file_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(path(dir.path()), "{").expect("written");
        assert!(read(dir.path()).is_err());
    }
}
