//! `/v1/account`: what belongs to the installation as a whole.
//!
//! The account-level signing secret is CloudShare's model (seed 000): one secret per installation,
//! made on the first start, "created and maintained at the account level by the Account
//! Manager" (here: `admin` keys), readable by no other role. The `cloudshare` preset signs with
//! it; its webhooks show it as their secret and cannot change it, so rotating it is the admin's
//! operation here, and it applies to every such webhook at once.

use axum::Json;
use axum::extract::State;
use herald_core::auth::Action;
use herald_core::secret::SigningSecret;
use serde::Serialize;

use crate::ApiState;
use crate::auth::Caller;
use crate::problem::{ApiError, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountSecretView {
    /// The installation's account-level signing secret (`whsec_…`). Webhooks whose signing uses
    /// `"secret": "account"` (the `cloudshare` preset) are signed with it, as typed: HMAC-SHA256
    /// keyed by this string's bytes.
    secret: String,
}

/// Get the installation's account-level signing secret (admins only).
#[utoipa::path(get, operation_id = "getAccountSecret", path = "/v1/account/secret", tag = "account",
    responses((status = 200, body = AccountSecretView), (status = 403, body = Problem)))]
pub async fn secret(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<AccountSecretView>, ApiError> {
    caller.require(Action::ReadAccountSecret)?;
    // Made at start (see `herald::app`); should it be missing, the first reader makes it, in the
    // same first-writer-wins way.
    let secret = state
        .store
        .account_secret(&SigningSecret::generate())
        .await?;
    Ok(Json(AccountSecretView {
        secret: secret.expose().to_owned(),
    }))
}

/// Replace the installation's account-level signing secret with a new one, returned here
/// (admins only). Every webhook signed with it (the `cloudshare` preset) switches at once:
/// its scheme carries one signature, so there is no grace period.
#[utoipa::path(post, operation_id = "rotateAccountSecret", path = "/v1/account/secret/rotate", tag = "account",
    responses((status = 200, body = AccountSecretView), (status = 403, body = Problem)))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<AccountSecretView>, ApiError> {
    caller.require(Action::ReadAccountSecret)?;
    let secret = SigningSecret::generate();
    state.engine.rotate_account_secret(secret.clone()).await?;
    Ok(Json(AccountSecretView {
        secret: secret.expose().to_owned(),
    }))
}
