//! The pipeline's metrics, captured by a `DebuggingRecorder` installed for this test's thread
//! only (a current-thread runtime, so every handler runs on it; no global recorder).

use std::collections::HashMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use stereospot_core::{JobStatus, StereoMode};
use stereospot_workers::metrics as m;

use crate::helpers::*;

#[test]
fn the_pipeline_records_its_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (total, good_bytes) = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let env = env().await;
            let source = video("book.mkv");
            let good = env.submit(&source, StereoMode::Anaglyph).await;
            let dir = tempfile::tempdir().unwrap();
            let empty = dir.path().join("empty.mp4");
            std::fs::write(&empty, b"").unwrap();
            let bad = env.submit(&empty, StereoMode::Anaglyph).await;
            env.pump().await;
            assert_status(&env.job(good).await, JobStatus::Completed);
            assert_status(&env.job(bad).await, JobStatus::Failed);
            (
                env.job(good).await.total_segments.unwrap(),
                std::fs::metadata(&source).unwrap().len(),
            )
        })
    });
    assert!(total >= 3, "book.mkv in 1 s segments ({good_bytes} bytes)");

    // name{sorted labels} -> value
    let mut got: HashMap<String, DebugValue> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        got.insert(format!("{}{{{}}}", key.name(), labels.join(",")), value);
    }
    let histogram = |name: &str| match got.get(name) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.0).collect::<Vec<f64>>(),
        other => panic!("{name}: {other:?} in {:?}", got.keys()),
    };
    let counter = |name: &str| match got.get(name) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?} in {:?}", got.keys()),
    };

    let conv = histogram(&format!(
        "{}{{backend=stub}}",
        m::SEGMENT_CONVERSION_SECONDS
    ));
    assert_eq!(conv.len(), total as usize, "one per segment");
    assert!(conv.iter().all(|s| *s > 0.0 && *s < 60.0), "{conv:?}");
    let per_mb = histogram(&format!("{}{{backend=stub}}", m::SEGMENT_SECONDS_PER_MB));
    assert_eq!(per_mb.len(), total as usize);
    assert!(per_mb.iter().all(|s| *s > 0.0), "{per_mb:?}");
    assert_eq!(histogram(&format!("{}{{}}", m::CHUNKING_SECONDS)).len(), 1);
    assert_eq!(
        histogram(&format!("{}{{}}", m::REASSEMBLY_SECONDS)).len(),
        1
    );

    assert_eq!(
        counter(&format!("{}{{code=empty_file}}", m::JOB_FAILURES_TOTAL)),
        1
    );
    let messages = |worker: &str, outcome: &str| {
        counter(&format!(
            "{}{{outcome={outcome},worker={worker}}}",
            m::MESSAGES_TOTAL
        ))
    };
    assert_eq!(messages("chunking", "done"), 1);
    assert_eq!(messages("chunking", "job_failed"), 1);
    assert_eq!(messages("inference", "done"), u64::from(total));
    assert_eq!(messages("segment-output", "done"), u64::from(total));
    assert_eq!(messages("reassembly", "done"), 1);
    // final.mp4's own event on the segment-output queue.
    assert_eq!(messages("segment-output", "skipped"), 1);
}
