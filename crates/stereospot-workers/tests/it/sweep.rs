//! The lost-reassembly sweep: a job whose reassembly message was lost after its trigger record
//! was created (a crash between the two writes) is found and reassembled.

use std::time::{Duration, Instant};

use stereospot_core::platform::ReceiveOptions;
use stereospot_core::{JobStatus, StereoMode};
use stereospot_workers::trigger::{Sweep, sweep_lost_reassemblies};
use stereospot_workers::{CancellationToken, Outcome};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reassembly_message_is_sent_again_by_the_sweep() {
    let env = env_with(Options {
        config: Box::new(|c| {
            c.receive_wait = Duration::from_millis(100);
            c.reassembly_sweep_interval = Duration::from_millis(50);
            c.reassembly_sweep_after = Duration::ZERO;
        }),
        ..Options::default()
    })
    .await;
    let id = env.submit(&video("book.mkv"), StereoMode::Sbs).await;
    let (m, v) = (&env.media_worker, &env.video_worker);
    assert_eq!(
        m.chunking.try_execute_one().await.unwrap(),
        Outcome::Done { job_id: id }
    );
    while v.inference.try_execute_one().await.unwrap() != Outcome::Idle {}
    while v.segment_output.try_execute_one().await.unwrap() != Outcome::Idle {}
    // The trigger record exists and the message was sent: lose it.
    let reassembly = &env.platform.queues.reassembly;
    let lost = reassembly
        .receive(&ReceiveOptions {
            wait: Duration::ZERO,
            ..ReceiveOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(lost.len(), 1);
    reassembly.delete(&lost[0].receipt).await.unwrap();
    assert_status(&env.job(id).await, JobStatus::ChunkingComplete);

    // Not yet lost by the sweep's standard: nothing is sent.
    let sweep = sweep_lost_reassemblies(&env.ctx, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Sweep {
            checked: 1,
            triggered: 0,
            resent: 0
        }
    );
    assert_eq!(reassembly.depth().await.unwrap().visible, 0);

    // The media worker's loops, sweep included, finish the job.
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(env.media_worker.clone().run(shutdown.clone()));
    let started = Instant::now();
    // No signal exists for "job finished"; the status is polled.
    while env.job(id).await.status != JobStatus::Completed {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            env.job(id).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    run.await.unwrap();
    // A completed job is no longer looked at.
    let sweep = sweep_lost_reassemblies(&env.ctx, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(sweep, Sweep::default());
}
