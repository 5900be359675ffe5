//! The media worker: URL ingest, chunking, reassembly and deletion (yt-dlp, CPU and ffmpeg
//! work).

mod chunking;
mod deletion;
mod ingest;
mod reassembly;

use std::sync::Arc;
use std::time::Duration;

use stereospot_media::Media;
use tokio_util::sync::CancellationToken;

pub use chunking::ChunkingHandler;
pub use deletion::DeletionHandler;
pub use ingest::IngestHandler;
pub use reassembly::ReassemblyHandler;

use crate::analysis::SourceAnalyzer;
use crate::context::WorkerContext;
use crate::runner::{Handler, Worker};

/// The media worker's consumers, one per queue.
#[derive(Debug, Clone)]
pub struct MediaWorker {
    pub ingest: Arc<Worker<IngestHandler>>,
    pub chunking: Arc<Worker<ChunkingHandler>>,
    pub reassembly: Arc<Worker<ReassemblyHandler>>,
    pub deletion: Arc<Worker<DeletionHandler>>,
}

impl MediaWorker {
    pub fn new(ctx: WorkerContext, media: Media) -> Self {
        Self::with_analyzer(ctx, media, None)
    }

    /// A media worker whose chunking computes the job statistics with `analyzer`
    /// ([`crate::analysis`]).
    pub fn with_analyzer(
        ctx: WorkerContext,
        media: Media,
        analyzer: Option<Arc<dyn SourceAnalyzer>>,
    ) -> Self {
        Self {
            ingest: Arc::new(Worker::new(IngestHandler::new(ctx.clone()))),
            chunking: Arc::new(Worker::new(
                ChunkingHandler::new(ctx.clone(), media.clone()).with_analyzer(analyzer),
            )),
            reassembly: Arc::new(Worker::new(ReassemblyHandler::new(ctx.clone(), media))),
            deletion: Arc::new(Worker::new(DeletionHandler::new(ctx))),
        }
    }

    /// Runs the four loops (ingest, chunking, reassembly, deletion) and the lost-reassembly
    /// sweep concurrently until `shutdown` is cancelled and they have stopped.
    pub async fn run(self, shutdown: CancellationToken) {
        let ctx = self.reassembly.handler().context().clone();
        tokio::join!(
            self.ingest.run(shutdown.clone()),
            self.chunking.run(shutdown.clone()),
            self.reassembly.run(shutdown.clone()),
            self.deletion.run(shutdown.clone()),
            sweep_loop(ctx, shutdown),
        );
    }
}

/// Every `reassembly_sweep_interval`, [`crate::trigger::sweep_lost_reassemblies`].
async fn sweep_loop(ctx: WorkerContext, shutdown: CancellationToken) {
    let interval = ctx
        .config
        .reassembly_sweep_interval
        .max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match crate::trigger::sweep_lost_reassemblies(&ctx, ctx.config.reassembly_sweep_after).await
        {
            Ok(s) if s.triggered + s.resent > 0 => {
                tracing::warn!(
                    checked = s.checked,
                    triggered = s.triggered,
                    resent = s.resent,
                    "reassembly sweep sent lost messages"
                );
            }
            Ok(s) => tracing::debug!(checked = s.checked, "reassembly sweep: nothing lost"),
            Err(e) => tracing::warn!(error = %e, "reassembly sweep failed"),
        }
    }
}
