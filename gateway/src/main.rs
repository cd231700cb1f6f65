//! `redge-gateway`: the HTTP Redis protocol (Upstash REST) in front of a real redis-server.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use redge_gateway::{Config, serve, shutdown_signal};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    config.init_tracing();
    let listener = match tokio::net::TcpListener::bind(&config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("redge-gateway: cannot listen on {}: {e}", config.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    let state = match redge_gateway::AppState::from_config(&config) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("redge-gateway: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match serve(listener, state, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redge-gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
