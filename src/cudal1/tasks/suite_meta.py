"""Facts about the built-in suite that the task files themselves do not state.

The task files are plain KernelBench-format programs; what follows is kept apart from them so
that a policy reading a task sees only the program, as it would for any KernelBench task.
"""

from __future__ import annotations

# Level-2 tasks whose output simplifies exactly, for every input, to something much cheaper
# than the program as written. The optimizer has a true shortcut to find here; the tests
# (tests/test_tasks_suite.py) check each claim on random inputs with negative and large values.
ALGEBRAIC_SHORTCUT_TASKS: dict[str, str] = {
    "level2/3_Gemm_GELU_Sum_Softmax": "softmax over a dimension of size 1 (after the keepdim sum): the output is all ones",
    "level2/6_Gemm_Max_SubtractMean_GELU": "the mean over the size-1 dimension left by the keepdim max equals the max: "
    "GELU(0) gives all zeros",
    "level2/9_Conv2d_GroupNorm_Min_Clamp_Scale": "min(x, 0) lies in (-inf, 0], clamped to [0, 1] it is 0: all zeros",
    "level2/12_Gemm_Sum_LogSumExp_LeakyReLU": "logsumexp over a size-1 dimension is the identity, and the sum over "
    "features of a linear layer is x @ W.sum(0) + b.sum(): one matrix-vector product",
    "level2/15_Conv3d_ChannelMean_Max_Sigmoid": "max over a size-1 dimension is the identity, and the channel mean of "
    "a convolution is one convolution with the mean filter and mean bias",
}
