//! The media worker: chunking, reassembly and deletion (CPU and ffmpeg work).

mod chunking;
mod deletion;
mod reassembly;

use std::sync::Arc;

use stereospot_media::Media;
use tokio_util::sync::CancellationToken;

pub use chunking::ChunkingHandler;
pub use deletion::DeletionHandler;
pub use reassembly::ReassemblyHandler;

use crate::analysis::SourceAnalyzer;
use crate::context::WorkerContext;
use crate::runner::Worker;

/// The media worker's consumers, one per queue.
#[derive(Debug, Clone)]
pub struct MediaWorker {
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
            chunking: Arc::new(Worker::new(
                ChunkingHandler::new(ctx.clone(), media.clone()).with_analyzer(analyzer),
            )),
            reassembly: Arc::new(Worker::new(ReassemblyHandler::new(ctx.clone(), media))),
            deletion: Arc::new(Worker::new(DeletionHandler::new(ctx))),
        }
    }

    /// Runs the three loops concurrently until `shutdown` is cancelled and they have stopped.
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(
            self.chunking.run(shutdown.clone()),
            self.reassembly.run(shutdown.clone()),
            self.deletion.run(shutdown),
        );
    }
}
