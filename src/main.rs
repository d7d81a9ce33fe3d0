fn main() {
    repro::runtime::init_process_env();
    std::process::exit(repro::cli::main());
}
