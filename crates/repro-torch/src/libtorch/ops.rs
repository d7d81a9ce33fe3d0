//! Tensor ops tch lacks, through `shim.cpp`: `addcmul_` and `addcdiv_` with their scalar `value`,
//! as torch.optim calls them (same kernels, same bits as torch, one full-size pass fewer than
//! scaling an operand first), and unsetting a gradient.

use std::ffi::{CStr, c_char, c_void};
use std::os::raw::c_int;

use tch::Tensor;

unsafe extern "C" {
    fn repro_addcmul_(
        this: *mut c_void,
        t1: *const c_void,
        t2: *const c_void,
        value: f64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn repro_addcdiv_(
        this: *mut c_void,
        t1: *const c_void,
        t2: *const c_void,
        value: f64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn repro_clear_grad(t: *const c_void);
}

type Op = unsafe extern "C" fn(
    *mut c_void,
    *const c_void,
    *const c_void,
    f64,
    *mut c_char,
    usize,
) -> c_int;

fn call(op: Op, name: &str, this: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) {
    let mut err = [0 as c_char; 512];
    // SAFETY: the three pointers are live at::Tensors for the duration of the call; the shim
    // writes a NUL-terminated message into `err` on failure.
    let rc = unsafe {
        op(
            this.as_mut_ptr().cast(),
            t1.as_ptr().cast(),
            t2.as_ptr().cast(),
            value,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if rc != 0 {
        // As tch's own in-place ops do on bad operands (mismatched shapes or devices).
        // SAFETY: NUL-terminated by the shim.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        panic!("{name}: {msg}");
    }
}

/// `this += value · t1 · t2` in place (torch's `addcmul_(t1, t2, value=value)`).
pub fn addcmul_(this: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) {
    call(repro_addcmul_, "addcmul_", this, t1, t2, value);
}

/// `this += value · t1 / t2` in place (torch's `addcdiv_(t1, t2, value=value)`).
pub fn addcdiv_(this: &mut Tensor, t1: &Tensor, t2: &Tensor, value: f64) {
    call(repro_addcdiv_, "addcdiv_", this, t1, t2, value);
}

/// Unset `t`'s gradient (torch's `zero_grad(set_to_none=True)` for one tensor): the next backward
/// writes its gradient into a fresh tensor instead of adding it to a zeroed one.
pub fn clear_grad(t: &Tensor) {
    // SAFETY: `t` is a live at::Tensor; resetting its gradient cannot fail.
    unsafe { repro_clear_grad(t.as_ptr().cast()) }
}
