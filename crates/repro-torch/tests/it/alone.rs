//! Running one test of this binary alone, in a child process: libtorch's default random
//! generator is process-wide, so a test that seeds it and then draws (a model's initial weights,
//! dropout masks, random inputs) gets other draws whenever a test running beside it draws too.

/// Whether to run the body of test `name` here: true in a child process of this test binary
/// that runs `name` alone; elsewhere it starts that child, asserts that it passed, and is false.
pub fn alone(name: &str) -> bool {
    if std::env::var_os("REPRO_TEST_ALONE").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1"])
        .env("REPRO_TEST_ALONE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name}, run alone:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
