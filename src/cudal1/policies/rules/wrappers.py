"""Whole-forward wrappers: CUDA graph replay, torch.compile, channels_last, lower precision.

Each wrapper is a method of ``ModelNew`` that calls the next one inward; the innermost is
``_forward_impl`` (the reference's forward, or a rewritten graph). ``compose`` writes the
chain and returns what `codegen.assemble` needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "reduce-overhead")

CLONE_OUTPUTS = '''
def _clone_outputs(out):
    """Fresh copies of a graph's static outputs: the next replay overwrites those buffers,
    and a caller may still hold the tensors this call returns."""
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(_clone_outputs(o) for o in out)
    return out
'''

INPUT_KEY = '''
def _cuda_input_key(args):
    """What a captured graph is valid for: each tensor's shape, dtype and device, each other
    argument's value. None when some tensor is not on a CUDA device (then run eagerly)."""
    key = []
    for a in args:
        if isinstance(a, torch.Tensor):
            if not a.is_cuda:
                return None
            key.append((tuple(a.shape), a.dtype, a.device))
        else:
            key.append(("value", a))
    return tuple(key)
'''

CHANNELS_LAST = '''
def _to_channels_last(t):
    """NHWC (4-D) or NDHWC (5-D) memory layout; values are unchanged."""
    if isinstance(t, torch.Tensor) and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if isinstance(t, torch.Tensor) and t.dim() == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    return t


def _weights_to_channels_last(module):
    """Convolution weights in the layout cuDNN's fastest NHWC kernels read."""
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() in (4, 5):
                p.data = _to_channels_last(p.data)
'''


@dataclass
class Composed:
    imports: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)
    init_lines: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)


def _tensor_reassignments(params: list[str], fn: str) -> list[str]:
    return [f"    {p} = {fn}({p})" for p in params]


def compose(wrappers: list[tuple[str, ...]], params: str, call: str, plain_params: list[str]) -> Composed:
    """Methods for ``wrappers`` (innermost first), e.g. ``[("channels_last",), ("cudagraph",)]``.

    The innermost callee is ``self._forward_impl``; the outermost wrapper is ``forward``."""
    c = Composed()
    inner = "_forward_impl"
    for i, w in enumerate(wrappers):
        kind = w[0]
        name = "forward" if i == len(wrappers) - 1 else f"_forward_{kind.replace('-', '_')}"
        if kind == "channels_last":
            c.helpers.append(CHANNELS_LAST)
            c.init_lines += [
                "# cuDNN picks the fastest convolution algorithm per shape (a global flag; the judge reports it)",
                "torch.backends.cudnn.benchmark = True",
                "self._channels_last_ready = False",
            ]
            body = [
                f"def {name}(self, {params}):",
                '    """Run the convolutions in channels_last layout (weights converted once, on first use)."""',
                "    if not self._channels_last_ready:",
                "        _weights_to_channels_last(self)",
                "        self._channels_last_ready = True",
                *_tensor_reassignments(plain_params, "_to_channels_last"),
                f"    return self.{inner}({call})",
            ]
            c.methods.append("\n".join(body))
        elif kind == "compile":
            mode = w[1]
            attr = "_compiled_forward" if i == 0 or "compile" not in [x[0] for x in wrappers[:i]] else f"_compiled_{i}"
            c.init_lines.append(f'self.{attr} = torch.compile(self.{inner}, mode="{mode}", dynamic=False)')
            if mode == "reduce-overhead":
                c.helpers.append(CLONE_OUTPUTS)
                body = [
                    f"def {name}(self, {params}):",
                    '    """torch.compile with CUDA graphs; outputs are cloned because the next replay reuses their memory."""',
                    "    torch.compiler.cudagraph_mark_step_begin()",
                    f"    return _clone_outputs(self.{attr}({call}))",
                ]
            else:
                body = [
                    f"def {name}(self, {params}):",
                    f'    """torch.compile(mode="{mode}") of the forward below."""',
                    f"    return self.{attr}({call})",
                ]
            c.methods.append("\n".join(body))
        elif kind == "cudagraph":
            c.helpers += [CLONE_OUTPUTS, INPUT_KEY]
            c.init_lines += [
                "self._graph = None  # torch.cuda.CUDAGraph of the whole forward, once captured",
                "self._graph_key = None  # the shapes/dtypes/devices it was captured for",
                "self._static_inputs = None",
                "self._static_output = None",
            ]
            replay = [
                f"def {name}(self, {params}):",
                '    """Replay one CUDA graph of the whole forward: one launch instead of one per kernel."""',
                f"    args = ({call}{',' if call and ',' not in call else ''})",
                "    key = _cuda_input_key(args)",
                "    if key is None:  # inputs not on a GPU: nothing to capture",
                f"        return self.{inner}(*args)",
                "    if key != self._graph_key:  # first call, or new shapes/dtypes/devices: capture again",
                "        self._capture(args, key)",
                "    for static, value in zip(self._static_inputs, args):",
                "        if isinstance(static, torch.Tensor):",
                "            static.copy_(value)",
                "    self._graph.replay()",
                "    return _clone_outputs(self._static_output)",
            ]
            capture = [
                "def _capture(self, args, key):",
                '    """Capture the forward into a graph with static input buffers (PyTorch\'s documented idiom:',
                '    warm up on a side stream that the current stream then waits for, then capture)."""',
                "    static_inputs = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)",
                "    warmup = torch.cuda.Stream()",
                "    warmup.wait_stream(torch.cuda.current_stream())",
                "    with torch.cuda.stream(warmup):",
                "        for _ in range(3):  # library handles, autotuning and lazy init happen outside the capture",
                f"            self.{inner}(*static_inputs)",
                "    torch.cuda.current_stream().wait_stream(warmup)",
                "    graph = torch.cuda.CUDAGraph()",
                "    with torch.cuda.graph(graph):",
                f"        static_output = self.{inner}(*static_inputs)",
                "    self._graph, self._graph_key = graph, key",
                "    self._static_inputs, self._static_output = static_inputs, static_output",
            ]
            c.methods += ["\n".join(replay), "\n".join(capture)]
        elif kind == "tf32":
            c.init_lines += [
                "# LOWER PRECISION: TF32 tensor cores for fp32 matmuls and convolutions (10-bit mantissa inputs)",
                "torch.backends.cuda.matmul.allow_tf32 = True",
                "torch.backends.cudnn.allow_tf32 = True",
            ]
            c.methods.append("\n".join([
                f"def {name}(self, {params}):",
                f"    return self.{inner}({call})",
            ]))
        elif kind == "autocast_bf16":
            c.helpers.append(CAST_BACK)
            c.methods.append("\n".join([
                f"def {name}(self, {params}):",
                '    """LOWER PRECISION: bfloat16 autocast; outputs cast back to float32."""',
                "    with torch.autocast(device_type=\"cuda\", dtype=torch.bfloat16):",
                f"        out = self.{inner}({call})",
                "    return _to_float32(out)",
            ]))
        else:
            raise ValueError(f"unknown wrapper {kind!r}")
        inner = name
    return c


CAST_BACK = '''
def _to_float32(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float32(o) for o in out)
    return out
'''
