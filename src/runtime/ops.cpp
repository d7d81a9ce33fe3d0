// In-place tensor ops whose scalar argument tch does not expose. torch.optim passes it
// (`addcmul_(a, b, value=…)`, `addcdiv_(a, b, value=…)`); without it the scaled operand has to be
// materialised first: one more full-size pass and temporary per call. And unsetting a gradient
// (torch's `zero_grad(set_to_none=True)`), which tch cannot do.
#include <ATen/core/Tensor.h>
#include <cstring>

static void repro_ops_error(const std::exception& e, char* err, size_t len) {
  if (len == 0) return;
  std::strncpy(err, e.what(), len - 1);
  err[len - 1] = '\0';
}

extern "C" {

// self += value * t1 * t2. Returns 0 on success; on failure copies the message into `err`.
int repro_addcmul_(void* self, const void* t1, const void* t2, double value, char* err,
                   size_t len) {
  try {
    static_cast<at::Tensor*>(self)->addcmul_(*static_cast<const at::Tensor*>(t1),
                                             *static_cast<const at::Tensor*>(t2), value);
    return 0;
  } catch (const std::exception& e) {
    repro_ops_error(e, err, len);
    return 1;
  }
}

// self += value * t1 / t2.
int repro_addcdiv_(void* self, const void* t1, const void* t2, double value, char* err,
                   size_t len) {
  try {
    static_cast<at::Tensor*>(self)->addcdiv_(*static_cast<const at::Tensor*>(t1),
                                             *static_cast<const at::Tensor*>(t2), value);
    return 0;
  } catch (const std::exception& e) {
    repro_ops_error(e, err, len);
    return 1;
  }
}

// Unset the gradient of `t` (a leaf): the next backward writes a fresh one. Cannot fail.
void repro_clear_grad(const void* t) { static_cast<const at::Tensor*>(t)->mutable_grad().reset(); }
}
