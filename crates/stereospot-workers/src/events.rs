//! Reading the S3 event in a message body.

use stereospot_core::event::{EventObject, parse_s3_event};

use crate::runner::Outcome;

/// The object of an S3 event message, or the outcome for a message without one: the S3 test
/// event (no `Records`) and malformed bodies are skipped (deleted), never retried. S3 sends one
/// record per message; further records are logged and ignored.
pub(crate) fn event_object(body: &str) -> Result<EventObject, Outcome> {
    match parse_s3_event(body) {
        Ok(objects) => {
            if objects.len() > 1 {
                tracing::warn!(
                    records = objects.len(),
                    "event with several records: only the first is handled"
                );
            }
            objects
                .into_iter()
                .next()
                .ok_or_else(|| Outcome::skipped(None, "no Records (S3 test event)"))
        }
        Err(e) => Err(Outcome::skipped(None, format!("malformed event: {e}"))),
    }
}
