//! `/v1/account`: what belongs to the installation as a whole.
//!
//! The account-level signing secret is CloudShare's model (seed 000): one secret per installation,
//! made on the first start, never regenerated, readable by the Account Manager (here: `admin`
//! keys) and by no other role. The `cloudshare` preset signs with it.

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
