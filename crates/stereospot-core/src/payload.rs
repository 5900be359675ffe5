//! Queue message bodies.
//!
//! | queue | body |
//! |---|---|
//! | chunking | S3 event for `input/{job_id}/source.mp4` ([`crate::event`]) |
//! | video-worker | S3 event for a segment, read into [`VideoWorkerPayload`] |
//! | segment-output | S3 event for a converted segment, read into [`SegmentOutputPayload`] |
//! | reassembly | [`ReassemblyPayload`] |
//! | deletion | [`DeletionPayload`] |
//! | ingest | [`IngestPayload`] (`source_type` discriminator) |

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{ObjectKey, s3_uri};
use crate::{JobId, StereoMode};

/// A body that is not the payload its queue carries.
#[derive(Debug, thiserror::Error)]
#[error("malformed {queue} message: {source}")]
pub struct PayloadError {
    pub queue: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// Decodes a JSON payload of the named queue.
pub fn decode<T: DeserializeOwned>(queue: &'static str, body: &str) -> Result<T, PayloadError> {
    serde_json::from_str(body).map_err(|source| PayloadError { queue, source })
}

/// Encodes a payload as a message body.
pub fn encode<T: Serialize>(payload: &T) -> String {
    // Payloads are plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_string(payload).unwrap_or_default()
}

/// One segment to convert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoWorkerPayload {
    pub job_id: JobId,
    pub segment_index: u32,
    pub total_segments: u32,
    pub mode: StereoMode,
    pub segment_s3_uri: String,
}

impl VideoWorkerPayload {
    /// Reads a segment key from an input-bucket event; `None` for any other key.
    pub fn from_segment_key(bucket: &str, key: &str) -> Option<Self> {
        match ObjectKey::parse(key).ok()? {
            ObjectKey::Segment {
                job_id,
                index,
                total,
                mode,
            } => Some(Self {
                job_id,
                segment_index: index,
                total_segments: total,
                mode,
                segment_s3_uri: s3_uri(bucket, key),
            }),
            _ => None,
        }
    }

    /// Where the converted segment goes.
    pub fn output_key(&self) -> ObjectKey {
        ObjectKey::SegmentOutput {
            job_id: self.job_id,
            index: self.segment_index,
        }
    }
}

/// A converted segment that appeared in the output bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentOutputPayload {
    pub job_id: JobId,
    pub segment_index: u32,
    pub output_s3_uri: String,
}

impl SegmentOutputPayload {
    /// Reads a segment-output key; `None` for anything else (`final.mp4` included).
    pub fn from_output_key(bucket: &str, key: &str) -> Option<Self> {
        match ObjectKey::parse(key).ok()? {
            ObjectKey::SegmentOutput { job_id, index } => Some(Self {
                job_id,
                segment_index: index,
                output_s3_uri: s3_uri(bucket, key),
            }),
            _ => None,
        }
    }
}

/// Join the converted segments of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassemblyPayload {
    pub job_id: JobId,
}

/// Remove every object of a deleted job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionPayload {
    pub job_id: JobId,
}

/// Where an ingested video comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source_type", rename_all = "snake_case")]
pub enum IngestSource {
    /// A page or file URL that yt-dlp can read (YouTube and the many sites it supports).
    Url { source_url: String },
}

/// Download a video from a URL into the job's source key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestPayload {
    pub job_id: JobId,
    #[serde(flatten)]
    pub source: IngestSource,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> JobId {
        JobId::from_parts(42, [5; 10])
    }

    #[test]
    fn segment_events_become_worker_payloads() {
        let key = ObjectKey::segment(id(), 3, 9, StereoMode::Sbs)
            .unwrap()
            .to_string();
        let p = VideoWorkerPayload::from_segment_key("in", &key).unwrap();
        assert_eq!(p.segment_index, 3);
        assert_eq!(p.total_segments, 9);
        assert_eq!(p.mode, StereoMode::Sbs);
        assert_eq!(p.segment_s3_uri, format!("s3://in/{key}"));
        assert_eq!(p.output_key(), ObjectKey::segment_output(id(), 3).unwrap());
        assert!(
            VideoWorkerPayload::from_segment_key("in", &ObjectKey::source(id()).to_string())
                .is_none()
        );
    }

    #[test]
    fn final_output_is_not_a_segment_output() {
        let fin = ObjectKey::final_output(id()).to_string();
        assert!(SegmentOutputPayload::from_output_key("out", &fin).is_none());
        let seg = ObjectKey::segment_output(id(), 0).unwrap().to_string();
        assert_eq!(
            SegmentOutputPayload::from_output_key("out", &seg)
                .unwrap()
                .segment_index,
            0
        );
    }

    #[test]
    fn ingest_has_a_source_type_discriminator() {
        let p = IngestPayload {
            job_id: id(),
            source: IngestSource::Url {
                source_url: "https://example.com/v".into(),
            },
        };
        let body = encode(&p);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["source_type"], "url");
        assert_eq!(v["source_url"], "https://example.com/v");
        assert_eq!(decode::<IngestPayload>("ingest", &body).unwrap(), p);
        let bad = format!(
            r#"{{"job_id":"{}","source_type":"ftp","source_url":"x"}}"#,
            id()
        );
        assert!(decode::<IngestPayload>("ingest", &bad).is_err());
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        let e = decode::<ReassemblyPayload>("reassembly", r#"{"job_id":"../etc"}"#).unwrap_err();
        assert_eq!(e.queue, "reassembly");
        assert!(decode::<DeletionPayload>("deletion", "").is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(s in ".*") {
            let _ = decode::<ReassemblyPayload>("reassembly", &s);
            let _ = decode::<DeletionPayload>("deletion", &s);
            let _ = decode::<IngestPayload>("ingest", &s);
            let _ = decode::<VideoWorkerPayload>("video-worker", &s);
            let _ = VideoWorkerPayload::from_segment_key("b", &s);
            let _ = SegmentOutputPayload::from_output_key("b", &s);
        }
    }
}
