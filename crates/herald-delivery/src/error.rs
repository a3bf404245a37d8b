//! What can go wrong in the engine, as its callers see it.

use herald_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Herald is shutting down")]
    ShuttingDown,
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] rustls::Error),
    #[error("could not start the writer thread: {0}")]
    WriterThread(#[from] std::io::Error),
}
