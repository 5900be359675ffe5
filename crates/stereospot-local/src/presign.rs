//! HMAC-SHA256 presigned object URLs for the local platform.
//!
//! A URL looks like
//! `{base_url}/_objects/{bucket}/{percent-encoded key}?X-Expires=<unix>&X-Disposition=..&X-Content-Type=..&X-Signature=<hex>`.
//! The signature covers the method (GET or PUT; HEAD is checked as GET), the bucket, the decoded
//! key, the expiry and the optional content disposition and content type, each length-prefixed so
//! that no two different requests share a canonical string. The secret is 32 random bytes created
//! on first open and kept in the data directory with mode 0600. Verification is constant-time.

use std::fmt;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::TryRngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use stereospot_core::UnixSeconds;

type HmacSha256 = Hmac<Sha256>;

/// The path prefix under which presigned URLs are served.
pub const OBJECTS_PATH: &str = "/_objects";

/// Query parameter names.
pub const PARAM_EXPIRES: &str = "X-Expires";
pub const PARAM_DISPOSITION: &str = "X-Disposition";
pub const PARAM_CONTENT_TYPE: &str = "X-Content-Type";
pub const PARAM_SIGNATURE: &str = "X-Signature";

/// Everything but RFC 3986 unreserved characters is escaped in path segments and query values.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The method a URL is signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedMethod {
    Get,
    Put,
}

impl SignedMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

/// The signed fields of one presigned request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    pub method: SignedMethod,
    pub bucket: &'a str,
    pub key: &'a str,
    pub expires: UnixSeconds,
    pub content_disposition: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

impl SignedRequest<'_> {
    /// The unambiguous byte string that is MACed.
    fn canonical(&self) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, value: &str) {
            out.extend_from_slice(value.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        fn optional(out: &mut Vec<u8>, value: Option<&str>) {
            match value {
                None => out.extend_from_slice(b"-\n"),
                Some(v) => {
                    out.push(b'+');
                    field(out, v);
                }
            }
        }
        let mut out = Vec::with_capacity(64 + self.bucket.len() + self.key.len());
        out.extend_from_slice(b"stereospot-presign-v1\n");
        field(&mut out, self.method.as_str());
        field(&mut out, self.bucket);
        field(&mut out, self.key);
        field(&mut out, &self.expires.to_string());
        optional(&mut out, self.content_disposition);
        optional(&mut out, self.content_type);
        out
    }
}

/// Signs and verifies presigned URLs with a secret key.
#[derive(Clone)]
pub struct UrlSigner {
    secret: [u8; 32],
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner").finish_non_exhaustive()
    }
}

impl UrlSigner {
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// Reads the secret at `path`, or creates it (32 bytes from the OS random source, mode 0600,
    /// fsynced) when the file does not exist.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "presign secret {} must be exactly 32 bytes, found {}",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                return Ok(Self { secret });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut secret)
            .map_err(std::io::Error::other)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(&secret)?;
                file.sync_all()?;
                if let Some(dir) = path.parent() {
                    crate::storage::sync_dir(dir)?;
                }
                Ok(Self { secret })
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // It may still be being written; give the writer a moment.
                for _ in 0..50 {
                    if std::fs::metadata(path)?.len() == 32 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Self::load_or_create(path)
            }
            Err(e) => Err(e),
        }
    }

    /// The hex HMAC-SHA256 of a request.
    pub fn sign(&self, request: &SignedRequest<'_>) -> String {
        hex::encode(self.mac(request))
    }

    fn mac(&self, request: &SignedRequest<'_>) -> [u8; 32] {
        // HMAC accepts keys of any length; 32 bytes can never be rejected.
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(&request.canonical());
        mac.finalize().into_bytes().into()
    }

    /// Whether `signature_hex` is the signature of `request` (constant-time comparison).
    pub fn verify(&self, request: &SignedRequest<'_>, signature_hex: &str) -> bool {
        let Ok(given) = hex::decode(signature_hex) else {
            return false;
        };
        let expected = self.mac(request);
        given.len() == expected.len() && bool::from(expected.ct_eq(&given))
    }

    /// Builds the full URL of a signed request.
    pub fn url(&self, base_url: &str, request: &SignedRequest<'_>) -> String {
        let mut url = String::with_capacity(128 + request.key.len() * 2);
        url.push_str(base_url.trim_end_matches('/'));
        url.push_str(OBJECTS_PATH);
        url.push('/');
        url.extend(utf8_percent_encode(request.bucket, COMPONENT));
        for segment in request.key.split('/') {
            url.push('/');
            url.extend(utf8_percent_encode(segment, COMPONENT));
        }
        url.push('?');
        url.push_str(PARAM_EXPIRES);
        url.push('=');
        url.push_str(&request.expires.to_string());
        if let Some(d) = request.content_disposition {
            url.push('&');
            url.push_str(PARAM_DISPOSITION);
            url.push('=');
            url.extend(utf8_percent_encode(d, COMPONENT));
        }
        if let Some(t) = request.content_type {
            url.push('&');
            url.push_str(PARAM_CONTENT_TYPE);
            url.push('=');
            url.extend(utf8_percent_encode(t, COMPONENT));
        }
        url.push('&');
        url.push_str(PARAM_SIGNATURE);
        url.push('=');
        url.push_str(&self.sign(request));
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(key: &'a str, disposition: Option<&'a str>) -> SignedRequest<'a> {
        SignedRequest {
            method: SignedMethod::Get,
            bucket: "b",
            key,
            expires: 100,
            content_disposition: disposition,
            content_type: None,
        }
    }

    #[test]
    fn verify_accepts_own_and_rejects_every_changed_field() {
        let s = UrlSigner::from_secret([7; 32]);
        let r = req("a/b c", Some("attachment"));
        let sig = s.sign(&r);
        assert!(s.verify(&r, &sig));
        let changed = [
            SignedRequest {
                method: SignedMethod::Put,
                ..r.clone()
            },
            SignedRequest {
                bucket: "c",
                ..r.clone()
            },
            SignedRequest {
                key: "a/b d",
                ..r.clone()
            },
            SignedRequest {
                expires: 101,
                ..r.clone()
            },
            SignedRequest {
                content_disposition: None,
                ..r.clone()
            },
            SignedRequest {
                content_disposition: Some(""),
                ..r.clone()
            },
            SignedRequest {
                content_type: Some("attachment"),
                content_disposition: None,
                ..r.clone()
            },
        ];
        for c in &changed {
            assert!(!s.verify(c, &sig), "{c:?} verified");
        }
        assert!(!s.verify(&r, &sig[..62]));
        assert!(!s.verify(&r, "zz"));
        assert!(!UrlSigner::from_secret([8; 32]).verify(&r, &sig));
    }

    #[test]
    fn canonical_strings_are_unambiguous() {
        // Moving bytes between adjacent fields must change the signature.
        let s = UrlSigner::from_secret([1; 32]);
        let a = SignedRequest {
            bucket: "ab",
            key: "c",
            ..req("", None)
        };
        let b = SignedRequest {
            bucket: "a",
            key: "bc",
            ..req("", None)
        };
        assert_ne!(s.sign(&a), s.sign(&b));
    }

    #[test]
    fn url_encodes_key_segments_and_values() {
        let s = UrlSigner::from_secret([1; 32]);
        let url = s.url(
            "http://h:1/",
            &req("dir/a b+%é.mp4", Some("attachment; filename=\"x y\"")),
        );
        assert!(
            url.starts_with("http://h:1/_objects/b/dir/a%20b%2B%25%C3%A9.mp4?X-Expires=100&X-Disposition=attachment%3B%20filename%3D%22x%20y%22&X-Signature="),
            "{url}"
        );
    }

    #[test]
    fn secret_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let a = UrlSigner::load_or_create(&path).unwrap();
        let b = UrlSigner::load_or_create(&path).unwrap();
        assert_eq!(a.secret, b.secret);
        assert_ne!(a.secret, [0; 32]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(UrlSigner::load_or_create(&path).is_err());
    }
}
