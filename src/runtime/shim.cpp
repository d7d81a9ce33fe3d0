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

// The state of libtorch's default generator of a device (index < 0: the CPU), for checkpoints.
// Both return 0 on success; on failure the message is copied into `err`.
#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <cstring>
#include <mutex>

static at::Generator repro_generator(int index) {
  return index < 0 ? at::detail::getDefaultCPUGenerator()
                   : at::globalContext().defaultGenerator(at::Device(at::kCUDA, index));
}

static void repro_copy_error(const std::exception& e, char* err, size_t len) {
  if (len == 0) return;
  std::strncpy(err, e.what(), len - 1);
  err[len - 1] = '\0';
}

extern "C" {

int repro_get_rng_state(int index, void** out, char* err, size_t len) {
  try {
    auto gen = repro_generator(index);
    std::lock_guard<std::mutex> lock(gen.mutex());
    *out = new at::Tensor(gen.get_state());
    return 0;
  } catch (const std::exception& e) {
    repro_copy_error(e, err, len);
    return 1;
  }
}

int repro_set_rng_state(int index, const void* state, char* err, size_t len) {
  try {
    auto gen = repro_generator(index);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*static_cast<const at::Tensor*>(state));
    return 0;
  } catch (const std::exception& e) {
    repro_copy_error(e, err, len);
    return 1;
  }
}
}
