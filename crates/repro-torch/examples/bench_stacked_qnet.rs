//! MinAtar Q-network forward + backward for N members on CPU, five ways: N solo nets one after
//! another in one autograd graph (`loop`); the stacked net with its conv as one grouped
//! convolution (`grouped`, groups = N), as im2col (unfold) + one `baddbmm` (`im2col`), or as
//! im2col + a `matmul` with the weights broadcast over the batch (`im2col_bcast`), the dense
//! layers as `nn::stacked_dqn`'s in all three; and `nn::stacked_dqn::StackedQNet` itself
//! (`module`). What chose the module's convolution (its doc has the numbers).
//!
//!   bench_stacked_qnet <C> <batch> <threads> <steps> <repeats> <N>...
//!
//! Input [C, 10, 10] of 0/1 bytes, 6 actions. Prints one line per N and way:
//! `N <n> <way> ms/step <wall> cpu_ms/step <cpu> ms/member <wall / n>`, each the best of
//! `repeats` interleaved repeats of `steps` steps. `BENCH_BITWISE=1` applies the bitwise runs'
//! libtorch settings (oneDNN off) first.

mod common;

use repro_torch::nn::dqn::{QNetArch, build};
use repro_torch::nn::stacked_dqn::StackedQNet;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// The conv of the stacked net by im2col: cols [N, C·9, B·L] by one bmm with [N, 16, C·9].
fn im2col_forward(p: &[Tensor; 6], x: &Tensor, [c, h, w]: [i64; 3]) -> Tensor {
    let (n, b) = (x.size()[0], x.size()[1]);
    let (oh, ow) = (h - 2, w - 2);
    let cols = x
        .to_kind(Kind::Float)
        .reshape([n * b, c, h, w])
        .im2col([3, 3], [1, 1], [0, 0], [1, 1])
        .reshape([n, b, c * 9, oh * ow])
        .permute([0, 2, 1, 3])
        .reshape([n, c * 9, b * oh * ow]);
    let y = p[1]
        .unsqueeze(-1)
        .baddbmm(&p[0].reshape([n, 16, c * 9]), &cols, 1.0, 1.0)
        .relu()
        .reshape([n, 16, b, oh * ow])
        .permute([0, 2, 1, 3])
        .reshape([n, b, 16 * oh * ow]);
    dense(p, y)
}

/// im2col with the members' weights broadcast over the batch: [N, 1, 16, C·9] @ [N, B, C·9, L].
fn im2col_bcast_forward(p: &[Tensor; 6], x: &Tensor, [c, h, w]: [i64; 3]) -> Tensor {
    let (n, b) = (x.size()[0], x.size()[1]);
    let (oh, ow) = (h - 2, w - 2);
    let cols = x
        .to_kind(Kind::Float)
        .reshape([n * b, c, h, w])
        .im2col([3, 3], [1, 1], [0, 0], [1, 1])
        .reshape([n, b, c * 9, oh * ow]);
    let y = (p[0].reshape([n, 1, 16, c * 9]).matmul(&cols) + p[1].reshape([n, 1, 16, 1]))
        .relu()
        .reshape([n, b, 16 * oh * ow]);
    dense(p, y)
}

/// The conv of the stacked net as one grouped convolution over [B, N·C, H, W].
fn grouped_forward(p: &[Tensor; 6], x: &Tensor, [c, h, w]: [i64; 3]) -> Tensor {
    let (n, b) = (x.size()[0], x.size()[1]);
    let y = x
        .to_kind(Kind::Float)
        .transpose(0, 1)
        .reshape([b, n * c, h, w])
        .conv2d(
            &p[0].reshape([n * 16, c, 3, 3]),
            Some(p[1].reshape([n * 16])),
            [1, 1],
            [0, 0],
            [1, 1],
            n,
        )
        .relu()
        .reshape([b, n, -1])
        .transpose(0, 1);
    dense(p, y)
}

/// The dense layers as `module`'s: weights [N, out, in] times activations [N, in, B].
fn dense(p: &[Tensor; 6], y: Tensor) -> Tensor {
    let y = p[3]
        .unsqueeze(-1)
        .baddbmm(&p[2], &y.transpose(1, 2), 1.0, 1.0)
        .relu();
    p[5].unsqueeze(-1)
        .baddbmm(&p[4], &y, 1.0, 1.0)
        .transpose(1, 2)
        .contiguous()
}

/// A named way of doing one step.
type Way<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 6,
        "usage: bench_stacked_qnet <C> <batch> <threads> <steps> <repeats> <N>..."
    );
    let c = common::int("C", &args[0], 1)?;
    let batch = common::int("batch", &args[1], 1)?;
    let threads = common::int("threads", &args[2], 1)?;
    let steps = common::int("steps", &args[3], 1)?;
    let repeats = common::int("repeats", &args[4], 1)?;
    tch::set_num_threads(threads as i32);
    if std::env::var_os("BENCH_BITWISE").is_some() {
        // A task file's settings (the fields it may leave out at their defaults).
        let settings: repro_core::runtime::RunSettings =
            serde_json::from_value(serde_json::json!({
                "device": {"type": "cpu"},
                "threads": threads,
                "bitwise": true,
            }))?;
        repro_torch::libtorch::apply(&settings);
    }
    let input = [c, 10, 10];
    let actions = 6;
    for a in &args[5..] {
        let n = common::int("N", a, 1)?;
        tch::manual_seed(0);
        let members: Vec<nn::VarStore> = (0..n).map(|_| nn::VarStore::new(Device::Cpu)).collect();
        let solo: Vec<_> = members
            .iter()
            .map(|vs| build(QNetArch::MinAtar, &vs.root(), input, actions))
            .collect();
        let svs = nn::VarStore::new(Device::Cpu);
        let net = StackedQNet::from_members(&svs, QNetArch::MinAtar, input, actions, &members)?;
        let p: [Tensor; 6] = [
            "conv.weight",
            "conv.bias",
            "fc_hidden.weight",
            "fc_hidden.bias",
        ]
        .into_iter()
        .chain(["output.weight", "output.bias"])
        .map(|k| svs.variables()[k].shallow_clone())
        .collect::<Vec<_>>()
        .try_into()
        .expect("six tensors");
        let x = Tensor::randint(2, [n, batch, c, 10, 10], (Kind::Uint8, Device::Cpu));
        let r = Tensor::randn([n, batch, actions], (Kind::Float, Device::Cpu));
        let ways: [Way; 5] = [
            (
                "loop",
                Box::new(|| {
                    let loss = solo
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (m.forward(&x.get(i as i64)) * r.get(i as i64)).sum(None))
                        .reduce(|a, b| a + b)
                        .expect("a member");
                    loss.backward();
                    members.iter().for_each(|vs| {
                        vs.trainable_variables()
                            .iter_mut()
                            .for_each(|t| t.zero_grad())
                    });
                }),
            ),
            (
                "grouped",
                Box::new(|| {
                    (grouped_forward(&p, &x, input) * &r).sum(None).backward();
                    svs.trainable_variables()
                        .iter_mut()
                        .for_each(|t| t.zero_grad());
                }),
            ),
            (
                "im2col",
                Box::new(|| {
                    (im2col_forward(&p, &x, input) * &r).sum(None).backward();
                    svs.trainable_variables()
                        .iter_mut()
                        .for_each(|t| t.zero_grad());
                }),
            ),
            (
                "im2col_bcast",
                Box::new(|| {
                    (im2col_bcast_forward(&p, &x, input) * &r)
                        .sum(None)
                        .backward();
                    svs.trainable_variables()
                        .iter_mut()
                        .for_each(|t| t.zero_grad());
                }),
            ),
            (
                "module",
                Box::new(|| {
                    (net.forward(&x) * &r).sum(None).backward();
                    svs.trainable_variables()
                        .iter_mut()
                        .for_each(|t| t.zero_grad());
                }),
            ),
        ];
        // Round-robin over the ways, best of `repeats`: the machine may be shared, and the
        // minimum is the least disturbed estimate; CPU time (all threads) is reported beside wall
        // time.
        for (_, step) in &ways {
            for _ in 0..steps.min(5) {
                step();
            }
        }
        let mut best = vec![(f64::INFINITY, f64::INFINITY); ways.len()];
        for _ in 0..repeats {
            for ((_, step), best) in ways.iter().zip(&mut best) {
                let (wall, cpu) = common::timed(Device::Cpu, || {
                    for _ in 0..steps {
                        step();
                    }
                });
                best.0 = best.0.min(wall / steps as f64 * 1e3);
                best.1 = best.1.min(cpu / steps as f64 * 1e3);
            }
        }
        for ((name, _), (wall, cpu)) in ways.iter().zip(best) {
            println!(
                "N {n} {name} ms/step {wall:.3} cpu_ms/step {cpu:.3} ms/member {:.4}",
                wall / n as f64
            );
        }
    }
    Ok(())
}
