#!/usr/bin/env bash
# Language-model and Adam-family benchmarks (issue 5), as ratios against PyTorch eager measured in
# the same run: one training step of the causal Transformer LM per size, and the optimizer step
# alone of V1–V5 on a 10M-parameter set. Writes bench/lm.md (bench/lm-threadsN.md with
# BENCH_THREADS=N). Run through `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench; mkdir -p "$out"
: "${REPRO_PYTHON:?run through make bench, or eval \"\$(scripts/setup.sh)\" first}"
cargo build --release --example bench_lm_step --example bench_adam_step >/dev/null 2>&1
bin=${CARGO_TARGET_DIR:-target}/release/examples
threads=${BENCH_THREADS:-2} # pytorch/examples-style 2; BENCH_THREADS=1 for the CPU-time view
report=$out/lm.md; [ "$threads" = 2 ] || report=$out/lm-threads$threads.md
rounds=2 # interleaved repeats; best of them each (load drifts on a shared machine hit both sides)

# Same parameter count on both sides: the Python scripts get repro's count and stop, before any
# timing, when theirs differs.
count() { "$@" | awk 'NR == 1 {print $2}'; }
best_max() { sort -g | tail -1; }
best_min() { sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# 1. One training step of the LM (zero_grad, forward, cross-entropy, backward, clip 0.25, AdamW),
#    batch 20, bptt 35 (pytorch/examples' defaults), dropout 0.2, pre-LN, tied embeddings, on a
#    fixed random token batch; repro (tch) against PyTorch eager with the clipping and AdamW on
#    torch's single-tensor path (as repro's per-tensor loops) and on its foreach path.
#    Rows: vocab d_model heads layers ffn warmup steps repeats (repeats: timed runs of `steps` steps
#    in each process; the best over all of them and all rounds counts).
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
lm_rows=""
while read -r vocab d heads layers ffn warmup steps repeats; do
  cfg=("$vocab" "$d" "$heads" "$layers" "$ffn" 0.2 1 1 20 35 "$threads")
  params=$(count "$bin"/bench_lm_step "${cfg[@]}" 0 1 0)
  : > "$work/lm"
  for _ in $(seq "$rounds"); do
    run=("$warmup" "$steps" "$repeats")
    "$bin"/bench_lm_step "${cfg[@]}" "${run[@]}" | awk '/tokens/ {print "repro", $2, $4}' >> "$work/lm"
    for path in single foreach; do
      "$REPRO_PYTHON" scripts/bench_lm_step.py "${cfg[@]}" "${run[@]}" "$path" "$params" |
        awk -v p="$path" '/tokens/ {print p, $2, $4}' >> "$work/lm"
    done
  done
  best() { awk -v who="$1" -v col="$2" '$1 == who {print $col}' "$work/lm" | best_max; }
  r=$(best repro 2); s=$(best single 2); f=$(best foreach 2)
  rc=$(best repro 3); sc=$(best single 3); fc=$(best foreach 3)
  lm_rows+="| vocab $vocab, d $d, $layers layers, $heads heads, ffn $ffn ($params params) | $s tok/s | $f tok/s | $r tok/s | $(ratio "$r" "$s") | $(ratio "$r" "$f") | $(ratio "$rc" "$sc") / $(ratio "$rc" "$fc") |"$'\n'
done <<'ROWS'
2000 128 4 2 256 2 5 3
33278 200 2 2 200 1 2 2
ROWS

# 2. The optimizer step alone on ~10M parameters shaped like one wide Transformer layer with a
#    tied 4000×1000 embedding (16 tensors), fixed random grads, λ = 1e-2, lr = 1e-3: median of the
#    timed steps after the warm-up (the first step allocates the moments), best of the rounds.
shapes="4000x1000,3000x1000,3000,1000x1000,1000,1000x1000,1000,1000x1000,1000,1000,1000,1000,1000,1000,1000,4000"
adam_steps=5
adam_params=$(count "$bin"/bench_adam_step "$shapes" "$threads" 0 1 0)
adam_args=("$shapes" "$threads" 1 "$adam_steps" 1)
for _ in $(seq "$rounds"); do
  "$bin"/bench_adam_step "${adam_args[@]}" | awk '/ ms / {print $1, $3, $5}' >> "$work/times"
  "$REPRO_PYTHON" scripts/bench_adam_step.py "${adam_args[@]}" "$adam_params" > "$work/py"
  awk '/ ms / {print $1, $3, $5}' "$work/py" >> "$work/times"
  default_path=$(awk '/default_path/ {print $2}' "$work/py")
done
ms() { awk -v row="$1" -v col="${2:-2}" '$1 == row {print $col}' "$work/times" | best_min; }
cpu_ratio() { ratio "$(ms "$1" 3)" "$(ms "$2" 3)"; }
adam=$(ms adam_single); adamw=$(ms adamw_single)
adam_rows=""
for row in "v1 V1 (Adam, l2 in the gradient)" "v2 V2 (AdamW)" "v3 V3 (l2 in m only)" \
  "v4 V4 (l2 in v only + decoupled)" "v5 V5 (adaptive decoupled)" \
  "v1_drown_out V1 with the E8 drown-out diagnostic"; do
  key=${row%% *}; label=${row#* }
  r=$(ms "$key")
  if [ "$key" = v2 ]; then
    adam_rows+="| $label | $r ms | AdamW(foreach=False): $adamw ms | $(ratio "$r" "$adamw") | $(cpu_ratio "$key" adamw_single) |"$'\n'
  else
    adam_rows+="| $label | $r ms | Adam(foreach=False): $adam ms | $(ratio "$r" "$adam") | $(cpu_ratio "$key" adam_single) |"$'\n'
  fi
done
v1=$(ms v1)
for row in "adam_foreach Adam(foreach=True)" "adam_fused Adam(fused=True)"; do
  key=${row%% *}; label=${row#* }
  t=$(ms "$key")
  adam_rows+="| V1 against $label | $v1 ms | $t ms | $(ratio "$v1" "$t") | $(cpu_ratio v1 "$key") |"$'\n'
done

cat > "$report" <<MD
| LM training step, batch 20, bptt 35, $threads threads (best run of $rounds interleaved rounds) | PyTorch, clip + AdamW single-tensor (foreach=False) | PyTorch, clip + AdamW foreach | repro | ratio (repro / single-tensor throughput) | ratio (repro / foreach throughput) | same ratios per CPU second (single / foreach) |
|---|---|---|---|---|---|---|
${lm_rows}
| Adam-family step alone, $adam_params params in $(tr , "\n" <<<"$shapes" | wc -l) tensors, λ = 1e-2, $threads threads (median of $adam_steps steps, best of $rounds, interleaved) | repro | PyTorch | ratio (repro / PyTorch time; > 1 is slower) | same ratio in CPU time |
|---|---|---|---|---|
${adam_rows}
torch.optim.Adam() with no foreach/fused argument takes the ${default_path} path on this CPU
(single = the Adam(foreach=False) rows).
MD
cat "$report"
