//! The pieces of DQN that are not the loop: ε schedules, the frame stack an acting agent keeps,
//! the TD loss with a target network, and the update (loss, backward, the Adam-family step).

use tch::nn::Module;
use tch::{Device, Kind, Reduction, Tensor};

use super::replay::Batch;
use crate::optim::adam::Adam;

/// dopamine's `linearly_decaying_epsilon`: 1 during the `warmup` steps, then linear from 1 to
/// `end` over `decay` steps, then `end`.
pub fn linearly_decaying_epsilon(decay: u64, step: u64, warmup: u64, end: f64) -> f64 {
    let steps_left = (decay + warmup) as f64 - step as f64;
    let bonus = ((1.0 - end) * steps_left / decay.max(1) as f64).clamp(0.0, 1.0 - end);
    end + bonus
}

/// The last `history` frames of the current episode, zeros before its start.
pub struct FrameStack {
    frame_len: usize,
    buf: Vec<u8>,
}

impl FrameStack {
    pub fn new(history: usize, frame_len: usize) -> FrameStack {
        FrameStack {
            frame_len,
            buf: vec![0; history * frame_len],
        }
    }

    /// A new episode whose first frame is `frame`.
    pub fn reset(&mut self, frame: &[u8]) {
        self.buf.fill(0);
        self.push(frame);
    }

    pub fn push(&mut self, frame: &[u8]) {
        self.buf.copy_within(self.frame_len.., 0);
        let start = self.buf.len() - self.frame_len;
        self.buf[start..].copy_from_slice(frame);
    }

    pub fn state(&self) -> &[u8] {
        &self.buf
    }

    /// The newest frame.
    pub fn newest(&self) -> &[u8] {
        &self.buf[self.buf.len() - self.frame_len..]
    }
}

/// A host batch as tensors on `device`; `shape` is one state's [history·C, H, W].
pub struct DeviceBatch {
    pub states: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_states: Tensor,
    pub terminals: Tensor,
}

impl DeviceBatch {
    pub fn new(b: &Batch, shape: [i64; 3], device: Device) -> DeviceBatch {
        let n = b.actions.len() as i64;
        let states = |x: &[u8]| {
            Tensor::from_slice(x)
                .view([n, shape[0], shape[1], shape[2]])
                .to_device(device)
        };
        DeviceBatch {
            states: states(&b.states),
            actions: Tensor::from_slice(&b.actions).to_device(device),
            rewards: Tensor::from_slice(&b.rewards).to_device(device),
            next_states: states(&b.next_states),
            terminals: Tensor::from_slice(&b.terminals).to_device(device),
        }
    }
}

/// DQN's loss: Huber (δ = 1, mean over the batch) between Q(s, a) and the target
/// r + γ·(1 − terminal)·maxₐ′ Q_target(s′, a′), the target without gradient. Returns the loss
/// and the batch's mean Q(s, a).
pub fn td_loss(
    online: &dyn Module,
    target: &dyn Module,
    b: &DeviceBatch,
    gamma: f64,
) -> (Tensor, Tensor) {
    let q = online
        .forward(&b.states)
        .gather(1, &b.actions.unsqueeze(1), false)
        .squeeze_dim(1);
    let y = tch::no_grad(|| {
        let next = target.forward(&b.next_states).amax([1], false);
        &b.rewards + (1.0 - &b.terminals) * next * gamma
    });
    let loss = q.huber_loss(&y, Reduction::Mean, 1.0);
    let q_mean = tch::no_grad(|| q.mean(Kind::Float));
    (loss, q_mean)
}

/// One update: the TD loss, its gradient, the optimizer step at (lr, λ). Returns (loss, mean
/// Q(s, a), ‖∇L‖₂), all still on the device.
pub fn update(
    online: &dyn Module,
    target: &dyn Module,
    opt: &mut Adam,
    b: &DeviceBatch,
    gamma: f64,
    lr: f64,
    weight_decay: f64,
) -> (Tensor, Tensor, Tensor) {
    let (loss, q_mean) = td_loss(online, target, b, gamma);
    opt.clear_grads();
    loss.backward();
    let grad_norm = tch::no_grad(|| {
        let sq: Vec<Tensor> = opt
            .params()
            .iter()
            .map(|p| p.grad().square().sum(Kind::Float))
            .collect();
        Tensor::stack(&sq, 0).sum(Kind::Float).sqrt()
    });
    opt.step(lr, weight_decay);
    (loss.detach(), q_mean, grad_norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_is_one_in_warmup_then_decays_linearly_to_its_floor() {
        let eps = |s| linearly_decaying_epsilon(100, s, 50, 0.1);
        assert_eq!(eps(0), 1.0);
        assert_eq!(eps(50), 1.0);
        assert!((eps(100) - 0.55).abs() < 1e-12);
        assert!((eps(150) - 0.1).abs() < 1e-12);
        assert!((eps(10_000) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn the_frame_stack_shifts_and_resets_to_zeros() {
        let mut s = FrameStack::new(3, 2);
        s.reset(&[1, 1]);
        assert_eq!(s.state(), [0, 0, 0, 0, 1, 1]);
        s.push(&[2, 2]);
        s.push(&[3, 3]);
        s.push(&[4, 4]);
        assert_eq!(s.state(), [2, 2, 3, 3, 4, 4]);
        assert_eq!(s.newest(), [4, 4]);
        s.reset(&[5, 5]);
        assert_eq!(s.state(), [0, 0, 0, 0, 5, 5]);
    }
}
