//! Hash a file with the store's hasher and print the digest and throughput (for `make bench`).
fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: hash_file FILE"))?;
    let t = std::time::Instant::now();
    let digest = repro::store::hash::sha256_file(std::path::Path::new(&path))?;
    let secs = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path)?.len() as f64;
    println!(
        "{digest}  {path}  {secs:.3} s  {:.0} MB/s",
        size / secs / 1e6
    );
    Ok(())
}
