"""A kernel that holds every SM of the device for a set time: the last part of a timed call's lead-in.

Work a candidate puts on a side stream starts as soon as an SM has room. Behind a lead-in that
leaves SMs free (the spacer's matrix products fill about half of an H200's SMs), that work runs
before the start event and its time goes unmeasured. This kernel's blocks take every thread slot
of every SM (2048 threads on an H200's SM: two blocks of 1024) and keep them until the hold's
time is up, so no block of any other kernel can be resident while it runs: the side stream's
first block starts when the hold ends, which is when the start event is recorded.

It is PTX loaded through the driver API (libcuda, which torch has loaded already): no compiler
runs, no cache file is read (a candidate can write the judge's compiler caches in its build
folder), and the driver functions are looked up once, when the harness is imported. The hold
spins on the GPU's global timer, with fused multiply-adds in the loop so the SMs stay as busy as
under the spacer's products.
"""

from __future__ import annotations

import ctypes

# Two products per step on a value that never becomes 0 (it grows by about 2 a step from 1), kept
# live by a store that never happens.
PTX = rb"""
.version 7.0
.target sm_70
.address_size 64

.visible .entry cudal1_hold(.param .u64 hold_ns, .param .u64 sink)
{
    .reg .pred %p<3>;
    .reg .b64 %rd<6>;
    .reg .f32 %f<3>;

    ld.param.u64 %rd1, [hold_ns];
    ld.param.u64 %rd2, [sink];
    mov.u64 %rd3, %globaltimer;
    add.u64 %rd4, %rd3, %rd1;
    mov.f32 %f1, 0f3F800000;
    mov.f32 %f2, 0f3F7FFFFF;
SPIN:
    fma.rn.f32 %f1, %f1, %f2, %f2;
    fma.rn.f32 %f1, %f1, %f2, %f2;
    mov.u64 %rd5, %globaltimer;
    setp.lt.u64 %p1, %rd5, %rd4;
    @%p1 bra SPIN;
    setp.eq.f32 %p2, %f1, 0f00000000;
    @%p2 st.global.f32 [%rd2], %f1;
    ret;
}
"""
ENTRY = b"cudal1_hold"
BLOCK = 1024  # threads a block (the most a block may have)


class HoldError(RuntimeError):
    """The hold kernel cannot run here (no driver library, a PTX the driver refuses, or an SM
    that would keep room for another kernel's blocks)."""


def _driver():
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    fns = {}
    for name in ("cuModuleLoadData", "cuModuleGetFunction", "cuOccupancyMaxActiveBlocksPerMultiprocessor",
                 "cuLaunchKernel", "cuGetErrorString"):
        fns[name] = getattr(lib, name)
    fns["cuLaunchKernel"].argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                                      ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    return fns


# Looked up when the harness is imported, before any candidate code runs in the process.
_DRIVER = _driver()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        msg = ctypes.c_char_p()
        _DRIVER["cuGetErrorString"](rc, ctypes.byref(msg))
        raise HoldError(f"{what} failed: CUDA error {rc} ({(msg.value or b'?').decode()})")


class Hold:
    """The hold kernel loaded into the current CUDA context, with its grid for ``sms`` SMs of
    ``threads_per_sm`` threads each. Create it after the context exists (torch's primary context
    is current once torch has used the device on this thread)."""

    def __init__(self, sms: int, threads_per_sm: int, sink_ptr: int):
        if _DRIVER is None:
            raise HoldError("libcuda.so.1 cannot be loaded")
        if threads_per_sm % BLOCK:
            raise HoldError(f"an SM of {threads_per_sm} threads cannot be filled with blocks of {BLOCK}")
        self.module = ctypes.c_void_p()
        _check(_DRIVER["cuModuleLoadData"](ctypes.byref(self.module), ctypes.c_char_p(PTX)), "loading the hold's PTX")
        self.function = ctypes.c_void_p()
        _check(_DRIVER["cuModuleGetFunction"](ctypes.byref(self.function), self.module, ctypes.c_char_p(ENTRY)),
               "finding the hold's entry")
        per_sm = threads_per_sm // BLOCK
        fits = ctypes.c_int(0)
        _check(_DRIVER["cuOccupancyMaxActiveBlocksPerMultiprocessor"](ctypes.byref(fits), self.function, BLOCK,
                                                                       ctypes.c_size_t(0)), "the hold's occupancy")
        if fits.value < per_sm:
            raise HoldError(f"only {fits.value} of the hold's {per_sm} blocks fit on an SM: it would leave room")
        self.grid = sms * per_sm
        self.ns = ctypes.c_uint64(0)
        self.sink = ctypes.c_uint64(sink_ptr)
        self.params = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.byref(self.ns), ctypes.c_void_p),
                                            ctypes.cast(ctypes.byref(self.sink), ctypes.c_void_p))

    def launch(self, stream: int, ms: float) -> None:
        """Queue the hold on ``stream`` (a cudaStream_t handle, 0 for the legacy stream) for ``ms``."""
        self.ns.value = max(0, int(ms * 1e6))
        _check(_DRIVER["cuLaunchKernel"](self.function, self.grid, 1, 1, BLOCK, 1, 1, 0, ctypes.c_void_p(stream),
                                         self.params, None), "launching the hold")
