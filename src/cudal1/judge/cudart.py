"""Small ctypes access to the CUDA runtime already loaded by torch (persisting-L2 controls)."""

from __future__ import annotations

import ctypes
import functools

CUDA_LIMIT_PERSISTING_L2_CACHE_SIZE = 0x06


@functools.lru_cache(maxsize=1)
def _lib():
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "libcudart" in line:
                    paths.append(line.split()[-1])
    except OSError:
        pass
    for name in dict.fromkeys(paths + ["libcudart.so", "libcudart.so.13", "libcudart.so.12"]):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def persisting_l2_limit() -> int | None:
    """Bytes of L2 set aside for persisting accesses (None when the runtime is not reachable)."""
    lib = _lib()
    if lib is None:
        return None
    value = ctypes.c_size_t(0)
    if lib.cudaDeviceGetLimit(ctypes.byref(value), CUDA_LIMIT_PERSISTING_L2_CACHE_SIZE) != 0:
        return None
    return int(value.value)


def reset_persisting_l2() -> bool:
    """Drop persisting L2 lines and the set-aside, so the L2 flush between calls is complete."""
    lib = _lib()
    if lib is None:
        return False
    ok = lib.cudaCtxResetPersistingL2Cache() == 0
    ok = lib.cudaDeviceSetLimit(CUDA_LIMIT_PERSISTING_L2_CACHE_SIZE, ctypes.c_size_t(0)) == 0 and ok
    return ok
