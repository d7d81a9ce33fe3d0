// Global ATen switches that tch does not expose: deterministic algorithms and cuDNN, and the
// oneDNN (mkldnn) CPU backend, whose kernel choice depends on the CPU and breaks bitwise
// reproducibility across machines.
#include <ATen/Context.h>

extern "C" {

void repro_set_deterministic(int on) {
  at::globalContext().setDeterministicCuDNN(on != 0);
  at::globalContext().setBenchmarkCuDNN(false);
  at::globalContext().setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
}

int repro_deterministic_algorithms() {
  return at::globalContext().deterministicAlgorithms() ? 1 : 0;
}

void repro_set_mkldnn(int on) { at::globalContext().setUserEnabledMkldnn(on != 0); }

int repro_mkldnn_enabled() { return at::globalContext().userEnabledMkldnn() ? 1 : 0; }
}
