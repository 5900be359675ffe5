//! Every object key in the system, built and parsed in one place.
//!
//! | key | bucket |
//! |---|---|
//! | `input/{job_id}/source.mp4` | input |
//! | `segments/{job_id}/{index:05}_{total:05}_{mode}.mp4` | input |
//! | `jobs/{job_id}/segments/{index:05}.mp4` | output |
//! | `jobs/{job_id}/final.mp4` | output |
//!
//! Segment indices are zero-based; `index < total <= 99_999`.

use std::fmt;

use crate::{JobId, StereoMode};

/// The largest number of segments a job may have (five digits in keys).
pub const MAX_SEGMENTS: u32 = 99_999;

/// A key that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unrecognised object key {0:?}")]
    Unrecognised(String),
    #[error("bad job id in key: {0}")]
    JobId(#[from] crate::IdError),
    #[error("bad segment numbering in key {0:?}")]
    Numbering(String),
    #[error("bad mode in key: {0}")]
    Mode(#[from] crate::job::UnknownMode),
}

/// A parsed object key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    /// The uploaded or ingested source video.
    Source { job_id: JobId },
    /// A chunk of the source, waiting for conversion.
    Segment {
        job_id: JobId,
        index: u32,
        total: u32,
        mode: StereoMode,
    },
    /// A converted segment.
    SegmentOutput { job_id: JobId, index: u32 },
    /// The joined result.
    Final { job_id: JobId },
}

impl ObjectKey {
    pub fn source(job_id: JobId) -> Self {
        Self::Source { job_id }
    }

    /// A segment key; `None` when the numbering is out of range.
    pub fn segment(job_id: JobId, index: u32, total: u32, mode: StereoMode) -> Option<Self> {
        valid_numbering(index, total).then_some(Self::Segment {
            job_id,
            index,
            total,
            mode,
        })
    }

    /// A segment output key; `None` when the index is out of range.
    pub fn segment_output(job_id: JobId, index: u32) -> Option<Self> {
        (index < MAX_SEGMENTS).then_some(Self::SegmentOutput { job_id, index })
    }

    pub fn final_output(job_id: JobId) -> Self {
        Self::Final { job_id }
    }

    pub fn job_id(&self) -> JobId {
        match *self {
            Self::Source { job_id }
            | Self::Segment { job_id, .. }
            | Self::SegmentOutput { job_id, .. }
            | Self::Final { job_id } => job_id,
        }
    }

    /// Whether this key lives in the input bucket (else the output bucket).
    pub fn in_input_bucket(&self) -> bool {
        matches!(self, Self::Source { .. } | Self::Segment { .. })
    }

    /// Parses any of our keys. The key must already be decoded (see [`crate::event`]).
    pub fn parse(key: &str) -> Result<Self, KeyError> {
        let unrecognised = || KeyError::Unrecognised(key.chars().take(256).collect());
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["input", id, "source.mp4"] => Ok(Self::Source {
                job_id: JobId::parse(id)?,
            }),
            ["segments", id, file] => {
                let job_id = JobId::parse(id)?;
                let stem = file.strip_suffix(".mp4").ok_or_else(unrecognised)?;
                let mut it = stem.splitn(3, '_');
                let (Some(i), Some(t), Some(m)) = (it.next(), it.next(), it.next()) else {
                    return Err(unrecognised());
                };
                let index = parse_num(i).ok_or_else(|| KeyError::Numbering(key.into()))?;
                let total = parse_num(t).ok_or_else(|| KeyError::Numbering(key.into()))?;
                let mode: StereoMode = m.parse()?;
                Self::segment(job_id, index, total, mode)
                    .ok_or_else(|| KeyError::Numbering(key.into()))
            }
            ["jobs", id, "segments", file] => {
                let job_id = JobId::parse(id)?;
                let stem = file.strip_suffix(".mp4").ok_or_else(unrecognised)?;
                let index = parse_num(stem).ok_or_else(|| KeyError::Numbering(key.into()))?;
                Self::segment_output(job_id, index).ok_or_else(|| KeyError::Numbering(key.into()))
            }
            ["jobs", id, "final.mp4"] => Ok(Self::Final {
                job_id: JobId::parse(id)?,
            }),
            _ => Err(unrecognised()),
        }
    }

    /// The prefixes under which a job's objects live, as `(in_input_bucket, prefix)`; deleting
    /// all of them removes every object of the job.
    pub fn job_prefixes(job_id: JobId) -> [(bool, String); 3] {
        [
            (true, format!("input/{job_id}/")),
            (true, format!("segments/{job_id}/")),
            (false, format!("jobs/{job_id}/")),
        ]
    }
}

fn valid_numbering(index: u32, total: u32) -> bool {
    (1..=MAX_SEGMENTS).contains(&total) && index < total
}

/// Exactly five ASCII digits.
fn parse_num(s: &str) -> Option<u32> {
    (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source { job_id } => write!(f, "input/{job_id}/source.mp4"),
            Self::Segment {
                job_id,
                index,
                total,
                mode,
            } => write!(f, "segments/{job_id}/{index:05}_{total:05}_{mode}.mp4"),
            Self::SegmentOutput { job_id, index } => {
                write!(f, "jobs/{job_id}/segments/{index:05}.mp4")
            }
            Self::Final { job_id } => write!(f, "jobs/{job_id}/final.mp4"),
        }
    }
}

/// `s3://bucket/key`.
pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Splits `s3://bucket/key`.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> JobId {
        JobId::from_parts(1_700_000_000_000, [3; 10])
    }

    #[test]
    fn formats_match_the_spec() {
        let j = id();
        assert_eq!(
            ObjectKey::source(j).to_string(),
            format!("input/{j}/source.mp4")
        );
        assert_eq!(
            ObjectKey::segment(j, 2, 17, StereoMode::Sbs)
                .unwrap()
                .to_string(),
            format!("segments/{j}/00002_00017_sbs.mp4")
        );
        assert_eq!(
            ObjectKey::segment_output(j, 2).unwrap().to_string(),
            format!("jobs/{j}/segments/00002.mp4")
        );
        assert_eq!(
            ObjectKey::final_output(j).to_string(),
            format!("jobs/{j}/final.mp4")
        );
    }

    #[test]
    fn rejects_foreign_and_malformed_keys() {
        let j = id();
        let bad = [
            String::new(),
            "input/".into(),
            format!("input/{j}/source.mov"),
            format!("input/{j}/../source.mp4"),
            format!("segments/{j}/2_17_sbs.mp4"),
            format!("segments/{j}/00017_00017_sbs.mp4"),
            format!("segments/{j}/00000_00000_sbs.mp4"),
            format!("segments/{j}/00001_00002_3d.mp4"),
            format!("segments/{j}/+0001_00002_sbs.mp4"),
            format!("jobs/{j}/segments/0001.mp4"),
            format!("jobs/{j}/final.mp4/x"),
            "jobs/../final.mp4".into(),
            format!("/jobs/{j}/final.mp4"),
        ];
        for k in bad {
            assert!(ObjectKey::parse(&k).is_err(), "{k:?} must be rejected");
        }
    }

    #[test]
    fn numbering_bounds() {
        assert!(ObjectKey::segment(id(), 0, 1, StereoMode::Anaglyph).is_some());
        assert!(ObjectKey::segment(id(), 1, 1, StereoMode::Anaglyph).is_none());
        assert!(ObjectKey::segment(id(), 0, MAX_SEGMENTS + 1, StereoMode::Anaglyph).is_none());
        assert!(ObjectKey::segment_output(id(), MAX_SEGMENTS).is_none());
    }

    #[test]
    fn s3_uris() {
        assert_eq!(parse_s3_uri("s3://b/k/x.mp4"), Some(("b", "k/x.mp4")));
        assert_eq!(parse_s3_uri("s3:///k"), None);
        assert_eq!(parse_s3_uri("http://b/k"), None);
        assert_eq!(s3_uri("b", "k"), "s3://b/k");
    }

    fn any_key() -> impl Strategy<Value = ObjectKey> {
        let job = (0u64..(1 << 48), any::<[u8; 10]>()).prop_map(|(m, r)| JobId::from_parts(m, r));
        let mode = prop::sample::select(StereoMode::ALL.to_vec());
        prop_oneof![
            job.clone().prop_map(ObjectKey::source),
            job.clone().prop_map(ObjectKey::final_output),
            (job.clone(), 0..MAX_SEGMENTS)
                .prop_map(|(j, i)| ObjectKey::segment_output(j, i).unwrap()),
            (job, 1..=MAX_SEGMENTS, any::<prop::sample::Index>(), mode).prop_map(|(j, t, i, m)| {
                ObjectKey::segment(j, i.index(t as usize) as u32, t, m).unwrap()
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_key_round_trips(k in any_key()) {
            let s = k.to_string();
            prop_assert_eq!(ObjectKey::parse(&s), Ok(k));
            prop_assert_eq!(k.in_input_bucket(), s.starts_with("input/") || s.starts_with("segments/"));
            let prefixes = ObjectKey::job_prefixes(k.job_id());
            prop_assert!(prefixes.iter().any(|(input, p)| *input == k.in_input_bucket() && s.starts_with(p.as_str())));
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = ObjectKey::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(
            prefix in prop::sample::select(vec!["input/", "segments/", "jobs/"]),
            rest in "[0-9a-f/_.%+-]{0,80}",
        ) {
            let _ = ObjectKey::parse(&format!("{prefix}{rest}"));
        }
    }
}
