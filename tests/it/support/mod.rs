//! Shared fixtures: a real HAProxy in a temp dir, Docker test containers, unique names.
pub mod agent_world;
pub mod bench;
pub mod campaign;
pub mod capacity;
pub mod daemon;
pub mod docker;
pub mod fleet;
pub mod haproxy;
pub mod load;
pub mod metrics;
pub mod proxy;
pub mod readonly_proxy;
pub mod roll;
pub mod rotation;
pub mod shutdown_world;
pub mod stack;
pub mod storm_engine;
pub mod wait;

/// The runtime every bench binary runs its async main on: two workers, as on the CI machine.
#[allow(dead_code)] // used by the bench binaries, which include these fixtures by path
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}
