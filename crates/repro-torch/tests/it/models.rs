//! The networks of `repro_torch::nn` against PyTorch reference definitions (tests/python/models.py):
//! parameter counts (including the published CIFAR counts), output shapes, and outputs of the same
//! weights — saved by the VarStore as safetensors, loaded strictly by name — in eval and train
//! mode. Also the scale-invariant weight lists: exactly the conv weights, and scaling them all
//! leaves the output (with batch statistics) unchanged while scaling the classifier does not.

use repro_torch::nn::{Arch, build, param_count};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn vs_cpu() -> VarStore {
    VarStore::new(Device::Cpu)
}

fn assert_close(got: &Tensor, want: &Tensor, rel: f64, what: &str) {
    assert_eq!(got.size(), want.size(), "{what}: shapes");
    let scale = want.abs().max().double_value(&[]).max(1e-6);
    let diff = (got - want).abs().max().double_value(&[]);
    assert!(
        diff <= rel * scale,
        "{what}: max |diff| {diff:e} > {rel:e} × output scale {scale:e}"
    );
}

#[test]
fn parameter_counts_match_pytorch_and_the_published_cifar_counts() {
    let cases: &[(Arch, i64, f64)] = &[
        (Arch::SmallCnn, 10, 1.0),
        (Arch::SmallCnn, 100, 0.25),
        (Arch::ResNet18, 10, 1.0),
        (Arch::ResNet18, 100, 1.0),
        (Arch::ResNet18, 200, 0.25),
        (Arch::ResNet50, 10, 1.0),
        (Arch::ResNet50, 100, 0.25),
        (Arch::DenseNet121, 10, 1.0),
        (Arch::DenseNet121, 200, 1.0),
        (Arch::DenseNet121, 100, 0.3),
    ];
    let mut args = Vec::new();
    let mut ours = Vec::new();
    for &(arch, classes, width) in cases {
        let vs = vs_cpu();
        build(arch, &vs.root(), classes, width);
        ours.push(param_count(&vs));
        args.extend([
            arch.name().to_string(),
            classes.to_string(),
            width.to_string(),
        ]);
    }
    let mut full = vec!["count".to_string()];
    full.extend(args);
    let out = repro_testkit::run_script("models.py", &full);
    let theirs: Vec<i64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(theirs.len(), cases.len(), "python printed {out}");
    for ((case, a), b) in cases.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a, b, "{case:?}: ours {a}, PyTorch {b}");
    }
    // kuangliu/pytorch-cifar's published counts for CIFAR-10.
    assert_eq!(ours[2], 11_173_962, "ResNet-18");
    assert_eq!(ours[5], 23_520_842, "ResNet-50");
    assert_eq!(ours[7], 6_956_298, "DenseNet-121");
}

#[test]
fn output_shapes_for_32_and_64_pixel_inputs() {
    for arch in Arch::ALL {
        for (classes, side) in [(10, 32), (100, 32), (200, 64)] {
            let vs = vs_cpu();
            let m = build(arch, &vs.root(), classes, 0.125);
            let x = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
            for train in [false, true] {
                let y = tch::no_grad(|| m.net.forward_t(&x, train));
                assert_eq!(
                    y.size(),
                    vec![2, classes],
                    "{arch:?} {side}px train={train}"
                );
                assert!(
                    y.isfinite().all().int64_value(&[]) == 1,
                    "{arch:?}: non-finite output"
                );
            }
        }
    }
}

/// Give BatchNorm parameters and running statistics non-default values, so that the comparison
/// with PyTorch also checks that they are loaded under the right names.
fn perturb_batch_norms(vs: &VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if t.dim() != 1 {
                continue;
            }
            let n = t.size()[0];
            let opts = (Kind::Float, Device::Cpu);
            let new = if name.ends_with("running_var") || name.ends_with(".weight") {
                Tensor::rand([n], opts) + 0.5
            } else {
                // running_mean and biases (the classifier's included).
                Tensor::randn([n], opts) * 0.2
            };
            t.copy_(&new);
        }
    });
}

fn forward_matches_pytorch(arch: Arch, classes: i64, width: f64, side: i64) {
    tch::manual_seed(7);
    let dir = tempfile::tempdir().unwrap();
    let vs = vs_cpu();
    let m = build(arch, &vs.root(), classes, width);
    perturb_batch_norms(&vs);
    let weights = dir.path().join("w.safetensors");
    vs.save(&weights).unwrap();
    let x = Tensor::randn([4, 3, side, side], (Kind::Float, Device::Cpu));
    let input = dir.path().join("x.npy");
    x.write_npy(&input).unwrap();
    // Eval first: train mode updates the running statistics.
    let (eval, train) = tch::no_grad(|| (m.net.forward_t(&x, false), m.net.forward_t(&x, true)));
    let prefix = dir.path().join("out");
    repro_testkit::run_script(
        "models.py",
        &[
            "forward".to_string(),
            arch.name().to_string(),
            classes.to_string(),
            width.to_string(),
            weights.display().to_string(),
            input.display().to_string(),
            prefix.display().to_string(),
        ],
    );
    let read = |mode: &str| Tensor::read_npy(format!("{}.{mode}.npy", prefix.display())).unwrap();
    let what = format!("{arch:?} width {width} {side}px");
    assert_close(&eval, &read("eval"), 1e-4, &format!("{what} eval"));
    assert_close(&train, &read("train"), 1e-4, &format!("{what} train"));
    // The two modes really differ, so each comparison checks its own mode.
    assert!((&eval - &train).abs().max().double_value(&[]) > 1e-3);
}

#[test]
fn small_cnn_matches_pytorch() {
    forward_matches_pytorch(Arch::SmallCnn, 10, 0.25, 32);
}

#[test]
fn resnet18_matches_pytorch() {
    forward_matches_pytorch(Arch::ResNet18, 10, 0.125, 32);
}

#[test]
fn resnet50_matches_pytorch() {
    forward_matches_pytorch(Arch::ResNet50, 100, 0.0625, 32);
}

#[test]
fn densenet121_matches_pytorch_at_32_and_64_pixels() {
    forward_matches_pytorch(Arch::DenseNet121, 10, 0.125, 32);
    forward_matches_pytorch(Arch::DenseNet121, 200, 0.125, 64);
}

/// Multiply the named variables by `k` in place.
fn scale(vs: &VarStore, names: &[String], k: f64) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for n in names {
            let mut t = vars[n].shallow_clone();
            let _ = t.g_mul_scalar_(k);
        }
    });
}

#[test]
fn scale_invariant_weights_are_the_convs_and_scaling_them_changes_nothing() {
    for arch in Arch::ALL {
        tch::manual_seed(3);
        let vs = vs_cpu();
        let m = build(arch, &vs.root(), 10, 0.125);
        let mut convs: Vec<String> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.dim() == 4)
            .map(|(n, _)| n)
            .collect();
        convs.sort();
        assert!(!m.scale_invariant.is_empty(), "{arch:?}");
        assert_eq!(
            m.scale_invariant, convs,
            "{arch:?}: every conv, nothing else"
        );
        let classifier = if arch == Arch::SmallCnn {
            "fc"
        } else {
            "linear"
        };
        assert!(
            m.scale_invariant.iter().all(|n| !n.starts_with(classifier)),
            "{arch:?}"
        );

        // With batch statistics (how the network trains), a BN-consumed weight's scale is
        // invisible. (With fixed running statistics it is not: eval mode would need the running
        // statistics rescaled too.) BN's eps leaves a tiny residue.
        let x = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
        let before = tch::no_grad(|| m.net.forward_t(&x, true));
        scale(&vs, &m.scale_invariant, 3.0);
        let after = tch::no_grad(|| m.net.forward_t(&x, true));
        assert_close(&after, &before, 1e-3, &format!("{arch:?} convs ×3"));

        // The classifier weight is not scale-invariant: the same check fails for it.
        scale(&vs, &[format!("{classifier}.weight")], 3.0);
        let changed = tch::no_grad(|| m.net.forward_t(&x, true));
        let diff = (&changed - &before).abs().max().double_value(&[]);
        let scale_out = before.abs().max().double_value(&[]);
        assert!(
            diff > 0.1 * scale_out,
            "{arch:?}: classifier ×3 changed only {diff:e}"
        );
    }
}

#[test]
fn resnet18_scale_invariant_names() {
    let vs = vs_cpu();
    let m = build(Arch::ResNet18, &vs.root(), 10, 0.125);
    let si = &m.scale_invariant;
    for n in [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer1.1.conv2.weight",
        "layer2.0.shortcut.0.weight",
        "layer4.1.conv2.weight",
    ] {
        assert!(si.iter().any(|s| s == n), "{n} missing from {si:?}");
    }
    // 1 stem + 8 blocks × 2 + 3 projection shortcuts.
    assert_eq!(si.len(), 20);
    assert!(si.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
    assert!(
        !si.iter()
            .any(|n| n.starts_with("linear") || n.contains("bn"))
    );
}

#[test]
fn names_carry_the_path_prefix() {
    let vs = vs_cpu();
    let m = build(Arch::ResNet18, &(vs.root() / "model"), 10, 0.125);
    assert!(m.scale_invariant.iter().all(|n| n.starts_with("model.")));
    assert!(
        vs.variables()
            .contains_key("model.layer3.0.shortcut.1.running_var")
    );
}

#[test]
fn initialisation_follows_pytorch_defaults() {
    // PyTorch: conv and linear weights kaiming_uniform(a = √5), i.e. U(±1/√fan_in), linear bias
    // U(±1/√fan_in); BatchNorm weight 1, bias 0, running mean 0, variance 1. (tch's own defaults
    // are U(±√6/√fan_in) and a U(0, 1) BatchNorm weight.)
    for arch in Arch::ALL {
        tch::manual_seed(11);
        let vs = vs_cpu();
        build(arch, &vs.root(), 10, 0.25);
        let vars = vs.variables();
        for (name, t) in &vars {
            let size = t.size();
            let max = t.abs().max().double_value(&[]);
            let all = |v: f64| (t - v).abs().max().double_value(&[]) == 0.0;
            let uniform_within = |bound: f64| {
                assert!(max <= bound, "{arch:?} {name}: |w| up to {max} > {bound}");
                if t.numel() >= 1000 {
                    // U(±b) has standard deviation b/√3, and reaches near its bounds.
                    let std = t.std(false).double_value(&[]);
                    let want = bound / 3f64.sqrt();
                    assert!((std / want - 1.0).abs() < 0.1, "{arch:?} {name}: std {std}");
                    assert!(max > 0.95 * bound, "{arch:?} {name}: max {max}");
                }
            };
            match size.len() {
                4 => uniform_within(1.0 / ((size[1] * size[2] * size[3]) as f64).sqrt()),
                2 => uniform_within(1.0 / (size[1] as f64).sqrt()),
                _ if name.ends_with("running_mean") => assert!(all(0.0), "{name}"),
                _ if name.ends_with("running_var") => assert!(all(1.0), "{name}"),
                _ if name == "linear.bias" || name == "fc.bias" => {
                    let w = &vars[&name.replace("bias", "weight")];
                    let bound = 1.0 / (w.size()[1] as f64).sqrt();
                    assert!(max <= bound && max > 0.0, "{arch:?} {name}");
                }
                _ if name.ends_with("weight") => assert!(all(1.0), "{arch:?} {name}"),
                _ => assert!(all(0.0), "{arch:?} {name}"),
            }
        }
    }
}

/// The precision options of a profile really change how a vision model computes: under the
/// bf16 autocast guard the convolutions and the classifier run in bf16 (the loss stays close to
/// fp32's but not equal, the gradients, taken outside the guard, are fp32), and channels-last
/// puts the conv weights and the batches in NHWC without changing the function.
#[test]
fn bf16_autocast_and_channels_last_take_effect_on_the_cpu() {
    use repro_core::runtime::{Autocast, Precision};
    use repro_torch::libtorch::{
        autocast_enabled, autocast_guard, channels_last, is_channels_last, vars_to_channels_last,
    };
    use repro_torch::train::vision::{forward_loss, save_weights};

    tch::manual_seed(0);
    let vs = vs_cpu();
    let model = build(Arch::ResNet18, &vs.root(), 10, 0.25);
    let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 3, 5, 9]);
    let fp32 = Precision::default();
    let bf16 = Precision {
        autocast: Autocast::Bf16,
        ..fp32
    };

    let (logits, loss) = forward_loss(&*model.net, &x, &y, false, fp32);
    assert_eq!(logits.kind(), Kind::Float);
    let (logits16, loss16) = forward_loss(&*model.net, &x, &y, false, bf16);
    assert_eq!(
        logits16.kind(),
        Kind::BFloat16,
        "the classifier ran in bf16"
    );
    let (l32, l16) = (loss.double_value(&[]), loss16.double_value(&[]));
    assert!(
        l16.is_finite() && l16 != l32,
        "bf16 loss {l16} vs fp32 {l32}"
    );
    assert!((l16 - l32).abs() <= 0.05 * l32.abs(), "{l16} vs {l32}");
    assert!(
        !autocast_enabled(Device::Cpu),
        "the guard ended with the loss"
    );

    // Training mode: the backward runs outside autocast and leaves fp32 gradients.
    let (_, loss16) = forward_loss(&*model.net, &x, &y, true, bf16);
    loss16.backward();
    for (name, v) in vs.trainable_variables().iter().enumerate() {
        assert_eq!(v.grad().kind(), Kind::Float, "variable {name}");
    }

    // Guards nest and restore what was there before, as `torch.autocast` does.
    {
        let _outer = autocast_guard(Device::Cpu, Autocast::Bf16);
        {
            let _off = autocast_guard(Device::Cpu, Autocast::Off);
            assert!(
                autocast_enabled(Device::Cpu),
                "`off` leaves the state alone"
            );
            let _inner = autocast_guard(Device::Cpu, Autocast::Bf16);
        }
        assert!(autocast_enabled(Device::Cpu));
    }
    assert!(!autocast_enabled(Device::Cpu));

    // Channels-last: weights converted in place (same variables), batches converted per call.
    // (The reference is taken again: the training-mode forward above moved the BN statistics.)
    let (logits, _) = forward_loss(&*model.net, &x, &y, false, fp32);
    let before: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    assert!(!is_channels_last(&x));
    assert!(is_channels_last(&channels_last(&x)));
    vars_to_channels_last(&vs);
    let mut convs = 0;
    for (name, v) in vs.variables() {
        if v.dim() == 4 {
            assert!(is_channels_last(&v), "{name} is channels-last");
            let s = v.size();
            if s[1] > 1 && s[2] * s[3] > 1 {
                // (1×1 kernels are both at once.)
                assert!(!v.is_contiguous(), "{name} is no longer NCHW-contiguous");
            }
            convs += 1;
        }
    }
    assert!(convs > 0);
    let nhwc = Precision {
        channels_last: true,
        ..fp32
    };
    let (logits_cl, _) = forward_loss(&*model.net, &x, &y, false, nhwc);
    assert_close(&logits_cl, &logits, 1e-4, "channels-last logits");
    // Saved weights are in the standard layout, equal to the values before the conversion.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    save_weights(&vs, &path).unwrap();
    let saved: std::collections::BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .collect();
    for (name, t) in &before {
        assert!(saved[name].is_contiguous());
        assert!(saved[name].equal(t), "{name} saved unchanged");
    }
}
