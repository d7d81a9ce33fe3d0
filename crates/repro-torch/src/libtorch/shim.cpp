// Global ATen switches that tch does not expose: deterministic algorithms and cuDNN, the
// oneDNN (mkldnn) CPU backend, whose kernel choice depends on the CPU and breaks bitwise
// reproducibility across machines, and TF32 in cuBLAS and cuDNN.
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

// TF32 for cuBLAS matmuls and cuDNN convolutions (and RNNs). These two setters write both the
// legacy flags and the per-op fp32 precisions of the newer API (CUDA/MATMUL ieee|tf32,
// CUDA/CONV and CUDA/RNN tf32|none), so the state stays consistent for every reader; setting
// only the newer per-op precisions would leave the legacy matmul flag behind, and libtorch
// refuses to answer allowTF32CuBLAS() over such a mix.
void repro_set_tf32(int on) {
  at::globalContext().setAllowTF32CuBLAS(on != 0);
  at::globalContext().setAllowTF32CuDNN(on != 0);
}

int repro_tf32_cublas() { return at::globalContext().allowTF32CuBLAS() ? 1 : 0; }

int repro_tf32_cudnn() {
  return at::globalContext().allowTF32CuDNN(at::Float32Op::CONV) ? 1 : 0;
}
}

// bf16 autocast as torch.autocast(device_type, dtype=torch.bfloat16) enters and leaves it:
// enable the device's autocast, set its dtype, count the nesting; on leaving, drop the cast
// cache when the outermost region ends and restore what was there before.
#include <ATen/autocast_mode.h>

extern "C" {

void repro_autocast_enter(int cuda, int* prev_enabled, int* prev_dtype) {
  auto dt = cuda ? at::kCUDA : at::kCPU;
  *prev_enabled = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
  *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(dt));
  at::autocast::set_autocast_enabled(dt, true);
  at::autocast::set_autocast_dtype(dt, at::kBFloat16);
  at::autocast::increment_nesting();
}

void repro_autocast_exit(int cuda, int prev_enabled, int prev_dtype) {
  auto dt = cuda ? at::kCUDA : at::kCPU;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(dt, prev_enabled != 0);
  at::autocast::set_autocast_dtype(dt, static_cast<at::ScalarType>(prev_dtype));
}

int repro_autocast_enabled(int cuda) {
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU) ? 1 : 0;
}
}

// Channels-last (NHWC) memory format for 4-d tensors, which tch does not wrap.
extern "C" {

// Tensors that are not 4-d come back as they are (a new handle to the same tensor).
void* repro_channels_last(const void* t) {
  const auto& x = *static_cast<const at::Tensor*>(t);
  if (x.dim() != 4) return new at::Tensor(x);
  return new at::Tensor(x.contiguous(at::MemoryFormat::ChannelsLast));
}

int repro_is_channels_last(const void* t) {
  const auto& x = *static_cast<const at::Tensor*>(t);
  return x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) ? 1 : 0;
}
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

// In-place ops whose scalar argument tch does not expose (torch.optim passes it: `addcmul_(a, b,
// value=…)`, `addcdiv_(a, b, value=…)`; without it the scaled operand is materialised first, one
// more full-size pass per call), and unsetting a gradient (torch's `zero_grad(set_to_none=True)`).
// Wrapped by runtime/ops.rs. Each op returns 0 on success, else 1 with the message in `err`.
template <typename Op>
static int repro_pointwise(Op op, void* self, const void* t1, const void* t2, double value,
                           char* err, size_t len) {
  try {
    op(*static_cast<at::Tensor*>(self), *static_cast<const at::Tensor*>(t1),
       *static_cast<const at::Tensor*>(t2), value);
    return 0;
  } catch (const std::exception& e) {
    repro_copy_error(e, err, len);
    return 1;
  }
}

extern "C" {

int repro_addcmul_(void* self, const void* t1, const void* t2, double value, char* err,
                   size_t len) {
  return repro_pointwise([](at::Tensor& s, const at::Tensor& a, const at::Tensor& b,
                            double v) { s.addcmul_(a, b, v); },
                         self, t1, t2, value, err, len);
}

int repro_addcdiv_(void* self, const void* t1, const void* t2, double value, char* err,
                   size_t len) {
  return repro_pointwise([](at::Tensor& s, const at::Tensor& a, const at::Tensor& b,
                            double v) { s.addcdiv_(a, b, v); },
                         self, t1, t2, value, err, len);
}

// Unset the gradient of `t` (a leaf): the next backward writes a fresh one. Cannot fail.
void repro_clear_grad(const void* t) { static_cast<const at::Tensor*>(t)->mutable_grad().reset(); }
}
