//! Job identifiers: UUID version 7 (time-ordered), written in the canonical lowercase hyphenated form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("job id must be 36 characters, got {0}")]
    Length(usize),
    #[error("job id must be a lowercase hyphenated UUID")]
    Format,
    #[error("job id must be a version 7 UUID, got version {0}")]
    Version(usize),
}

/// A job id. Time-ordered, so ids sort by creation time. Parsing accepts only the canonical
/// form `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx` (lowercase hex), which guarantees an id is safe
/// to embed in object keys, file paths and URLs: no separators, dots or percent signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Uuid);

impl JobId {
    /// A new id from a Unix timestamp in milliseconds and 10 random bytes (the caller supplies
    /// both, so this crate stays free of clocks and entropy sources).
    pub fn from_parts(unix_millis: u64, random: [u8; 10]) -> Self {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
        b[6..].copy_from_slice(&random);
        b[6] = (b[6] & 0x0f) | 0x70; // version 7
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        Self(Uuid::from_bytes(b))
    }

    /// Parses the canonical form only.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 36 {
            return Err(IdError::Length(s.len()));
        }
        let ok = s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        });
        if !ok {
            return Err(IdError::Format);
        }
        let uuid = Uuid::parse_str(s).map_err(|_| IdError::Format)?;
        if uuid.get_version_num() != 7 {
            return Err(IdError::Version(uuid.get_version_num()));
        }
        Ok(Self(uuid))
    }

    /// The creation time encoded in the id, milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> u64 {
        let b = self.0.as_bytes();
        let mut m = [0u8; 8];
        m[2..].copy_from_slice(&b[..6]);
        u64::from_be_bytes(m)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for JobId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_keeps_time() {
        let id = JobId::from_parts(1_700_000_000_123, [7; 10]);
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(JobId::parse(&s), Ok(id));
        assert_eq!(id.unix_millis(), 1_700_000_000_123);
        assert_eq!(&s[14..15], "7");
    }

    #[test]
    fn ids_sort_by_time() {
        let a = JobId::from_parts(1000, [0xff; 10]);
        let b = JobId::from_parts(1001, [0; 10]);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn rejects_non_canonical_and_hostile_forms() {
        let good = JobId::from_parts(0xabcdef, [0xab; 10]).to_string();
        let upper = good.to_uppercase();
        let cases = [
            "",
            "..",
            "../../etc/passwd",
            "%2e%2e",
            &upper,
            "0190a0b0-c0d0-4e0f-8a0b-0c0d0e0f1011", // version 4
            "0190a0b0c0d07e0f8a0b0c0d0e0f1011",     // simple form
            "{0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011}",
            "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f10/1",
            "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f10%2",
            "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f10.1",
        ];
        for c in cases {
            assert!(JobId::parse(c).is_err(), "{c:?} must be rejected");
        }
        assert!(JobId::parse(&good).is_ok());
    }

    #[test]
    fn serde_uses_the_string_form() {
        let id = JobId::from_parts(5, [9; 10]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: JobId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<JobId>("\"../x\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = JobId::parse(&s);
        }

        #[test]
        fn any_generated_id_round_trips(ms in 0u64..(1 << 48), r in any::<[u8; 10]>()) {
            let id = JobId::from_parts(ms, r);
            prop_assert_eq!(JobId::parse(&id.to_string()), Ok(id));
            prop_assert_eq!(id.unix_millis(), ms);
        }
    }
}
