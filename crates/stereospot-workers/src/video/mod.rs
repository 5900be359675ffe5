//! The video worker: segment inference and segment-output handling (with the reassembly
//! trigger), two concurrent loops as in the spec.

mod inference;
mod segment_output;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use inference::InferenceHandler;
pub use segment_output::SegmentOutputHandler;

use crate::backend::InferenceBackend;
use crate::context::WorkerContext;
use crate::runner::Worker;

/// The video worker's consumers.
#[derive(Debug, Clone)]
pub struct VideoWorker {
    /// Up to `INFERENCE_MAX_IN_FLIGHT` segments at once.
    pub inference: Arc<Worker<InferenceHandler>>,
    pub segment_output: Arc<Worker<SegmentOutputHandler>>,
}

impl VideoWorker {
    pub fn new(ctx: WorkerContext, backend: Arc<dyn InferenceBackend>) -> Self {
        let in_flight = ctx.config.inference_max_in_flight;
        Self {
            inference: Arc::new(Worker::with_concurrency(
                InferenceHandler::new(ctx.clone(), backend),
                in_flight,
            )),
            segment_output: Arc::new(Worker::new(SegmentOutputHandler::new(ctx))),
        }
    }

    /// Runs both loops until `shutdown` is cancelled and they have stopped.
    pub async fn run(self, shutdown: CancellationToken) {
        tokio::join!(
            self.inference.run(shutdown.clone()),
            self.segment_output.run(shutdown),
        );
    }
}
