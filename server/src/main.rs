use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpSocket;
use websocket_server::{Cli, logging, run, shutdown};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format) {
        eprintln!("websocket-server: {e}");
        return ExitCode::from(2);
    }
    let addr = cli.listen_addr();
    let listener = match listen(addr) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e} (choose another --port or --bind)");
            return ExitCode::FAILURE;
        }
    };
    match run(listener, cli.config(), shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Binds with a deep accept backlog so bursts of new connections are not dropped.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
