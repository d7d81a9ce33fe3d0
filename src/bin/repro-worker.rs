fn main() {
    std::process::exit(repro::worker::main());
}
