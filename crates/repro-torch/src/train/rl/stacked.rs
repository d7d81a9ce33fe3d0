//! The pieces of a fused group's DQN that are not the loop (`fused`): the members' minibatches
//! stacked on a leading run axis, the per-member TD loss and update of the stacked Q-network
//! with the stacked optimizer, and batched greedy actions. Each computes per member what
//! `dqn` computes for one run; crates/repro-torch/tests/it/fused_dqn.rs holds them to it,
//! update by update.

use tch::{Kind, Reduction, Tensor};

use super::replay::Batch;
use crate::nn::stacked_dqn::StackedQNet;
use crate::optim::stacked::StackedAdam;

/// N members' minibatches on a leading run axis: states [N, B, C, H, W] (uint8), actions,
/// rewards and terminals [N, B].
pub struct StackedBatch {
    pub states: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_states: Tensor,
    pub terminals: Tensor,
}

impl StackedBatch {
    /// One host batch per member (all of one size); `shape` is one state's [history·C, H, W].
    pub fn new(batches: &[Batch], shape: [i64; 3], device: tch::Device) -> StackedBatch {
        let (n, b) = (batches.len() as i64, batches[0].actions.len() as i64);
        let frames = |f: fn(&Batch) -> &[u8]| {
            let bytes: Vec<u8> = batches.iter().flat_map(|x| f(x).iter().copied()).collect();
            Tensor::from_slice(&bytes)
                .view([n, b, shape[0], shape[1], shape[2]])
                .to_device(device)
        };
        let floats = |f: fn(&Batch) -> &[f32]| {
            let v: Vec<f32> = batches.iter().flat_map(|x| f(x).iter().copied()).collect();
            Tensor::from_slice(&v).view([n, b]).to_device(device)
        };
        let actions: Vec<i64> = batches.iter().flat_map(|x| x.actions.clone()).collect();
        StackedBatch {
            states: frames(|x| &x.states),
            actions: Tensor::from_slice(&actions).view([n, b]).to_device(device),
            rewards: floats(|x| &x.rewards),
            next_states: frames(|x| &x.next_states),
            terminals: floats(|x| &x.terminals),
        }
    }
}

/// Per member, DQN's TD loss (Huber, δ = 1, mean over its batch) against the target network
/// and its batch's mean Q(s, a): two [N] tensors, as `dqn::td_loss` computes each.
pub fn stacked_td_loss(
    online: &StackedQNet,
    target: &StackedQNet,
    b: &StackedBatch,
    gamma: f64,
) -> (Tensor, Tensor) {
    let q = online
        .forward(&b.states)
        .gather(2, &b.actions.unsqueeze(2), false)
        .squeeze_dim(2);
    let y = tch::no_grad(|| {
        let next = target.forward(&b.next_states).amax([2], false);
        &b.rewards + (1.0 - &b.terminals) * next * gamma
    });
    let per_sample = q.huber_loss(&y, Reduction::None, 1.0);
    let loss = per_sample.mean_dim([1i64].as_slice(), false, Kind::Float);
    let q_mean = tch::no_grad(|| q.mean_dim([1i64].as_slice(), false, Kind::Float));
    (loss, q_mean)
}

/// One update of every member: the summed TD losses' gradient (each member's parameters get
/// only its own loss's), then the stacked optimizer's step at each member's (lr, λ). Returns
/// [N] (loss, mean Q(s, a), ‖∇L‖₂), still on the device.
pub fn stacked_update(
    online: &StackedQNet,
    target: &StackedQNet,
    opt: &mut StackedAdam,
    b: &StackedBatch,
    gamma: f64,
    (lr, weight_decay): (&[f64], &[f64]),
) -> (Tensor, Tensor, Tensor) {
    let (loss, q_mean) = stacked_td_loss(online, target, b, gamma);
    opt.clear_grads();
    loss.sum(Kind::Float).backward();
    let grad_norm = opt.grad_norms();
    opt.step(lr, weight_decay);
    (loss.detach(), q_mean, grad_norm)
}

/// Greedy actions of every member whose `state` is given (others get 0): one batched forward.
pub fn greedy(
    net: &StackedQNet,
    states: &[Option<&[u8]>],
    [c, h, w]: [i64; 3],
    device: tch::Device,
) -> Vec<usize> {
    let len = (c * h * w) as usize;
    let mut bytes = vec![0u8; states.len() * len];
    for (i, s) in states.iter().enumerate() {
        if let Some(s) = s {
            bytes[i * len..(i + 1) * len].copy_from_slice(s);
        }
    }
    let x = Tensor::from_slice(&bytes).view([states.len() as i64, 1, c, h, w]);
    let best = tch::no_grad(|| net.forward(&x.to_device(device)).argmax(2, false));
    let best = Vec::<i64>::try_from(&best.view([-1]).to_device(tch::Device::Cpu))
        .expect("an [N] int64 tensor");
    best.into_iter().map(|a| a as usize).collect()
}
