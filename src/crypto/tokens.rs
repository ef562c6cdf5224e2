//! Access tokens: HS256 only, signed and verified with keys made once at start-up.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::password::hash_password;
use crate::config::Secret;
use crate::domain::role::Role;
use crate::error::{AppError, AppResult};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id, as a string (RFC 7519).
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The bank partner of a `bank` user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_partner_id: Option<i64>,
    /// The retail partner of a `retail` user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retail_partner_id: Option<i64>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// A unique token id.
    pub jti: String,
    /// An API client's token: the scopes granted (space-separated), at most the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The deployment that issued it (`crate::db::deployment`), as `urn:umkm-api:deployment:<id>`.
    pub iss: String,
    /// The deployment it is for: the issuer itself.
    pub aud: String,
    /// The user's token generation when it was issued: a password change, a new role or
    /// partner and a disable raise the user's, and end every token of an older one.
    #[serde(default)]
    pub generation: i32,
    /// An API client's token: the id of the secret it was granted with; revoking that secret
    /// ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<i64>,
}

/// Who a token is issued to.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The user's id.
    pub id: i64,
    /// The user's role.
    pub role: Role,
    /// The bank partner of a `bank` user.
    pub bank_partner_id: Option<i64>,
    /// The retail partner of a `retail` user.
    pub retail_partner_id: Option<i64>,
    /// The scopes granted to an API client's token (space-separated); `None` for a person.
    pub scope: Option<&'a str>,
    /// The user's token generation.
    pub generation: i32,
    /// An API client's token: the secret it was granted with.
    pub secret_id: Option<i64>,
}

/// Signing and verification keys, made once at start-up.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// A real hash of a random password, verified against when the e-mail is unknown so that
    /// the answer takes as long as for a known one.
    dummy_hash: String,
    /// The key of the login throttle's keys (derived from the secret, so that every instance
    /// counts under the same keys).
    throttle: Vec<u8>,
    /// The key that signs consistency tokens (derived from the secret and the deployment).
    consistency: Vec<u8>,
    /// `iss` and `aud` of every token: the deployment.
    issuer: String,
}

impl Keys {
    /// Keys for `secret`, issuing tokens that live `ttl` in the name of `deployment`.
    pub fn new(secret: &Secret, ttl: Duration, deployment: &str) -> AppResult<Keys> {
        let issuer = format!("urn:umkm-api:deployment:{deployment}");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iat", "iss", "aud"]);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&issuer]);
        validation.leeway = 30;
        Ok(Keys {
            encoding: EncodingKey::from_secret(secret.expose()).map_err(AppError::internal)?,
            decoding: DecodingKey::from_secret(secret.expose()).map_err(AppError::internal)?,
            validation,
            ttl,
            dummy_hash: hash_password(&crate::config::random_token(24))?,
            throttle: hmac_sha256(secret.expose(), b"umkm-api login throttle v1")?,
            consistency: hmac_sha256(
                secret.expose(),
                format!("umkm-api consistency v1 {issuer}").as_bytes(),
            )?,
            issuer,
        })
    }

    /// Seconds a new token lives.
    pub fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// The hash verified against when a login names an unknown e-mail.
    pub fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    /// The login throttle's key for attempts on `account` (an e-mail or a client id) from
    /// `source`: fixed length, and neither can be read back from it.
    pub fn throttle_key(&self, account: &str, source: &str) -> AppResult<String> {
        let message = [account.as_bytes(), b"\0", source.as_bytes()].concat();
        let mac = hmac_sha256(&self.throttle, &message)?;
        Ok(mac.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A signed token for `user`.
    pub fn issue(&self, user: &Subject<'_>) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            bank_partner_id: user.bank_partner_id,
            retail_partner_id: user.retail_partner_id,
            iat: now,
            exp: now + self.ttl_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
            scope: user.scope.map(str::to_owned),
            iss: self.issuer.clone(),
            aud: self.issuer.clone(),
            generation: user.generation,
            secret_id: user.secret_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Verifies a token's signature, algorithm (HS256 only) and expiry.
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let reason = match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "the token must be signed with HS256"
                    }
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                        "the token was issued by another deployment, or before a restore; log in again"
                    }
                    ErrorKind::MissingRequiredClaim(claim) if claim == "iss" || claim == "aud" => {
                        "the token names no deployment; log in again"
                    }
                    _ => "the token is malformed",
                };
                AppError::Unauthorized(reason.into())
            })
    }
}

/// Bytes of a consistency token's MAC kept (128 bits).
const CONSISTENCY_MAC_BYTES: usize = 16;

impl Keys {
    /// The MAC of a consistency token's `message` (`crate::http::consistency`), base64url.
    pub fn consistency_mac(&self, message: &[u8]) -> AppResult<String> {
        use base64::Engine;
        let mac = hmac_sha256(&self.consistency, message)?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac[..CONSISTENCY_MAC_BYTES]))
    }

    /// Whether `mac` (base64url) is this deployment's MAC of `message`, compared in constant time.
    pub fn consistency_mac_matches(&self, message: &[u8], mac: &str) -> bool {
        use base64::Engine;
        use hmac::{Hmac, KeyInit, Mac};
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac) else { return false };
        if tag.len() != CONSISTENCY_MAC_BYTES {
            return false;
        }
        let Ok(mut check) = Hmac::<sha2::Sha256>::new_from_slice(&self.consistency) else { return false };
        check.update(message);
        check.verify_truncated_left(&tag).is_ok()
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> AppResult<Vec<u8>> {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).map_err(AppError::internal)?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}
