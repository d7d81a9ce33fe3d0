//! metrics::sharpness against known answers: quadratics with a known Hessian split into chunks,
//! PyTorch's spectral norms, a dense Hessian of a small BN net, and the scale invariance of
//! S_inv on that net.

use repro_torch::sharpness::{self as sh, Objective};
use tch::nn;
use tch::{Device, Kind, Tensor};

fn f64s(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

/// One intra-op thread: the tests run in parallel, and libtorch's default (a thread per core)
/// oversubscribes a small machine by tens of times.
fn single_threaded() {
    tch::set_num_threads(1);
}

/// `f` with libtorch's global generator seeded and no other test drawing from it meanwhile, so
/// the random tensors a test builds are the same on every run.
fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    f()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Q diag(eig) Qᵀ with a random orthogonal Q (f64).
fn with_eigenvalues(eig: &[f64], seed: i64) -> Tensor {
    let n = eig.len() as i64;
    let g = seeded(seed, || Tensor::randn([n, n], (Kind::Double, Device::Cpu)));
    let (q, _) = Tensor::linalg_qr(&g, "reduced");
    q.matmul(&f64s(eig).diag(0)).matmul(&q.tr())
}

/// L(w) = ½ wᵀ A w + bᵀ w as two chunks: ½ wᵀ(0.3A)w and ½ wᵀ(0.7A)w + bᵀw.
struct Quadratic {
    a: Tensor,
    b: Tensor,
    w: Tensor,
}

impl Quadratic {
    fn new(a: Tensor, b: &[f64], w: &[f64]) -> Quadratic {
        Quadratic {
            a,
            b: f64s(b),
            w: f64s(w).set_requires_grad(true),
        }
    }

    fn chunk(&self, i: usize) -> Tensor {
        let part = if i == 0 { 0.3 } else { 0.7 };
        let quad = self.w.dot(&self.a.mv(&self.w)) * (0.5 * part);
        if i == 0 {
            quad
        } else {
            quad + self.b.dot(&self.w)
        }
    }

    fn value_at(&self, w: &[f64]) -> f64 {
        let w = f64s(w);
        (w.dot(&self.a.mv(&w)) * 0.5 + self.b.dot(&w)).double_value(&[])
    }
}

#[test]
fn lambda_max_is_the_top_eigenvalue_of_a_chunked_quadratic() {
    single_threaded();
    let eig = [10.0, 6.0, 3.0, 1.0, 0.5, 0.1];
    let q = Quadratic::new(with_eigenvalues(&eig, 1), &[0.1; 6], &[0.3; 6]);
    let loss = |i| q.chunk(i);
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let params = [q.w.shallow_clone()];
    let l = sh::lambda_max(&obj, &params, 500, 3).unwrap();
    assert!(rel(l, 10.0) < 1e-3, "λ_max {l}");
    assert_eq!(l, sh::lambda_max(&obj, &params, 500, 3).unwrap());
    // One chunk alone holds 0.3 of the curvature.
    let first = |_| q.chunk(0);
    let one = Objective {
        chunks: 1,
        loss: &first,
    };
    let l1 = sh::lambda_max(&one, &params, 500, 3).unwrap();
    assert!(rel(l1, 3.0) < 1e-3, "λ_max of chunk 0: {l1}");
}

#[test]
fn lambda_max_keeps_the_sign_of_a_dominant_negative_eigenvalue() {
    single_threaded();
    let q = Quadratic::new(with_eigenvalues(&[-5.0, 3.0, 1.0], 2), &[0.0; 3], &[1.0; 3]);
    let loss = |i| q.chunk(i);
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let l = sh::lambda_max(&obj, &[q.w.shallow_clone()], 500, 0).unwrap();
    assert!(rel(l, -5.0) < 1e-3, "λ_max {l}");
}

#[test]
fn hutchinson_trace_is_unbiased_and_its_error_shrinks() {
    single_threaded();
    let eig = [4.0, 3.0, 2.0, 1.0, 1.0, 0.5, 0.2, 0.1];
    let tr: f64 = eig.iter().sum();
    let q = Quadratic::new(with_eigenvalues(&eig, 3), &[0.2; 8], &[-0.1; 8]);
    let loss = |i| q.chunk(i);
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let params = [q.w.shallow_clone()];
    let (m20, se20) = sh::hutchinson_trace(&obj, &params, 20, 5).unwrap();
    let (m500, se500) = sh::hutchinson_trace(&obj, &params, 500, 5).unwrap();
    assert!(se20 > 0.0 && se500 > 0.0);
    assert!((m20 - tr).abs() < 4.0 * se20, "{m20} ± {se20} vs {tr}");
    assert!((m500 - tr).abs() < 4.0 * se500, "{m500} ± {se500} vs {tr}");
    // √(500/20) = 5: allow for the noise of the standard errors themselves.
    assert!(se500 < se20 / 2.5, "{se500} vs {se20}");
    assert_eq!(
        (m20, se20),
        sh::hutchinson_trace(&obj, &params, 20, 5).unwrap()
    );
    // A diagonal A has zᵀAz = tr(A) for every Rademacher z: exact, with zero error.
    let d = Quadratic::new(f64s(&eig).diag(0), &[0.0; 8], &[1.0; 8]);
    let dl = |i| d.chunk(i);
    let dobj = Objective {
        chunks: 2,
        loss: &dl,
    };
    let (m, se) = sh::hutchinson_trace(&dobj, &[d.w.shallow_clone()], 10, 1).unwrap();
    assert!(rel(m, tr) < 1e-12 && se < 1e-12, "{m} ± {se}");
    assert!(sh::hutchinson_trace(&dobj, &[d.w.shallow_clone()], 1, 1).is_err());
}

#[test]
fn eps_sharpness_of_a_diagonal_quadratic_is_its_box_corner() {
    single_threaded();
    let a = [2.0, 0.5, 0.0, 1.0, 3.0];
    let b = [0.0, 0.3, -1.0, 0.2, 0.0];
    let w = [1.0, -2.0, 0.5, 0.0, -0.25];
    let q = Quadratic::new(f64s(&a).diag(0), &b, &w);
    let loss = |i| q.chunk(i);
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let params = [q.w.shallow_clone()];
    let before = q.w.detach().copy();
    let eps = 0.05;
    // Separable and convex per coordinate: each coordinate's maximum is one end of its interval.
    let mut corner = w.to_vec();
    for i in 0..w.len() {
        let r = eps * (w[i].abs() + 1.0);
        let f = |d: f64| 0.5 * a[i] * (w[i] + d).powi(2) + b[i] * d;
        corner[i] = w[i] + if f(r) >= f(-r) { r } else { -r };
    }
    let base = q.value_at(&w);
    let expected = (q.value_at(&corner) - base) / (1.0 + base) * 100.0;
    let s = sh::eps_sharpness(&obj, &params, eps, 10).unwrap();
    assert!(rel(s, expected) < 1e-9, "{s} vs {expected}");
    assert!(q.w.equal(&before), "parameters changed");
    assert!(q.w.requires_grad());
    // One step of 2.5 radii lands on the corner too.
    let s1 = sh::eps_sharpness(&obj, &params, eps, 1).unwrap();
    assert!(rel(s1, expected) < 1e-9, "{s1} vs {expected}");
    assert!(q.w.equal(&before), "parameters changed");
    assert_eq!(sh::eps_sharpness(&obj, &params, 0.0, 5).unwrap(), 0.0);
}

#[test]
fn errors_instead_of_panics() {
    single_threaded();
    let q = Quadratic::new(f64s(&[1.0, 2.0]).diag(0), &[0.0; 2], &[1.0; 2]);
    let loss = |i| q.chunk(i);
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let none = Objective {
        chunks: 0,
        loss: &loss,
    };
    let p = [q.w.shallow_clone()];
    assert!(sh::lambda_max(&obj, &[], 10, 0).is_err());
    assert!(sh::lambda_max(&none, &p, 10, 0).is_err());
    assert!(sh::hutchinson_trace(&none, &p, 10, 0).is_err());
    assert!(sh::eps_sharpness(&obj, &[], 1e-3, 3).is_err());
    assert!(sh::scale_invariant_sharpness(&none, &p, 10, 0).is_err());
    let frozen = [f64s(&[1.0, 1.0])];
    let e = sh::lambda_max(&obj, &frozen, 10, 0).unwrap_err();
    assert!(format!("{e:#}").contains("does not require grad"), "{e:#}");
    // Finite at the start, NaN once the ascent has moved the parameters: an error, and the
    // parameters are back where they were.
    let nan_when_moved = |_| {
        let l = q.w.square().sum(Kind::Double);
        if q.w.equal(&f64s(&[1.0, 1.0])) {
            l
        } else {
            l * f64::NAN
        }
    };
    let bad = Objective {
        chunks: 1,
        loss: &nan_when_moved,
    };
    let e = sh::eps_sharpness(&bad, &p, 1e-3, 3).unwrap_err();
    assert!(format!("{e:#}").contains("not finite"), "{e:#}");
    assert!(q.w.equal(&f64s(&[1.0, 1.0])), "restored after an error");
    let vector = |_| &q.w * 1.0;
    let not_scalar = Objective {
        chunks: 1,
        loss: &vector,
    };
    let e = sh::hutchinson_trace(&not_scalar, &p, 4, 0).unwrap_err();
    assert!(format!("{e:#}").contains("not a scalar"), "{e:#}");
}

#[test]
fn distance_and_frobenius_sum_small_cases() {
    single_threaded();
    let a = [
        f64s(&[1.0, 2.0]),
        f64s(&[3.0, 4.0, 0.0, 0.0]).reshape([2, 2]),
    ];
    let b = [
        f64s(&[1.0, 0.0]),
        Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)),
    ];
    // (0² + 2²) + (3² + 4²) = 29
    assert!((sh::distance(&a, &b).unwrap() - 29f64.sqrt()).abs() < 1e-12);
    assert_eq!(sh::distance(&a, &a).unwrap(), 0.0);
    assert_eq!(sh::frobenius_sum(&a), 30.0);
    assert_eq!(sh::frobenius_sum(&[]), 0.0);
    let e = sh::distance(&a, &b[..1]).unwrap_err();
    assert!(e.to_string().contains("2 tensors against 1"), "{e}");
    let c = [f64s(&[1.0, 0.0]), f64s(&[0.0; 4])];
    let e = sh::distance(&a, &c).unwrap_err();
    assert!(e.to_string().contains("tensor 1"), "{e}");
}

#[test]
fn spectral_norms_match_pytorch() {
    single_threaded();
    let dir = tempfile::tempdir().unwrap();
    let ws = seeded(4, || {
        [
            Tensor::randn([8, 3, 3, 3], (Kind::Float, Device::Cpu)),
            Tensor::randn([10, 7], (Kind::Double, Device::Cpu)),
            Tensor::randn([5, 4, 1, 1], (Kind::Float, Device::Cpu)) * 3.0,
            Tensor::randn([16, 8, 3, 3], (Kind::Float, Device::Cpu)) * 0.1,
        ]
    });
    for (i, w) in ws.iter().enumerate() {
        w.write_npy(dir.path().join(format!("w{i}.npy"))).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    repro_testkit::run_script("spectral_norm.py", &[d, &ws.len().to_string()]);
    let norms = Tensor::read_npy(dir.path().join("norms.npy")).unwrap();
    let norms: Vec<f64> = Vec::try_from(&norms).unwrap();
    assert_eq!(norms.len(), ws.len() + 1);
    let py_w = Tensor::read_npy(dir.path().join("py_w.npy")).unwrap();
    assert_eq!(py_w.size(), [6, 2, 3, 3]);
    let all: Vec<&Tensor> = ws.iter().chain([&py_w]).collect();
    for (i, (w, &n)) in all.iter().zip(&norms).enumerate() {
        let s = sh::spectral_norm(w, 2000, 11);
        assert!(rel(s, n) < 1e-6, "weight {i}: {s} vs PyTorch {n}");
        assert_eq!(s, sh::spectral_norm(w, 2000, 11));
    }
    let owned: Vec<Tensor> = all.iter().map(|t| t.shallow_clone()).collect();
    let lsp = sh::log_spectral_product(&owned, 2000, 11);
    let expected: f64 = norms.iter().map(|n| n.ln()).sum();
    assert!((lsp - expected).abs() < 1e-5, "{lsp} vs {expected}");
    // Exact small cases: a diagonal and a rank-one matrix.
    assert!(
        rel(
            sh::spectral_norm(&f64s(&[3.0, -7.0, 2.0]).diag(0), 100, 0),
            7.0
        ) < 1e-9
    );
    let u = f64s(&[1.0, 2.0, 2.0]);
    let v = f64s(&[0.0, 3.0, 4.0]);
    assert!(rel(sh::spectral_norm(&u.outer(&v), 100, 0), 15.0) < 1e-12);
    assert_eq!(
        sh::spectral_norm(&Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)), 10, 0),
        0.0
    );
}

/// conv(no bias)→BN→ReLU→conv(no bias)→BN→ReLU→avgpool→linear, f64, BN in eval mode with
/// running statistics from a few train-mode passes.
struct Net {
    vs: nn::VarStore,
    convs: [nn::Conv2D; 2],
    bns: [nn::BatchNorm; 2],
    fc: nn::Linear,
}

impl Net {
    fn new() -> Net {
        seeded(5, Net::build)
    }

    fn build() -> Net {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let cc = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let bc = nn::BatchNormConfig {
            eps: 1e-12,
            momentum: 0.5,
            ..Default::default()
        };
        let convs = [
            nn::conv2d(&root / "c1", 3, 4, 3, cc),
            nn::conv2d(&root / "c2", 4, 6, 3, cc),
        ];
        let bns = [
            nn::batch_norm2d(&root / "bn1", 4, bc),
            nn::batch_norm2d(&root / "bn2", 6, bc),
        ];
        let fc = nn::linear(&root / "fc", 6, 5, Default::default());
        vs.double();
        let net = Net { vs, convs, bns, fc };
        tch::no_grad(|| {
            for bn in &net.bns {
                let n = bn.ws.as_ref().unwrap().size()[0];
                bn.ws
                    .as_ref()
                    .unwrap()
                    .detach()
                    .copy_(&(Tensor::rand([n], (Kind::Double, Device::Cpu)) + 0.5));
                bn.bs
                    .as_ref()
                    .unwrap()
                    .detach()
                    .copy_(&(Tensor::randn([n], (Kind::Double, Device::Cpu)) * 0.3));
            }
            for _ in 0..4 {
                let x = Tensor::randn([8, 3, 6, 6], (Kind::Double, Device::Cpu)) * 2.0 + 0.5;
                let _ = net.forward_t(&x, true);
            }
        });
        net
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.convs[0])
            .apply_t(&self.bns[0], train)
            .relu()
            .apply(&self.convs[1])
            .apply_t(&self.bns[1], train)
            .relu()
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.fc)
    }

    /// Scale the BN-preceded weights by c, with the running statistics that training would
    /// have tracked for them (mean × c, variance × c²).
    fn scale(&self, c: f64) {
        tch::no_grad(|| {
            for (conv, bn) in self.convs.iter().zip(&self.bns) {
                let _ = conv.ws.detach().g_mul_scalar_(c);
                let _ = bn.running_mean.shallow_clone().g_mul_scalar_(c);
                let _ = bn.running_var.shallow_clone().g_mul_scalar_(c * c);
            }
        });
    }

    fn si(&self) -> Vec<Tensor> {
        self.convs.iter().map(|c| c.ws.shallow_clone()).collect()
    }
}

fn data() -> Vec<(Tensor, Tensor)> {
    seeded(6, || {
        (0..2)
            .map(|_| {
                (
                    Tensor::randn([6, 3, 6, 6], (Kind::Double, Device::Cpu)) + 0.5,
                    Tensor::randint(5, [6], (Kind::Int64, Device::Cpu)),
                )
            })
            .collect()
    })
}

#[test]
fn scale_invariant_sharpness_does_not_change_with_the_scale_of_bn_preceded_weights() {
    single_threaded();
    let net = Net::new();
    let batches = data();
    let loss = |i: usize| {
        let (x, y) = &batches[i];
        net.forward_t(x, false).cross_entropy_for_logits(y) * 0.5
    };
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let value = |o: &Objective| {
        (0..o.chunks)
            .map(|i| (o.loss)(i).double_value(&[]))
            .sum::<f64>()
    };
    let si = net.si();
    let (l0, lam0, s0) = (
        value(&obj),
        sh::lambda_max(&obj, &si, 300, 9).unwrap(),
        sh::scale_invariant_sharpness(&obj, &si, 300, 9).unwrap(),
    );
    let f0 = sh::frobenius_sum(&si);
    assert!(lam0 > 0.0 && s0 > 0.0, "λ {lam0}, S_inv {s0}");
    // The trace reading: tr(H_si)·‖w‖², with the same probes before and after scaling.
    let (tr0, _) = sh::hutchinson_trace(&obj, &si, 8, 3).unwrap();
    let t0 = sh::scale_invariant_trace(&obj, &si, 8, 3).unwrap();
    assert!(rel(t0, tr0 * f0) < 1e-12, "tr·‖w‖² {t0} vs {tr0}·{f0}");
    let c = 4.0;
    net.scale(c);
    let (l1, lam1, s1) = (
        value(&obj),
        sh::lambda_max(&obj, &si, 300, 9).unwrap(),
        sh::scale_invariant_sharpness(&obj, &si, 300, 9).unwrap(),
    );
    assert!(rel(sh::frobenius_sum(&si), c * c * f0) < 1e-12);
    assert!(rel(l1, l0) < 1e-9, "loss {l0} → {l1}");
    assert!(rel(lam1, lam0 / (c * c)) < 1e-6, "λ {lam0} → {lam1}");
    assert!(rel(s1, s0) < 1e-6, "S_inv {s0} → {s1}");
    let (tr1, _) = sh::hutchinson_trace(&obj, &si, 8, 3).unwrap();
    assert!(rel(tr1, tr0 / (c * c)) < 1e-6, "tr {tr0} → {tr1}");
    let t1 = sh::scale_invariant_trace(&obj, &si, 8, 3).unwrap();
    assert!(rel(t1, t0) < 1e-6, "tr·‖w‖² {t0} → {t1}");
    // Every parameter of the net requires grad; only the given ones are differentiated.
    assert_eq!(net.vs.trainable_variables().len(), 2 + 2 * 2 + 2);
}

#[test]
fn curvature_of_a_bn_net_matches_its_dense_hessian() {
    single_threaded();
    let net = Net::new();
    let batches = data();
    let loss = |i: usize| {
        let (x, y) = &batches[i];
        net.forward_t(x, false).cross_entropy_for_logits(y) * 0.5
    };
    let obj = Objective {
        chunks: 2,
        loss: &loss,
    };
    let w = net.convs[0].ws.shallow_clone();
    let n = w.numel() as i64;
    // The dense Hessian w.r.t. the first conv's weights, row by row, on the whole batch.
    let full = || loss(0) + loss(1);
    let g = Tensor::run_backward(&[full()], &[&w], true, true)
        .remove(0)
        .flatten(0, -1);
    let rows: Vec<Tensor> = (0..n)
        .map(|k| {
            Tensor::run_backward(&[g.get(k)], &[&w], true, false)
                .remove(0)
                .flatten(0, -1)
        })
        .collect();
    let h = Tensor::stack(&rows, 0);
    let asym = (&h - h.tr()).abs().max().double_value(&[]);
    let scale = h.abs().max().double_value(&[]);
    assert!(
        asym < 1e-6 * scale,
        "Hessian asymmetric by {asym} (largest entry {scale})"
    );
    let h = (&h + h.tr()) * 0.5;
    let eig: Vec<f64> = Vec::try_from(&h.linalg_eigvalsh("L")).unwrap();
    let top = eig
        .iter()
        .copied()
        .fold(0.0, |m: f64, e| if e.abs() > m.abs() { e } else { m });
    let trace: f64 = eig.iter().sum();
    let params = [w.shallow_clone()];
    let l = sh::lambda_max(&obj, &params, 1000, 2).unwrap();
    assert!(rel(l, top) < 1e-3, "λ_max {l} vs dense {top}");
    let (m, se) = sh::hutchinson_trace(&obj, &params, 200, 2).unwrap();
    assert!(
        (m - trace).abs() < 4.0 * se,
        "trace {m} ± {se} vs dense {trace}"
    );
}
