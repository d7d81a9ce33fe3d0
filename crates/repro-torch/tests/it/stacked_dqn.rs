//! The stacked DQN Q-networks of a fused group (`nn::stacked_dqn`) against the solo nets they
//! stack: forward and gradients per member, parameter counts, the members' files, and the
//! members' independence (a NaN in one member reaches no other).

use std::collections::BTreeMap;

use repro_torch::nn::dqn::{QNetArch, build};
use repro_torch::nn::param_count;
use repro_torch::nn::stacked_dqn::StackedQNet;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

const N: i64 = 3;

/// (arch, input, actions, batch, the frames' byte range).
const CASES: [(QNetArch, [i64; 3], i64, i64, i64); 2] = [
    (QNetArch::MinAtar, [4, 10, 10], 6, 8, 2),
    (QNetArch::Nature, [4, 84, 84], 6, 2, 256),
];

/// N solo nets, member i built under seed 100 + i, and their stack.
struct Group {
    members: Vec<VarStore>,
    solo: Vec<Box<dyn Module>>,
    vs: VarStore,
    net: StackedQNet,
}

fn group(arch: QNetArch, input: [i64; 3], actions: i64) -> Group {
    let (members, solo): (Vec<_>, Vec<_>) = (0..N)
        .map(|i| {
            tch::manual_seed(100 + i);
            let vs = VarStore::new(Device::Cpu);
            let net = build(arch, &vs.root(), input, actions);
            (vs, net)
        })
        .unzip();
    let vs = VarStore::new(Device::Cpu);
    let net = StackedQNet::from_members(&vs, arch, input, actions, &members).unwrap();
    Group {
        members,
        solo,
        vs,
        net,
    }
}

fn frames(batch: i64, [c, h, w]: [i64; 3], high: i64) -> Tensor {
    Tensor::randint(high, [N, batch, c, h, w], (Kind::Int64, Device::Cpu)).to_kind(Kind::Uint8)
}

/// max |a − b| / max |b|.
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]);
    (a - b).abs().max().double_value(&[]) / scale.max(f64::MIN_POSITIVE)
}

/// A scalar loss of a member's (or the stack's) Q-values that depends on them nonlinearly.
fn loss(q: &Tensor, target: &Tensor) -> Tensor {
    (q - target).square().sum(Kind::Float)
}

/// Every variable's gradient by name.
fn grads(vs: &VarStore) -> BTreeMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .map(|(k, v)| (k, v.grad().copy()))
        .collect()
}

/// A boolean scalar tensor's value.
fn truth(t: Tensor) -> bool {
    t.int64_value(&[]) != 0
}

fn zero_grads(vs: &VarStore) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
}

#[test]
fn stacked_forward_and_gradients_equal_each_solo_nets() {
    tch::manual_seed(7);
    for (arch, input, actions, batch, high) in CASES {
        let g = group(arch, input, actions);
        let x = frames(batch, input, high);
        let target = Tensor::randn([N, batch, actions], (Kind::Float, Device::Cpu));

        let q = g.net.forward(&x);
        assert_eq!(q.size(), [N, batch, actions]);
        assert_eq!(q.kind(), Kind::Float);
        loss(&q, &target).backward();
        let mut worst_q: f64 = 0.0;
        let mut worst_g: f64 = 0.0;
        let stacked = grads(&g.vs);
        for i in 0..N {
            let qi = g.solo[i as usize].forward(&x.get(i));
            let e = rel(&q.get(i), &qi);
            assert!(e <= 1e-5, "{arch:?} member {i}: Q relative error {e:e}");
            worst_q = worst_q.max(e);
            loss(&qi, &target.get(i)).backward();
            let solo = grads(&g.members[i as usize]);
            assert_eq!(solo.len(), stacked.len());
            for (name, gi) in &solo {
                let e = rel(&stacked[name].get(i), gi);
                assert!(
                    e <= 1e-5,
                    "{arch:?} member {i}: ∂/∂{name} relative error {e:e}"
                );
                worst_g = worst_g.max(e);
            }
        }
        eprintln!(
            "{arch:?}: max relative error Q {worst_q:.2e}, gradients {worst_g:.2e} \
             ({N} members, batch {batch})"
        );
    }
}

#[test]
fn members_have_the_solo_nets_parameters_and_files() {
    tch::manual_seed(8);
    for (arch, input, actions, batch, high) in CASES {
        let g = group(arch, input, actions);
        assert_eq!(g.net.members(), N as usize);
        let solo_count = param_count(&g.members[0]);
        assert_eq!(param_count(&g.vs), N * solo_count, "{arch:?}");
        assert_eq!(
            g.vs.trainable_variables().len(),
            g.members[0].trainable_variables().len()
        );
        for i in 0..N as usize {
            let ours: BTreeMap<String, Tensor> = g.net.member_tensors(i).into_iter().collect();
            let solo: BTreeMap<String, Tensor> = g.members[i].variables().into_iter().collect();
            let shapes = |m: &BTreeMap<String, Tensor>| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.size(), v.kind()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(shapes(&ours), shapes(&solo), "{arch:?} member {i}");
            for (name, t) in &ours {
                assert!(t.equal(&solo[name]), "{arch:?} member {i}: {name} differs");
                assert!(!t.requires_grad(), "member_tensors are detached copies");
            }
            // Different seeds give different members (the copy is not of one store N times).
            if i > 0 {
                let first = g.net.member_tensors(0);
                assert!(!first[0].1.equal(&ours[&first[0].0]));
            }
        }

        // A member's file, as a solo run saves its VarStore, loads into the solo net.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.safetensors");
        Tensor::write_safetensors(&g.net.member_tensors(2), &path).unwrap();
        let mut vs = VarStore::new(Device::Cpu);
        let solo = build(arch, &vs.root(), input, actions);
        vs.load(&path).unwrap();
        let x = frames(batch, input, high);
        assert!(solo.forward(&x.get(2)).equal(&g.solo[2].forward(&x.get(2))));
        // And the stacked variables train: after a step on them, member_tensors follow.
        tch::no_grad(|| {
            for mut t in g.vs.trainable_variables() {
                let _ = t.g_add_scalar_(1.0);
            }
        });
        let moved = g.net.member_tensors(1);
        let before = g.members[1].variables();
        for (name, t) in moved {
            assert!(t.equal(&(&before[&name] + 1.0)), "{name}");
        }
    }
}

#[test]
fn a_nan_member_leaves_the_others_bitwise_unchanged() {
    tch::manual_seed(9);
    for (arch, input, actions, batch, high) in CASES {
        let g = group(arch, input, actions);
        let x = frames(batch, input, high).to_kind(Kind::Float);
        let target = Tensor::randn([N, batch, actions], (Kind::Float, Device::Cpu));
        let run = |x: &Tensor| {
            zero_grads(&g.vs);
            let q = g.net.forward(x);
            loss(&q, &target).backward();
            (q, grads(&g.vs))
        };
        let (q0, g0) = run(&x);
        assert!(!truth(q0.isnan().any()), "{arch:?}: clean outputs finite");
        let check = |what: &str, (q, gr): (Tensor, BTreeMap<String, Tensor>)| {
            assert!(
                truth(q.get(1).isnan().all()),
                "{arch:?} {what}: member 1's Q is all NaN"
            );
            for i in [0, 2] {
                assert!(
                    q.get(i).equal(&q0.get(i)),
                    "{arch:?} {what}: member {i}'s Q"
                );
                for (name, t) in &gr {
                    assert!(
                        t.get(i).equal(&g0[name].get(i)),
                        "{arch:?} {what}: member {i}'s ∂/∂{name}"
                    );
                }
            }
            assert!(
                gr.values().all(|t| truth(t.get(1).isnan().any())),
                "{arch:?} {what}: member 1's gradients hold NaN"
            );
        };

        // Member 1's input NaN.
        let dirty = x.copy();
        let _ = dirty.get(1).fill_(f64::NAN);
        check("input", run(&dirty));

        // Member 1's weights NaN (every variable's slice), clean input.
        tch::no_grad(|| {
            for t in g.vs.trainable_variables() {
                let _ = t.get(1).fill_(f64::NAN);
            }
        });
        check("weights", run(&x));
    }
}
