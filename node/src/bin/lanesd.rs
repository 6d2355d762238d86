//! lanesd: the lanes Lightning node daemon. See `lanesd --help`.
//!
//! Owns: the process: arguments, logging, the exit code. Must never: hold node logic (the builder and the
//! services do).
use std::sync::Arc;

use clap::Parser;
use lanes_node::api::{Api, NodeSlot};
use lanes_node::lease::RoleState;
use lanes_node::config::{Args, Config};
use lanes_node::Builder;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

/// How long calls in progress get to finish once the node is asked to stop.
const API_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// glibc's malloc gives each thread that meets a busy arena one of its own, up to 8 per core, and each keeps
/// what it once held: LDK encodes the ChannelManager (up to a few MB) at every flush, from any of tokio's
/// threads. After 100,000 payments alice held about 1 GB for 376 MB in use. Two arenas: after 20,000
/// payments at 64 in flight, 259 MB instead of 439 MB, no slower (`cargo bench --bench scale`, README).
const MALLOC_ARENAS: i32 = 2;

fn main() {
    // Before any thread starts: glibc fixes its arena limit when a thread first needs an arena of its own.
    // An operator's MALLOC_ARENA_MAX wins.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
    lanes_node::health::stop_on_panic();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("cannot start the tokio runtime");
    runtime.block_on(start());
}

async fn start() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,ldk=warn")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A line that cannot be written (the log's disk is full) is dropped. By default tracing then reports
        // the failure with eprintln!, which panics when stderr is that same file: the task that logged died
        // and, when it was the flush reporting the full disk, lanesd never stopped.
        .log_internal_errors(false)
        .init();
    if let Err(e) = run().await {
        tracing::error!("{e}");
        lanes_node::health::exit_now(1, &format!("lanesd: {e}"));
    }
}

async fn run() -> Result<(), lanes_node::NodeError> {
    let config = Config::from_args(Args::parse())?;
    let grpc = config.grpc_listen;
    lanes_node::builder::make_private(&config.data_dir)?;

    // The API serves from the start: while the node is built (or, on a shared database, while this
    // instance is a standby waiting for the lease) it answers GetInfo and UNAVAILABLE for the rest.
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let role = Arc::new(RoleState::default());
    let slot = Arc::new(NodeSlot::new(Arc::clone(&role)));
    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = Api::new(&config, Arc::clone(&slot), stop_tx)?;
    let mut server = tokio::spawn(api.serve(grpc, async {
        let _ = api_stop_rx.await;
    }));

    // Stop on SIGINT, SIGTERM or the Stop RPC, whichever comes first, during the build too.
    let built = tokio::select! {
        node = Builder::new(config).with_role(role).build() => Some(node?),
        _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping before the node started"); None }
        _ = sigint.recv() => { tracing::info!("SIGINT: stopping before the node started"); None }
        _ = stop_rx.recv() => None,
        res = &mut server => {
            return Err(match res {
                Ok(Err(e)) => e,
                Ok(Ok(())) => lanes_node::NodeError::Internal("the gRPC server stopped".into()),
                Err(e) => lanes_node::NodeError::Internal(format!("gRPC task: {e}")),
            });
        }
    };
    let Some(node) = built else {
        let _ = api_stop_tx.send(());
        let _ = tokio::time::timeout(API_GRACE, &mut server).await;
        return Ok(());
    };
    slot.set(Arc::clone(&node));
    tracing::info!(node_id = %node.node_id(), "lanesd ready");
    let server_result = tokio::select! {
        _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); None }
        _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); None }
        _ = stop_rx.recv() => None,
        // The node can no longer persist: exit now with an error (as LND does), so a supervisor restarts it.
        // Nothing more is written or sent: everything acknowledged is already on disk.
        reason = node.fatal_error() => {
            lanes_node::health::exit_now(2, &format!("lanesd: fatal: {reason}"));
        }
        // The API is the only way to drive the node: if it cannot serve, stop (safely) and say why.
        res = &mut server => Some(res),
    };
    let _ = api_stop_tx.send(());
    let api_error = match server_result {
        Some(Ok(Err(e))) => Some(e),
        Some(Err(e)) => Some(lanes_node::NodeError::Internal(format!("gRPC task: {e}"))),
        Some(Ok(Ok(()))) => None,
        None => {
            // Calls still waiting (a payment waiting for its outcome can take minutes) must not hold the
            // node up: give them a moment, then stop anyway. Their state is LDK's and is persisted below.
            if tokio::time::timeout(API_GRACE, &mut server).await.is_err() {
                tracing::info!("stopping with API calls still waiting");
                server.abort();
            }
            None
        }
    };
    node.stop().await?;
    api_error.map_or(Ok(()), Err)
}
