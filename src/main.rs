//! `repro`: the command line over repro-core (the engine) and repro-report; no libtorch here.

mod cli;

fn main() {
    // `repro plan | head`: when the reader goes away, end quietly as other Unix tools do
    // (killed by SIGPIPE; a shell reports status 141) instead of panicking in println!. Rust
    // ignores SIGPIPE by default; restoring the default changes nothing for the worker processes
    // this one starts (std resets SIGPIPE for a child anyway, and the worker is a Rust program
    // that ignores it again), and this process never writes to a child's stdin; its sockets
    // are written with MSG_NOSIGNAL.
    // SAFETY: first thing in main, before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    repro_core::runtime::init_process_env();
    std::process::exit(cli::main());
}
