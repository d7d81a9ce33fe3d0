//! pytorch/examples' word-LM batching over a WikiText token stream ([`repro_core::data::wikitext`]
//! reads the corpus): `batchify` (`data.py`) and `get_batch` (`main.py`), of the same names there.

use anyhow::{Result, bail};
use tch::Tensor;

/// `data.py`'s `batchify`: drop the last `len % batch_size` ids and lay the rest out as
/// `batch_size` contiguous columns, shape `[len / batch_size, batch_size]` (int64, CPU).
///
/// Errors where PyTorch's `view` would (fewer ids than `batch_size`) and for `batch_size < 1`.
pub fn batchify(ids: &[i64], batch_size: i64) -> Result<Tensor> {
    if batch_size < 1 {
        bail!("batchify: batch size must be at least 1, got {batch_size}");
    }
    let nbatch = ids.len() as i64 / batch_size;
    if nbatch == 0 {
        bail!(
            "batchify: {} ids are fewer than the batch size {batch_size}",
            ids.len()
        );
    }
    let kept = &ids[..(nbatch * batch_size) as usize];
    Ok(Tensor::from_slice(kept)
        .view([batch_size, -1])
        .tr()
        .contiguous())
}

/// `main.py`'s `get_batch`: `seq_len = min(bptt, len(source) - 1 - i)`, inputs
/// `source[i:i+seq_len]` and flattened targets `source[i+1:i+1+seq_len]`.
///
/// Valid windows start at `0 <= i < len(source) - 1` (the `range(0, len - 1, bptt)` loop).
pub fn get_batch(source: &Tensor, i: i64, bptt: i64) -> Result<(Tensor, Tensor)> {
    let len = source.size().first().copied().unwrap_or(0);
    if bptt < 1 {
        bail!("get_batch: bptt must be at least 1, got {bptt}");
    }
    if i < 0 || i >= len - 1 {
        bail!(
            "get_batch: window start {i} outside 0..{} (source has {len} rows)",
            (len - 1).max(0)
        );
    }
    let seq_len = bptt.min(len - 1 - i);
    let data = source.narrow(0, i, seq_len);
    let target = source.narrow(0, i + 1, seq_len).reshape([-1]);
    Ok((data, target))
}
