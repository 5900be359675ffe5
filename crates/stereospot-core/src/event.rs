//! S3 object-created event notifications: the message body of the chunking, video-worker and
//! segment-output queues on every platform.
//!
//! Keys in notifications are form-encoded (`+` is a space, then percent-decoding), by AWS and by
//! moto (`quote_plus`), so keys are always decoded before use and never compared raw. Messages
//! without `Records` (the `s3:TestEvent` S3 sends when a notification is configured) parse to an
//! empty list and are skipped by consumers.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// One object named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventObject {
    pub event_name: String,
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    pub size: Option<u64>,
}

/// A message body that is not an S3 event we can read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("message body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("object key {0:?} is not valid percent-encoded UTF-8")]
    KeyEncoding(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    #[serde(rename = "Records", default)]
    records: Option<Vec<Record>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    #[serde(
        rename = "eventVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    event_version: Option<String>,
    #[serde(
        rename = "eventSource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    event_source: Option<String>,
    #[serde(rename = "awsRegion", default, skip_serializing_if = "Option::is_none")]
    aws_region: Option<String>,
    #[serde(rename = "eventTime", default, skip_serializing_if = "Option::is_none")]
    event_time: Option<String>,
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Debug, Serialize, Deserialize)]
struct S3Entity {
    #[serde(
        rename = "s3SchemaVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    schema_version: Option<String>,
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Serialize, Deserialize)]
struct Bucket {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arn: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Object {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequencer: Option<String>,
}

/// Decodes a notification key: `+` becomes a space, then percent-decoding.
pub fn decode_key(raw: &str) -> Result<String, EventError> {
    let plus = raw.replace('+', " ");
    percent_decode_str(&plus)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| EventError::KeyEncoding(raw.chars().take(256).collect()))
}

/// Characters AWS leaves unescaped in notification keys (besides alphanumerics).
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

/// Encodes a key the way S3 notifications do (spaces as `+`).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_SET)
        .to_string()
        .replace(' ', "+")
}

/// Parses a message body. Returns an empty list for messages without `Records`.
pub fn parse_s3_event(body: &str) -> Result<Vec<EventObject>, EventError> {
    let env: Envelope = serde_json::from_str(body)?;
    env.records
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            Ok(EventObject {
                event_name: r.event_name,
                bucket: r.s3.bucket.name,
                key: decode_key(&r.s3.object.key)?,
                size: r.s3.object.size,
            })
        })
        .collect()
}

/// Builds an `ObjectCreated:Put` event in the shape AWS sends (used by the local platform's
/// notifications and by tests). `event_time` is an ISO 8601 string supplied by the caller.
pub fn object_created_event(
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    event_time: &str,
) -> String {
    let env = Envelope {
        records: Some(vec![Record {
            event_version: Some("2.1".into()),
            event_source: Some("aws:s3".into()),
            aws_region: Some("local".into()),
            event_time: Some(event_time.into()),
            event_name: "ObjectCreated:Put".into(),
            s3: S3Entity {
                schema_version: Some("1.0".into()),
                bucket: Bucket {
                    name: bucket.into(),
                    arn: Some(format!("arn:aws:s3:::{bucket}")),
                },
                object: Object {
                    key: encode_key(key),
                    size: Some(size),
                    etag: Some(etag.into()),
                    sequencer: None,
                },
            },
        }]),
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string(&env).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real notification body as AWS documents it, with a form-encoded key.
    const AWS_SAMPLE: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:X"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"1"},"s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"in-bucket","ownerIdentity":{"principalId":"X"},"arn":"arn:aws:s3:::in-bucket"},"object":{"key":"input/a+b%2Bc%C3%A9/source.mp4","size":1024,"eTag":"abc","sequencer":"0A"}}}]}"#;

    #[test]
    fn parses_aws_shape_and_form_decodes_keys() {
        let objs = parse_s3_event(AWS_SAMPLE).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].bucket, "in-bucket");
        assert_eq!(objs[0].key, "input/a b+cé/source.mp4");
        assert_eq!(objs[0].size, Some(1024));
        assert_eq!(objs[0].event_name, "ObjectCreated:Put");
    }

    #[test]
    fn test_event_without_records_is_skipped() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00.000Z","Bucket":"b"}"#;
        assert!(parse_s3_event(body).unwrap().is_empty());
    }

    #[test]
    fn moto_style_quote_plus_keys_decode() {
        // moto encodes with quote_plus: '/' as %2F and spaces as '+'
        assert_eq!(
            decode_key("jobs%2Fx+y%2Ffinal.mp4").unwrap(),
            "jobs/x y/final.mp4"
        );
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert!(parse_s3_event("").is_err());
        assert!(parse_s3_event("{\"Records\":[{}]}").is_err());
        assert!(parse_s3_event("{\"Records\":[{\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"%FF\"}}}]}").is_err());
    }

    proptest! {
        #[test]
        fn built_events_parse_back(bucket in "[a-z0-9-]{3,20}", key in "\\PC{1,60}", size in any::<u64>()) {
            let body = object_created_event(&bucket, &key, size, "e", "2026-01-01T00:00:00Z");
            let objs = parse_s3_event(&body).unwrap();
            prop_assert_eq!(objs.len(), 1);
            prop_assert_eq!(&objs[0].bucket, &bucket);
            prop_assert_eq!(&objs[0].key, &key);
            prop_assert_eq!(objs[0].size, Some(size));
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_s3_event(&s);
        }

        #[test]
        fn decode_never_panics(s in ".*") {
            let _ = decode_key(&s);
        }
    }
}
