//! Hash a file with the store's hasher: prints `<digest>  <path>`, then `seconds <s>` (the hashing
//! alone, without this process's start-up; `scripts/bench.py` compares it with `sha256sum`).
fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: hash_file FILE"))?;
    let t = std::time::Instant::now();
    let digest = repro_core::store::hash::sha256_file(std::path::Path::new(&path))?;
    let secs = t.elapsed().as_secs_f64();
    println!("{digest}  {path}\nseconds {secs:.4}");
    Ok(())
}
