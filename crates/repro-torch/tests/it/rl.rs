//! The DQN stage's numerics against PyTorch (tests/python/dqn_reference.py): the Q-networks'
//! parameter counts and outputs, and whole DQN updates (TD target from the target network,
//! Huber loss, Adam+l2 = torch.optim.Adam(weight_decay), AdamW = torch.optim.AdamW).

use repro_torch::nn::dqn::{QNetArch, build};
use repro_torch::optim::adam::{Adam, AdamConfig, Variant};
use repro_torch::train::common::trainable_by_name;
use repro_torch::train::rl::dqn::{DeviceBatch, update};
use repro_torch::train::rl::replay::Batch;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use repro_testkit::run_script;

fn args(arch: &str, [c, h, w]: [i64; 3], a: i64) -> Vec<String> {
    [arch.to_string()]
        .into_iter()
        .chain([c, h, w, a].map(|n| n.to_string()))
        .collect()
}

fn arch_of(name: &str) -> QNetArch {
    QNetArch::parse(name).unwrap()
}

#[test]
fn parameter_counts_match_pytorch() {
    for (arch, shape, a) in [
        ("minatar", [4, 10, 10], 6),
        ("minatar", [10, 10, 10], 6),
        ("nature", [4, 84, 84], 18),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let _net = build(arch_of(arch), &vs.root(), shape, a);
        let ours = repro_torch::nn::param_count(&vs);
        let mut cmd = vec!["count".to_string()];
        cmd.extend(args(arch, shape, a));
        let theirs: i64 = run_script("dqn_reference.py", &cmd).trim().parse().unwrap();
        assert_eq!(ours, theirs, "{arch} {shape:?}");
    }
    // MinAtar Breakout's net by hand: conv 4·16·9 + 16, hidden 1024·128 + 128, out 128·6 + 6.
    let vs = VarStore::new(Device::Cpu);
    let _net = build(QNetArch::MinAtar, &vs.root(), [4, 10, 10], 6);
    assert_eq!(repro_torch::nn::param_count(&vs), 592 + 131_200 + 774);
}

fn random_frames(n: i64, [c, h, w]: [i64; 3], high: i64) -> Tensor {
    Tensor::randint(high, [n, c, h, w], (Kind::Int64, Device::Cpu)).to_kind(Kind::Uint8)
}

#[test]
fn q_values_match_pytorch() {
    tch::manual_seed(3);
    let dir = tempfile::tempdir().unwrap();
    for (arch, shape, a, high) in [
        ("minatar", [6, 10, 10], 6, 2),
        ("nature", [4, 84, 84], 6, 256),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let net = build(arch_of(arch), &vs.root(), shape, a);
        let weights = dir.path().join(format!("{arch}.safetensors"));
        vs.save(&weights).unwrap();
        let x = random_frames(5, shape, high);
        let input = dir.path().join(format!("{arch}.x.npy"));
        x.write_npy(&input).unwrap();
        let out = dir.path().join(format!("{arch}.q.npy"));
        let mut cmd = vec!["forward".to_string()];
        cmd.extend(args(arch, shape, a));
        cmd.extend([&weights, &input, &out].map(|p| p.display().to_string()));
        run_script("dqn_reference.py", &cmd);
        let ours = tch::no_grad(|| net.forward(&x));
        let theirs = Tensor::read_npy(&out).unwrap();
        assert_eq!(ours.size(), [5, a]);
        let err = (&ours - &theirs).abs().max().double_value(&[]);
        assert!(err < 1e-5, "{arch}: Q-values differ by {err}");
    }
}

/// `steps` updates on one fixed batch here and in PyTorch; losses and weights must agree.
fn update_matches(variant: &str, wd: f64) {
    tch::manual_seed(11);
    let (shape, a, n) = ([4i64, 10, 10], 6i64, 32usize);
    let dir = tempfile::tempdir().unwrap();
    let online_vs = VarStore::new(Device::Cpu);
    let online = build(QNetArch::MinAtar, &online_vs.root(), shape, a);
    let target_vs = VarStore::new(Device::Cpu);
    let target = build(QNetArch::MinAtar, &target_vs.root(), shape, a);
    let (wo, wt) = (
        dir.path().join("o.safetensors"),
        dir.path().join("t.safetensors"),
    );
    online_vs.save(&wo).unwrap();
    target_vs.save(&wt).unwrap();

    let to_vec_u8 = |t: &Tensor| Vec::<u8>::try_from(t.flatten(0, -1)).unwrap();
    let states = random_frames(n as i64, shape, 2);
    let next = random_frames(n as i64, shape, 2);
    let batch = Batch {
        states: to_vec_u8(&states),
        actions: (0..n).map(|i| (i * 5 % 6) as i64).collect(),
        rewards: (0..n).map(|i| (i % 3) as f32 * 0.5).collect(),
        next_states: to_vec_u8(&next),
        terminals: (0..n).map(|i| f32::from(i % 4 == 0)).collect(),
    };
    let b = DeviceBatch::new(&batch, shape, Device::Cpu);
    let prefix = dir.path().join("batch");
    let p = prefix.display().to_string();
    b.states.write_npy(format!("{p}.states.npy")).unwrap();
    b.actions.write_npy(format!("{p}.actions.npy")).unwrap();
    b.rewards.write_npy(format!("{p}.rewards.npy")).unwrap();
    b.next_states
        .write_npy(format!("{p}.next_states.npy"))
        .unwrap();
    b.terminals.write_npy(format!("{p}.terminals.npy")).unwrap();

    let (gamma, lr, eps, steps) = (0.99, 1e-3, 1.5e-4, 3);
    let mut opt = Adam::new(
        trainable_by_name(&online_vs)
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps,
            variant: Variant::parse(variant).unwrap(),
        },
    );
    let losses: Vec<f64> = (0..steps)
        .map(|_| {
            let (loss, _, _) = update(&*online, &*target, &mut opt, &b, gamma, lr, wd);
            loss.double_value(&[])
        })
        .collect();

    let out = dir.path().join("out").display().to_string();
    let mut cmd = vec!["update".to_string()];
    cmd.extend(args("minatar", shape, a));
    cmd.extend([wo.display().to_string(), wt.display().to_string(), p]);
    cmd.extend([gamma, lr, wd].map(|x| x.to_string()));
    cmd.extend([
        variant.to_string(),
        eps.to_string(),
        steps.to_string(),
        out.clone(),
    ]);
    run_script("dqn_reference.py", &cmd);
    let theirs = Tensor::read_npy(format!("{out}.losses.npy")).unwrap();
    for (i, l) in losses.iter().enumerate() {
        let t = theirs.double_value(&[i as i64]);
        assert!(
            (l - t).abs() <= 1e-5 * t.abs().max(1e-3),
            "{variant} step {i}: loss {l} vs {t}"
        );
    }
    assert!(
        losses[0] != losses[steps - 1],
        "the updates changed nothing"
    );
    for (name, w) in online_vs.variables() {
        let t = Tensor::read_npy(format!("{out}.{name}.npy")).unwrap();
        let err = (&w - &t).abs().max().double_value(&[]);
        assert!(
            err < 2e-6,
            "{variant}: `{name}` differs by {err} after {steps} updates"
        );
    }
}

#[test]
fn dqn_updates_with_adam_l2_match_torch_adam() {
    update_matches("adam_l2", 0.01);
}

#[test]
fn dqn_updates_with_adamw_match_torch_adamw() {
    update_matches("adamw", 0.1);
}
