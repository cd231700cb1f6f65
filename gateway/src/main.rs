//! `redge-gateway`: the HTTP Redis protocol (Upstash REST) in front of a real redis-server.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use redge_gateway::{Config, run, shutdown_signal};

fn main() -> std::process::ExitCode {
    let config = Config::from_env();
    config.init_tracing();
    let listener = match std::net::TcpListener::bind(&config.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("redge-gateway: cannot listen on {}: {e}", config.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(listener, &config, shutdown_signal()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redge-gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
