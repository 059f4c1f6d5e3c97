//! For other crates' tests (feature `testing`): the directory-service that
//! resolves a test process's API keys, started once per process on a
//! SQLite file of its own, with an admin key that has every scope.

use std::net::SocketAddr;
use std::sync::OnceLock;

use idmesh_runtime::auth::{AuthChannel, Credential, Scope, ServiceIdentity};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{BootstrapKey, Config};

/// The test process's directory-service.
#[derive(Debug, Clone)]
pub struct TestDirectory {
    pub addr: SocketAddr,
    pub admin_key: String,
}

/// The test process's directory-service, started on first use.
pub fn shared() -> TestDirectory {
    static DIRECTORY: OnceLock<TestDirectory> = OnceLock::new();
    idmesh_testkit::once_per_process(&DIRECTORY, || async {
        let database = idmesh_testkit::ScratchDatabase::new(idmesh_testkit::Backend::Sqlite);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let admin_key = crate::generate_api_key().expect("randomness");
        let mut config = Config::new(database.url().to_owned());
        config.bootstrap_keys.push(BootstrapKey {
            name: "test-admin".to_owned(),
            secret: admin_key.clone(),
            scopes: Scope::ALL.to_vec(),
        });
        tokio::spawn(async move {
            // The file lives as long as the server.
            let _database = database;
            crate::serve(listener, config, CancellationToken::new())
                .await
                .expect("the test directory-service runs");
        });
        TestDirectory { addr, admin_key }
    })
}

impl TestDirectory {
    /// The admin key, as a credential.
    pub fn admin(&self) -> Credential {
        Credential::new(&self.admin_key).expect("a valid key")
    }

    /// A service identity calling with the admin key.
    pub fn identity(&self) -> ServiceIdentity {
        ServiceIdentity::new(self.addr.to_string(), self.admin())
    }

    /// A channel to `addr` calling with the admin key.
    pub fn channel(&self, addr: SocketAddr) -> AuthChannel {
        AuthChannel::new(idmesh_testkit::channel(addr), self.admin())
    }
}
