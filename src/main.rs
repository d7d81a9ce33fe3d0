//! `repro`: the command line over repro-core (the engine) and repro-report; no libtorch here.

mod cli;

fn main() {
    repro_core::runtime::init_process_env();
    std::process::exit(cli::main());
}
