//! The media worker: URL ingest, chunking, reassembly and deletion (yt-dlp, CPU and ffmpeg
//! work).

mod chunking;
mod deletion;
mod ingest;
mod reassembly;

use std::sync::Arc;

use stereospot_media::Media;
use tokio_util::sync::CancellationToken;

pub use chunking::ChunkingHandler;
pub use deletion::DeletionHandler;
pub use ingest::IngestHandler;
pub use reassembly::ReassemblyHandler;

use crate::context::WorkerContext;
use crate::runner::Worker;

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
        Self {
            ingest: Arc::new(Worker::new(IngestHandler::new(ctx.clone()))),
            chunking: Arc::new(Worker::new(ChunkingHandler::new(
                ctx.clone(),
                media.clone(),
            ))),
            reassembly: Arc::new(Worker::new(ReassemblyHandler::new(ctx.clone(), media))),
            deletion: Arc::new(Worker::new(DeletionHandler::new(ctx))),
        }
    }

    /// Runs the four loops concurrently until `shutdown` is cancelled and they have stopped.
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(
            self.ingest.run(shutdown.clone()),
            self.chunking.run(shutdown.clone()),
            self.reassembly.run(shutdown.clone()),
            self.deletion.run(shutdown),
        );
    }
}
