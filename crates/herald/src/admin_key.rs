//! `herald admin-key create`: a new admin API key made straight in the store, for an operator
//! who lost every admin key (the API will not revoke the last one, but a key can be lost).
//!
//! It runs on the server's machine, with the server's `--data-dir` or `--database-url`: whoever
//! can open the database already owns the installation, so it asks for no key. On PostgreSQL
//! it works while nodes run (they look a key they have not cached up in the database). On
//! SQLite a running server holds the data directory's `herald.lock`, and this command then
//! stops, saying so, without touching the database: stop the server, run it, start the server.
//! (Opening the file beside a running server would skip the lock that keeps one process per
//! directory, and would run migrations under a server that may be an older version.)

use std::path::PathBuf;

use herald_core::InvalidField;
use herald_core::api_key::ApiKey;
use herald_core::auth::Role;
use herald_core::secret::ApiKeyToken;
use herald_core::time;
use herald_store::{StoreError, StoreTarget};

/// Why no key was made.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error(
        "no Herald database at {}: give the server's --data-dir (or --database-url)", path.display()
    )]
    NoDatabase { path: PathBuf },
    #[error(
        "a Herald server is running on {} (it holds herald.lock there), and one process owns an SQLite data directory: stop the server, run `herald admin-key create` again, then start the server", path.display()
    )]
    ServerRunning { path: PathBuf },
    #[error("the key's {0}")]
    Invalid(#[from] InvalidField),
    #[error("the store")]
    Store(#[source] StoreError),
}

/// Makes a new admin key named `name` in the store at `target` and returns its token.
pub async fn create(target: &StoreTarget, name: &str) -> Result<ApiKeyToken, AdminKeyError> {
    // Checked before the store is opened: a bad name changes nothing.
    let name = herald_core::validation::text("name", name, 100)?;
    if let StoreTarget::Sqlite { path } = target
        && !path.exists()
    {
        // Opening would create an empty database, and a key for it: not what a typo deserves.
        return Err(AdminKeyError::NoDatabase { path: path.clone() });
    }
    let store = herald_store::connect(target).await.map_err(|e| match e {
        StoreError::InUse { path } => AdminKeyError::ServerRunning {
            path: path.parent().map(PathBuf::from).unwrap_or(path),
        },
        other => AdminKeyError::Store(other),
    })?;
    let token = ApiKeyToken::generate();
    let key = ApiKey::issue(name, Role::Admin, None, token.clone(), time::now())?;
    store
        .create_api_key(&key)
        .await
        .map_err(AdminKeyError::Store)?;
    Ok(token)
}
