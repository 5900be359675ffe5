//! Web Push: a notification when a job completes or fails.
//!
//! Pure Rust (no OpenSSL): messages are encrypted as RFC 8291 says (ECDH P-256 + HKDF-SHA256,
//! `aes128gcm` content coding of RFC 8188) and the push service is authorised with a VAPID JWT
//! (RFC 8292, ES256). Keys come from configuration (`VAPID_PRIVATE_KEY`, base64url of the
//! 32-byte P-256 scalar, as `npx web-push generate-vapid-keys` prints it; `VAPID_SUBJECT`, a
//! `mailto:` or `https:` contact).
//!
//! Subscriptions are small JSON objects in the output bucket under
//! `web/push-subscriptions/{sha256(endpoint)}.json`, so they work on every platform without a
//! table of their own; one that the push service reports gone (404, 410) is removed. The
//! subscription routes answer only over HTTPS (`X-Forwarded-Proto: https` from the proxy in
//! front), since browsers offer push only to secure pages anyway and the keys must not travel
//! in clear text. [`spawn_notifier`] watches jobs and sends the notifications.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use futures::TryStreamExt;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stereospot_core::platform::{JobListKind, PageRequest, Platform};
use stereospot_core::{Job, JobId, JobStatus};

use crate::error::WebError;
use crate::security::is_https;
use crate::{AppState, WebConfig};

/// Where subscriptions live in the output bucket.
pub const SUBSCRIPTIONS_PREFIX: &str = "web/push-subscriptions/";
/// Record size of the one `aes128gcm` record a message is.
const RECORD_SIZE: u32 = 4096;
/// Largest plaintext that fits one record (record size minus tag and delimiter).
const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 16 - 1 - 86;

/// Web Push failures.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("VAPID private key must be the base64url of a 32-byte P-256 scalar")]
    BadVapidKey,
    #[error("VAPID subject must be a mailto: or https: URL")]
    BadSubject,
    #[error("subscription key {0} is malformed")]
    BadSubscriptionKey(&'static str),
    #[error("push endpoint must be an https URL of a public host")]
    BadEndpoint,
    #[error("push message is too long ({0} bytes)")]
    TooLong(usize),
    #[error("encryption failed")]
    Crypto,
    #[error("push service request failed")]
    Http(#[from] reqwest::Error),
    #[error("push service answered {0}")]
    Status(u16),
}

/// The server's VAPID key pair and contact.
#[derive(Clone)]
pub struct VapidKeys {
    signing: SigningKey,
    public_b64: String,
    subject: String,
}

impl fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public_key", &self.public_b64)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl VapidKeys {
    /// From the base64url private scalar and the subject (`mailto:` or `https:`).
    pub fn from_base64url(private_key: &str, subject: &str) -> Result<Self, PushError> {
        let bytes = B64URL
            .decode(private_key.trim().trim_end_matches('='))
            .map_err(|_| PushError::BadVapidKey)?;
        let secret = SecretKey::from_slice(&bytes).map_err(|_| PushError::BadVapidKey)?;
        Self::from_secret(secret, subject)
    }

    /// A fresh key pair (tests, or to print one for configuration).
    pub fn generate(subject: &str) -> Result<Self, PushError> {
        Self::from_secret(random_secret(), subject)
    }

    fn from_secret(secret: SecretKey, subject: &str) -> Result<Self, PushError> {
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err(PushError::BadSubject);
        }
        let public = secret.public_key().to_encoded_point(false);
        Ok(Self {
            signing: SigningKey::from(&secret),
            public_b64: B64URL.encode(public.as_bytes()),
            subject: subject.to_string(),
        })
    }

    /// The application server key browsers subscribe with (base64url, uncompressed point).
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// The private scalar, base64url (to store a generated pair in configuration).
    pub fn private_key_base64url(&self) -> String {
        B64URL.encode(self.signing.to_bytes())
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for `endpoint` (RFC 8292).
    pub fn authorization(&self, endpoint: &str, now: i64) -> Result<String, PushError> {
        let audience = origin(endpoint).ok_or(PushError::BadEndpoint)?;
        let header = B64URL.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": now + 12 * 3600,
            "sub": self.subject,
        });
        let claims = B64URL.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        let jwt = format!("{signing_input}.{}", B64URL.encode(signature.to_bytes()));
        Ok(format!("vapid t={jwt}, k={}", self.public_b64))
    }
}

/// A P-256 secret from the OS random source (retrying the ~2^-32 invalid scalars).
fn random_secret() -> SecretKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SecretKey::from_slice(&bytes) {
            return k;
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && !authority.contains('@')).then(|| format!("{scheme}://{authority}"))
}

/// A browser's push subscription (`PushSubscription.toJSON()`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key, base64url of the uncompressed point.
    pub p256dh: String,
    /// 16 bytes of authentication secret, base64url.
    pub auth: String,
}

impl Subscription {
    fn decoded_keys(&self) -> Result<(PublicKey, [u8; 16]), PushError> {
        let p256dh = B64URL
            .decode(self.keys.p256dh.trim_end_matches('='))
            .map_err(|_| PushError::BadSubscriptionKey("p256dh"))?;
        let public = PublicKey::from_sec1_bytes(&p256dh)
            .map_err(|_| PushError::BadSubscriptionKey("p256dh"))?;
        let auth = B64URL
            .decode(self.keys.auth.trim_end_matches('='))
            .map_err(|_| PushError::BadSubscriptionKey("auth"))?;
        let auth: [u8; 16] = auth
            .try_into()
            .map_err(|_| PushError::BadSubscriptionKey("auth"))?;
        Ok((public, auth))
    }

    fn object_key(&self) -> String {
        let digest = Sha256::digest(self.endpoint.as_bytes());
        format!("{SUBSCRIPTIONS_PREFIX}{}.json", hex_lower(&digest))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the server may POST to `endpoint`: `https` to a name or a public address (push
/// services are public); `allow_insecure` also lets `http` and loopback through (tests).
pub fn endpoint_allowed(endpoint: &str, allow_insecure: bool) -> bool {
    if endpoint.len() > 2048
        || endpoint
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    if allow_insecure {
        return endpoint.starts_with("https://") || endpoint.starts_with("http://");
    }
    let Some(rest) = endpoint.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") || host.is_empty() {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some())
        }
        Err(_) => true,
    }
}

/// Encrypts `plaintext` for a subscriber (RFC 8291): the `aes128gcm` body, one record.
pub fn encrypt(
    ua_public: &PublicKey,
    auth_secret: &[u8; 16],
    plaintext: &[u8],
) -> Result<Vec<u8>, PushError> {
    encrypt_with(
        ua_public,
        auth_secret,
        plaintext,
        &random_secret(),
        rand::random(),
    )
}

fn encrypt_with(
    ua_public: &PublicKey,
    auth_secret: &[u8; 16],
    plaintext: &[u8],
    as_secret: &SecretKey,
    salt: [u8; 16],
) -> Result<Vec<u8>, PushError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(PushError::TooLong(plaintext.len()));
    }
    let ua_bytes = ua_public.to_encoded_point(false);
    let as_bytes = as_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0 || ua_public || as_public, 32)
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_bytes.as_bytes());
    key_info.extend_from_slice(as_bytes.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| PushError::Crypto)?;
    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| PushError::Crypto)?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| PushError::Crypto)?;
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2); // the last (and only) record's delimiter
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| PushError::Crypto)?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &record,
                aad: b"",
            },
        )
        .map_err(|_| PushError::Crypto)?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_bytes.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Decrypts an `aes128gcm` push body with the subscriber's keys (what a browser does; used by
/// the tests).
pub fn decrypt(ua_secret: &SecretKey, auth_secret: &[u8; 16], body: &[u8]) -> Option<Vec<u8>> {
    let salt = body.get(..16)?;
    let id_len = *body.get(20)? as usize;
    let as_public = PublicKey::from_sec1_bytes(body.get(21..21 + id_len)?).ok()?;
    let sealed = body.get(21 + id_len..)?;
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let mut key_info = Vec::new();
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_secret.public_key().to_encoded_point(false).as_bytes());
    key_info.extend_from_slice(as_public.to_encoded_point(false).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .ok()?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .ok()?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).ok()?;
    let mut record = Aes128Gcm::new_from_slice(&cek)
        .ok()?
        .decrypt(Nonce::from_slice(&nonce), sealed)
        .ok()?;
    // Strip the padding and the delimiter.
    while record.last() == Some(&0) {
        record.pop();
    }
    (record.pop() == Some(2)).then_some(record)
}

/// What a notification says.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub body: String,
    pub url: String,
}

impl Notification {
    pub fn for_job(job: &Job) -> Self {
        let name = job
            .title
            .clone()
            .unwrap_or_else(|| format!("Job {}", &job.job_id.to_string()[..8]));
        let title = match job.status {
            JobStatus::Completed => "Your 3D video is ready",
            _ => "The conversion failed",
        };
        Self {
            title: title.into(),
            body: name,
            url: format!("/jobs/{}", job.job_id),
        }
    }
}

/// Sends notifications to the stored subscriptions.
#[derive(Debug)]
pub struct PushSender {
    client: reqwest::Client,
    vapid: Option<VapidKeys>,
    allow_insecure: bool,
}

impl PushSender {
    pub fn new(config: &WebConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            client,
            vapid: config.vapid.clone(),
            allow_insecure: config.push_allow_insecure_endpoints,
        }
    }

    /// Sends one notification; `Status(404 | 410)` means the subscription is gone.
    pub async fn send(
        &self,
        subscription: &Subscription,
        notification: &Notification,
    ) -> Result<(), PushError> {
        let Some(vapid) = &self.vapid else {
            return Ok(());
        };
        if !endpoint_allowed(&subscription.endpoint, self.allow_insecure) {
            return Err(PushError::BadEndpoint);
        }
        let (ua_public, auth) = subscription.decoded_keys()?;
        let plaintext = serde_json::to_vec(notification).map_err(|_| PushError::Crypto)?;
        let body = encrypt(&ua_public, &auth, &plaintext)?;
        let response = self
            .client
            .post(&subscription.endpoint)
            .header(
                "Authorization",
                vapid.authorization(&subscription.endpoint, crate::now())?,
            )
            .header("TTL", "86400")
            .header("Urgency", "normal")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(PushError::Status(status.as_u16()))
        }
    }

    /// Sends `notification` to every stored subscription; removes the ones that are gone.
    /// Returns how many were delivered.
    pub async fn send_to_all(&self, platform: &Platform, notification: &Notification) -> usize {
        if self.vapid.is_none() {
            return 0;
        }
        let bucket = &platform.buckets.output;
        let keys = match platform
            .storage
            .list_prefix(bucket, SUBSCRIPTIONS_PREFIX)
            .await
        {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list push subscriptions");
                return 0;
            }
        };
        let mut delivered = 0;
        for key in keys {
            let subscription = match read_subscription(platform, &key).await {
                Some(s) => s,
                None => continue,
            };
            match self.send(&subscription, notification).await {
                Ok(()) => delivered += 1,
                Err(PushError::Status(404 | 410)) => {
                    tracing::info!(key, "push subscription expired; removing it");
                    let _ = platform.storage.delete(bucket, &key).await;
                }
                Err(e) => tracing::warn!(key, error = %e, "push notification failed"),
            }
        }
        delivered
    }
}

async fn read_subscription(platform: &Platform, key: &str) -> Option<Subscription> {
    let stream = platform
        .storage
        .get_stream(&platform.buckets.output, key, None)
        .await
        .ok()?;
    let bytes = stream
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn push_refused(headers: &HeaderMap, state: &AppState) -> Option<WebError> {
    if state.config.vapid.is_none() {
        return Some(WebError::new(
            StatusCode::NOT_FOUND,
            "Web Push is not configured on this server",
        ));
    }
    if !is_https(headers) && !state.config.push_allow_insecure_endpoints {
        return Some(WebError::forbidden("Web Push is only available over HTTPS"));
    }
    None
}

pub(crate) async fn vapid_public_key(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if let Some(e) = push_refused(&headers, &state) {
        return Err(e);
    }
    let key = state
        .config
        .vapid
        .as_ref()
        .map(|v| v.public_key().to_string())
        .unwrap_or_default();
    Ok(Json(serde_json::json!({ "public_key": key })).into_response())
}

pub(crate) async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Subscription>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    if let Some(e) = push_refused(&headers, &state) {
        return Err(e);
    }
    let Json(subscription) = body.map_err(|e| WebError::new(e.status(), e.body_text()))?;
    if !endpoint_allowed(
        &subscription.endpoint,
        state.config.push_allow_insecure_endpoints,
    ) {
        return Err(WebError::bad_request(PushError::BadEndpoint.to_string()));
    }
    subscription
        .decoded_keys()
        .map_err(|e| WebError::bad_request(e.to_string()))?;
    let json = serde_json::to_vec(&subscription)
        .map_err(|e| WebError::internal("serialising a subscription failed", &e))?;
    state
        .platform
        .storage
        .put_bytes(
            &state.platform.buckets.output,
            &subscription.object_key(),
            json.into(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "subscribed": true })),
    )
        .into_response())
}

/// Watches the jobs in progress and notifies subscribers when one completes or fails, every
/// `interval`, until `shutdown` resolves. Jobs that finish while no server runs are not
/// announced.
pub fn spawn_notifier(
    state: AppState,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            _ = notifier_loop(state, interval) => {}
            _ = shutdown => {}
        }
    })
}

async fn notifier_loop(state: AppState, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running: Option<HashSet<JobId>> = None;
    loop {
        ticker.tick().await;
        let now_running = match in_progress_ids(&state.platform).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "push notifier cannot list jobs");
                continue;
            }
        };
        if let Some(before) = &running {
            for id in before.difference(&now_running) {
                if let Ok(Some(job)) = state.platform.jobs.get(*id).await
                    && matches!(job.status, JobStatus::Completed | JobStatus::Failed)
                {
                    let n = state
                        .push
                        .send_to_all(&state.platform, &Notification::for_job(&job))
                        .await;
                    tracing::info!(job_id = %id, status = %job.status, delivered = n, "push notifications sent");
                }
            }
        }
        running = Some(now_running);
    }
}

async fn in_progress_ids(
    platform: &Platform,
) -> Result<HashSet<JobId>, stereospot_core::PlatformError> {
    let mut ids = HashSet::new();
    let mut cursor = None;
    loop {
        let page = platform
            .jobs
            .list(JobListKind::InProgress, PageRequest { limit: 500, cursor })
            .await?;
        ids.extend(page.items.iter().map(|j| j.job_id));
        match page.next_cursor {
            Some(c) if ids.len() < 10_000 => cursor = Some(c),
            _ => return Ok(ids),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn encryption_round_trips_and_has_the_rfc8188_header() {
        let ua = random_secret();
        let auth = [7u8; 16];
        let body = encrypt(&ua.public_key(), &auth, b"hello push").unwrap();
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(body[21], 4, "uncompressed point");
        assert_eq!(decrypt(&ua, &auth, &body).unwrap(), b"hello push");
        assert!(
            decrypt(&ua, &[8u8; 16], &body).is_none(),
            "wrong auth secret"
        );
        assert!(encrypt(&ua.public_key(), &auth, &vec![0; 5000]).is_err());
    }

    #[test]
    fn vapid_jwt_verifies_with_the_public_key() {
        let keys = VapidKeys::generate("mailto:ops@example.com").unwrap();
        let again =
            VapidKeys::from_base64url(&keys.private_key_base64url(), "mailto:ops@example.com")
                .unwrap();
        assert_eq!(again.public_key(), keys.public_key());
        let auth = keys
            .authorization("https://push.example.net/send/abc?x=1", 1000)
            .unwrap();
        let (t, k) = auth
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, keys.public_key());
        let (input, sig) = t.rsplit_once('.').unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(input.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1000 + 12 * 3600);
        let vk = VerifyingKey::from_sec1_bytes(&B64URL.decode(k).unwrap()).unwrap();
        let sig = Signature::from_slice(&B64URL.decode(sig).unwrap()).unwrap();
        vk.verify(input.as_bytes(), &sig).unwrap();
        assert!(VapidKeys::generate("ops@example.com").is_err());
        assert!(VapidKeys::from_base64url("AAAA", "mailto:x@y").is_err());
    }

    #[test]
    fn endpoints_must_be_public_https() {
        assert!(endpoint_allowed(
            "https://fcm.googleapis.com/fcm/send/x",
            false
        ));
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://localhost:8080/x",
            "https://user@host/x",
            "https://100.64.0.1/x",
            "file:///etc/passwd",
        ] {
            assert!(!endpoint_allowed(bad, false), "{bad}");
        }
        assert!(endpoint_allowed("http://127.0.0.1:9/x", true));
    }
}
