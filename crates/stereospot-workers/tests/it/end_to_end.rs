//! Uploads real videos and drives every worker with the stub backend until the jobs complete.

use stereospot_core::{JobStatus, ObjectKey, StereoMode};

use crate::helpers::*;

/// The final file has the source's frames, its duration within one frame, and its audio iff
/// the source had audio.
fn assert_faithful(source: &std::path::Path, output: &std::path::Path) {
    let src = probe(source);
    let out = probe(output);
    assert_eq!(
        out.frames,
        src.frames,
        "frame count of {}",
        source.display()
    );
    let frame = 1.0 / src.fps;
    assert!(
        (out.duration - src.duration).abs() <= frame + 1e-3,
        "duration {} vs source {} (one frame is {frame})",
        out.duration,
        src.duration
    );
    assert_eq!(
        out.has_audio,
        src.has_audio,
        "audio of {}",
        source.display()
    );
    // The stub copies segments, so the geometry is the source's.
    assert_eq!((out.width, out.height), (src.width, src.height));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realshort_and_book_complete_with_frames_duration_and_audio() {
    let env = env().await;
    let realshort = video("realshort.mp4");
    let book = video("book.mkv");
    let a = env.submit(&realshort, StereoMode::Anaglyph).await;
    let b = env.submit(&book, StereoMode::Sbs).await;

    let log = env.pump().await;

    let out = tempfile::tempdir().unwrap();
    for (id, source) in [(a, &realshort), (b, &book)] {
        let job = env.job(id).await;
        assert_status(&job, JobStatus::Completed);
        assert!(job.completed_at.is_some());
        assert!(job.error.is_none());
        let total = job.total_segments.unwrap();
        assert_eq!(
            env.platform.completions.list(id).await.unwrap().len(),
            total as usize
        );
        let fin = env.download_final(id, out.path()).await;
        assert_faithful(source, &fin);
    }
    // book.mkv (3.7 s, one keyframe) is re-encoded into about 1 s segments: at least 3.
    let book_total = env.job(b).await.total_segments.unwrap();
    assert!(book_total >= 3, "book.mkv gave {book_total} segments");
    // Canonical keys for every segment and output.
    let keys = env.job_objects(b).await;
    for i in 0..book_total {
        let seg = ObjectKey::segment(b, i, book_total, StereoMode::Sbs).unwrap();
        assert!(keys.contains(&seg.to_string()), "{seg} missing in {keys:?}");
        let out = ObjectKey::segment_output(b, i).unwrap();
        assert!(keys.contains(&out.to_string()), "{out} missing");
    }
    assert_eq!(count(&log, "reassembly", is_done), 2);
    assert_eq!(count(&log, "chunking", is_done), 2);
    assert_eq!(
        count(&log, "inference", is_done) as u32,
        book_total + env.job(a).await.total_segments.unwrap()
    );
    assert_eq!(env.queued().await, 0, "messages left: {log:?}");
    env.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_chunked_file_with_audio_gives_at_least_three_segments() {
    // car-detection.mp4 (30 s, 12.5 fps, AAC) cut by stream copy at 8 s targets.
    let env = env_with(Options {
        config: Box::new(|c| c.segment_duration = std::time::Duration::from_secs(8)),
        ..Options::default()
    })
    .await;
    let source = video("car-detection.mp4");
    let id = env.submit(&source, StereoMode::Anaglyph).await;
    env.pump().await;
    let job = env.job(id).await;
    assert_status(&job, JobStatus::Completed);
    assert!(job.total_segments.unwrap() >= 3, "{job:?}");
    assert_eq!(
        job.source_file_size_bytes,
        Some(std::fs::metadata(&source).unwrap().len())
    );
    let out = tempfile::tempdir().unwrap();
    let fin = env.download_final(id, out.path()).await;
    assert_faithful(&source, &fin);
    env.assert_clean();
}
