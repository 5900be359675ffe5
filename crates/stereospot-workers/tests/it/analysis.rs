//! Job statistics: computed once at chunking, stored beside the segments before any segment is
//! uploaded, and handed to the backend with each segment's seed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use stereospot_core::{JobStatus, StereoMode};
use stereospot_media::{Media, MediaConfig};
use stereospot_workers::analysis::stats_key;
use stereospot_workers::{
    BackendError, ConvertContext, InferenceBackend, JobStats, MediaWorker, SourceAnalyzer,
    StubBackend,
};

use crate::helpers::*;

/// Seeds `[k, k + 1]` for every segment but the first; records what it was asked.
#[derive(Debug, Default)]
struct FakeAnalyzer {
    calls: Mutex<Vec<Vec<u64>>>,
}

#[async_trait]
impl SourceAnalyzer for FakeAnalyzer {
    async fn analyze(&self, source: &Path, first_frames: &[u64]) -> Result<JobStats, BackendError> {
        assert!(source.is_file());
        self.calls.lock().unwrap().push(first_frames.to_vec());
        Ok(JobStats {
            depth_model: "fake".into(),
            depth_seeds: (0..first_frames.len())
                .map(|k| (k > 0).then_some([k as f32, k as f32 + 1.0]))
                .collect(),
        })
    }
}

/// A segment index, its seed's range and model.
type SeenSeed = (u32, Option<[f32; 2]>, Option<String>);

/// Copies, and records each segment's seed.
#[derive(Debug, Default)]
struct Recording {
    seeds: Mutex<Vec<SeenSeed>>,
}

#[async_trait]
impl InferenceBackend for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    async fn convert(
        &self,
        input: &Path,
        output: &Path,
        mode: StereoMode,
        ctx: &ConvertContext,
    ) -> Result<(), BackendError> {
        self.seeds.lock().unwrap().push((
            ctx.segment_index,
            ctx.depth_seed.as_ref().map(|s| s.range),
            ctx.depth_seed.as_ref().map(|s| s.model.clone()),
        ));
        StubBackend.convert(input, output, mode, ctx).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_segment_gets_the_seed_the_chunking_step_stored() {
    let backend = Arc::new(Recording::default());
    let mut env = env_with(Options {
        backend: backend.clone(),
        ..Options::default()
    })
    .await;
    let analyzer = Arc::new(FakeAnalyzer::default());
    env.media_worker = MediaWorker::with_analyzer(
        env.ctx.clone(),
        Media::new(MediaConfig {
            temp_root: env.media_temp.path().to_path_buf(),
            ..MediaConfig::default()
        }),
        Some(analyzer.clone()),
    );
    let id = env.submit(&video("book.mkv"), StereoMode::Anaglyph).await;
    env.pump().await;
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Completed);
    let total = job.total_segments.unwrap();
    assert!(total >= 3);

    let calls = analyzer.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].len(), total as usize);
    assert_eq!(calls[0][0], 0);
    assert!(calls[0].windows(2).all(|w| w[0] < w[1]), "{calls:?}");
    let p = &env.platform;
    assert!(
        p.storage
            .head(&p.buckets.input, &stats_key(id))
            .await
            .unwrap()
            .is_some()
    );

    let mut seeds = backend.seeds.lock().unwrap().clone();
    seeds.sort_by_key(|s| s.0);
    assert_eq!(seeds.len(), total as usize);
    for (k, range, model) in seeds {
        if k == 0 {
            assert_eq!(
                (range, model),
                (None, None),
                "the first segment seeds itself"
            );
        } else {
            assert_eq!(range, Some([k as f32, k as f32 + 1.0]));
            assert_eq!(model.as_deref(), Some("fake"));
        }
    }
}
