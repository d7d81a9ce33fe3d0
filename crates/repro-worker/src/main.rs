//! `repro-worker`: runs one stage in its own process (see `repro_torch::worker`).

fn main() {
    std::process::exit(repro_torch::worker::main());
}
