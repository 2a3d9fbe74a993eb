"""Per-detector tests: each static pattern fires on its positive snippets, stays quiet on the
negative ones, and never fires when the positive snippet is only a comment or a string."""

from __future__ import annotations

import ast
import textwrap
import time

import pytest

from cudal1.judge.catalogue import get_pattern, scan_source, static_patterns
from cudal1.judge.catalogue.detectors import DETECTORS, ScanContext


def _src(s: str) -> str:
    return textwrap.dedent(s).strip("\n") + "\n"


def _load_inline(cuda: str) -> str:
    return ("import torch\nfrom torch.utils.cpp_extension import load_inline\n"
            f"cuda_src = r'''\n{textwrap.dedent(cuda)}\n'''\n"
            "ext = load_inline(name='k', cpp_sources='', cuda_sources=cuda_src, functions=['f'])\n")


# pattern id -> (positive snippets, negative snippets)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "side-stream": ([
        """
        import torch
        class ModelNew(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.s = torch.cuda.Stream()
            def forward(self, x):
                with torch.cuda.stream(self.s):
                    return x * 2
        """,
        "from torch.cuda import Stream as S\nside = S(priority=-1)\n",
        "import torch.cuda as tc\ndef f(x, s):\n    with tc.stream(s):\n        return x + 1\n",
        "import torch\ncuda = torch.cuda\nmake = cuda.Stream\ns = make()\n",
    ], [
        "import torch\ndef f(x):\n    with torch.cuda.stream(torch.cuda.current_stream()):\n        return x + 1\n",
        """
        import torch
        class W(torch.nn.Module):
            def capture(self, x):
                s = torch.cuda.Stream()
                with torch.cuda.stream(s):
                    self.body(x)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    self.out = self.body(x)
                self.g = g
        """,
        "import torch\ng = torch.cuda.CUDAGraph()\nwith torch.cuda.graph(g):\n    y = 2\n",
    ]),
    "side-stream-cuda": ([
        _load_inline("void f() { cudaStream_t s; cudaStreamCreate(&s); k<<<1, 32, 0, s>>>(); }"),
        _load_inline("void f() { auto s = at::cuda::getStreamFromPool(); k<<<1, 32, 0, s>>>(); }"),
        _load_inline("void f() { k<<<1, 32, 0, cudaStreamPerThread>>>(); }"),
    ], [
        _load_inline("void f() { cudaStream_t stream = at::cuda::getCurrentCUDAStream();\n"
                     "  k<<<grid, block, 0, stream>>>(); k<<<g, b>>>(); k<<<g, b, 0, 0>>>(); }"),
        _load_inline("void f(cudaStream_t s) { k<<<g, b, smem, s>>>(); }  // cudaStreamCreate(&s) here is a comment"),
        "cuda_src = 'void f() { cudaStream_t s; cudaStreamCreate(&s); }'\n",  # never given to load_inline
    ]),
    "set-stream": (["import torch\ntorch.cuda.set_stream(torch.cuda.Stream())\n"],
                   ["import torch\ns = torch.cuda.current_stream()\n"]),
    "tensor-subclass": ([
        "import torch\nclass L(torch.Tensor):\n    pass\n",
        "from torch import Tensor\nclass L(Tensor):\n    pass\n",
        "import torch\nL = type('L', (torch.Tensor,), {})\n",
    ], ["import torch.nn as nn\nclass M(nn.Module):\n    pass\n", "class Tensor:\n    pass\nclass L(Tensor):\n    pass\n"]),
    "make-subclass": (["def f(x, L):\n    return x.as_subclass(L)\n",
                       "import torch\ndef f(x, L):\n    return torch.Tensor._make_subclass(L, x)\n"],
                      ["def f(x):\n    return x.clone()\n"]),
    "torch-function-override": ([
        "class L:\n    @classmethod\n    def __torch_function__(cls, func, types, args=(), kwargs=None):\n        return 1\n",
        "from torch.utils._python_dispatch import TorchDispatchMode\nclass M(TorchDispatchMode):\n    pass\n",
    ], ["import torch\ndef f(x):\n    return torch.overrides.has_torch_function((x,))\n"]),
    "pointer-keyed-cache": ([
        "class M:\n    def forward(self, x):\n        self.cache[x.data_ptr()] = x\n        return x\n",
        "class M:\n    def forward(self, x):\n        if id(x) == self.last:\n            return self.out\n        return x\n",
        "class M:\n    def forward(self, x):\n        key = (x.data_ptr(), x.shape)\n        if key in self.c:\n            return self.c[key]\n",
        "class M:\n    def forward(self, x):\n        self.last_ptr = x.untyped_storage().data_ptr()\n",
        "class M:\n    def forward(self, x):\n        return self.c.get(hash(x))\n",
    ], [
        "def f(ext, x, n):\n    return ext.kernel(x.data_ptr(), n)\n",
        "def f(x):\n    assert x.data_ptr() % 16 == 0\n    return x\n",
        "class M:\n    def forward(self, x):\n        key = hash(x.shape)\n        if key in self.graphs:\n            pass\n",
        """
        import torch
        class M:
            def desc(self, t):  # a descriptor built from the address: keyed on it, correctly
                key = (t.data_ptr(), t.numel())
                d = self.cache.get(key)
                if d is None:
                    ptr = t.data_ptr()
                    d = torch.tensor([ptr & 0xFFFFFFFF, ptr >> 32])
                    self.cache = {key: d}
                return d
        """,
    ]),
    "result-cache": ([
        """
        class M:
            def forward(self, x):
                if self.out is not None:
                    return self.out
                self.out = x * 2
                return self.out
        """,
        """
        _CACHE = {}
        def forward(x):
            k = (x.shape, float(x.sum()))
            if k in _CACHE:
                return _CACHE[k]
            _CACHE[k] = y = x * 2
            return y
        """,
        """
        class M:
            def forward(self, x):
                if self.out is None:
                    self.out = x.relu()
                return self.out
        """,
    ], [
        """
        class M:
            def forward(self, x):
                if self.ext is None:
                    self.ext = build()
                return self.ext.fn(x)
        """,
        """
        class M:
            def forward(self, x):
                out = x @ self.w
                if self.bias is not None:
                    return out + self.bias
                return out
        """,
        """
        import torch
        class M:
            def forward(self, x):
                if self.buf is None or self.buf.shape != x.shape:
                    self.buf = torch.empty_like(x)
                torch.mul(x, 2, out=self.buf)
                return self.buf
        """,
        """
        class M:
            def forward(self, x):
                if self.graph is None:
                    self.capture(x)
                self.static_in.copy_(x)
                self.graph.replay()
                return self.static_out
        """,
    ]),
    "call-counting": ([
        "class M:\n    def forward(self, x):\n        self.calls += 1\n        if self.calls > 3:\n            return x\n        return x * 2\n",
        "n = 0\ndef forward(x):\n    global n\n    n += 1\n    return x if n % 2 else x * 2\n",
    ], ["class M:\n    def forward(self, x):\n        self.seen += 1\n        return x * 2\n",
        """
        import torch
        class M:
            def forward(self, x):
                self.calls += 1
                if self.calls < 3:
                    return self.body(x)
                if self.graph is None:
                    self.graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(self.graph):
                        self.out = self.body(self.inp)
                self.inp.copy_(x)
                self.graph.replay()
                return self.out.clone()
        """,
        "def f(xs):\n    t = 0\n    for x in xs:\n        t += 1\n    return t > 2\n"]),
    "empty-return": (["import torch\ndef f(x):\n    return torch.empty(3)\n",
                      "import torch\ndef f(x):\n    out = torch.empty_like(x)\n    return out\n",
                      "def f(x):\n    return x.new_empty(x.shape)\n"],
                     ["import torch\ndef f(ext, x):\n    out = torch.empty_like(x)\n    ext.fill(x, out)\n    return out\n",
                      "import torch\ndef f(x):\n    return torch.zeros_like(x)\n"]),
    "kernel-fallback": ([
        """
        import torch
        from torch.utils.cpp_extension import load_inline
        ext = load_inline(name='a', cpp_sources='', functions=['f'])
        def forward(x):
            try:
                return ext.f(x)
            except Exception:
                return torch.relu(x)
        """,
        """
        import triton
        @triton.jit
        def k(x_ptr):
            pass
        def run(x):
            try:
                k[(1,)](x)
            except:
                pass
        """,
        """
        from torch.utils.cpp_extension import load_inline
        try:
            ext = load_inline(name='a', cpp_sources='', functions=['f'])
        except Exception:
            ext = None
        """,
    ], [
        """
        from torch.utils.cpp_extension import load_inline
        try:
            ext = load_inline(name='a', cpp_sources='', functions=['f'])
        except RuntimeError as e:
            raise RuntimeError('build failed; see the log') from e
        """,
        "try:\n    import triton\nexcept ImportError:\n    triton = None\n",
    ]),
    "timer-patching": ([
        "import torch\ntorch.cuda.synchronize = lambda *a: None\n",
        "import time\nsetattr(time, 'perf_counter', lambda: 0.0)\n",
        "from unittest import mock\nmock.patch('time.perf_counter', lambda: 0.0).start()\n",
        "import torch\ntorch.cuda.Event.elapsed_time = lambda self, end: 0.0\n",
    ], ["import time\nt0 = time.perf_counter()\n", "class M:\n    def f(self):\n        self.time = 3\n"]),
    "sleep-or-spin": ([
        "import time\ntime.sleep(0.1)\n",
        "def spin():\n    x = 0\n    while True:\n        x += 1\n",
        _load_inline("__global__ void k() { __nanosleep(100); }"),
    ], ["def f(done):\n    while True:\n        if done():\n            break\n",
        "def f(n):\n    while n > 0:\n        n -= 1\n"]),
    "l2-persistence": ([
        _load_inline("void f(cudaStream_t s) { cudaStreamAttrValue a; a.accessPolicyWindow.hitRatio = 1.f;\n"
                     "  cudaStreamSetAttribute(s, cudaStreamAttributeAccessPolicyWindow, &a); }"),
    ], ["doc = 'cudaStreamSetAttribute accessPolicyWindow'\n"]),
    "module-patched": ([
        "import torch\ntorch.allclose = lambda *a, **k: True\n",
        "import torch.nn.functional as F\nF.relu = lambda x: x\n",
        "import torch\nsetattr(torch.Tensor, '__eq__', lambda a, b: True)\n",
    ], ["import torch.nn.functional as F\nclass M:\n    def __init__(self):\n        self.relu = F.relu\n",
        "import torch\ntorch.backends.cudnn.benchmark = True\n"]),
    "builtins-patching": (["import builtins\nbuiltins.len = lambda x: 0\n", "__builtins__['print'] = None\n"],
                          ["len = 3\n", "import builtins\nx = builtins.len([1])\n"]),
    "aten-override": ([
        "import torch\nlib = torch.library.Library('aten', 'IMPL')\nlib.impl('relu', lambda x: x, 'CPU')\n",
        "import torch\n@torch.library.impl('aten::relu', 'CPU')\ndef r(x):\n    return x\n",
        # a namespace computed at run time, or folded from constants
        "import torch\nlib = torch.library.Library(bytes.fromhex('6174656e').decode(), 'IMPL')\n",
        "import torch\nNS = 'at' + 'en'\nlib = torch.library.Library(NS, 'IMPL')\n",
        "import torch\ndef reg(ns):\n    return torch.library.Library(ns, 'FRAGMENT')\n",
        # IMPL into a namespace this source never defines
        "import torch\nlib = torch.library.Library('torchvision', 'IMPL')\nlib.impl('nms', lambda *a: None, 'CPU')\n",
        # registration helpers with an aten, foreign or computed qualname
        "import torch\ntorch.library.register_kernel('aten::relu', 'cpu')(lambda x: x)\n",
        "import torch\ndef reg(op):\n    torch.library.register_fake(op)(lambda x: x)\n",
        "import torch\ntorch.library.register_autograd(torch.ops.aten.relu.default, lambda ctx, g: g)\n",
        "import torch\ntorch.library._register_torch_dispatch_rule('aten::add.Tensor', object, print)\n",
        "import torch\ntorch.library.define('aten::fast_relu', '(Tensor x) -> Tensor')\n",
        "import torch\nlib = torch.library.Library('aten', 'FRAGMENT')\nlib.define('fast_relu(Tensor x) -> Tensor')\n",
        # the dispatcher's private API
        "import torch\nh = torch._C._dispatch_has_kernel_for_dispatch_key('aten::relu', 'CPU')\n",
        "import torch\nm = torch._C._DispatchModule\n",
        "from torch._library import custom_ops\n",
        "import torch\nk = torch._C._dispatch_find_schema_or_throw\n",
        # dispatch modes switched on outside forward
        "from torch.utils._python_dispatch import _push_mode\n_push_mode(object())\n",
        """
        from torch.utils._python_dispatch import TorchDispatchMode
        class Spy(TorchDispatchMode):
            pass
        Spy().__enter__()
        """,
        """
        from torch.overrides import TorchFunctionMode
        class Spy(TorchFunctionMode):
            pass
        class Sub(Spy):
            pass
        class ModelNew:
            def __init__(self):
                self.mode = Sub()
                self.mode.__enter__()
        """,
        """
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        class Spy(TorchDispatchMode):
            pass
        with Spy():
            model = torch.nn.Linear(4, 4)
        """,
        # TORCH_LIBRARY blocks in the sources given to load_inline
        _load_inline("TORCH_LIBRARY_IMPL(aten, CPU, m) { m.impl(\"relu\", &fast_relu); }"),
        _load_inline("TORCH_LIBRARY_FRAGMENT(aten, m) { m.def(\"fast_relu(Tensor x) -> Tensor\"); }"),
        _load_inline("TORCH_LIBRARY_IMPL(_, AutogradCPU, m) { m.fallback(torch::CppFunction::makeFallthrough()); }"),
        _load_inline("TORCH_LIBRARY_IMPL(torchvision, CPU, m) { m.impl(\"nms\", &nms); }"),
        _load_inline("void f() { c10::Dispatcher::singleton(); }"),
    ], ["import torch\n@torch.library.custom_op('mylib::relu', mutates_args=())\ndef r(x: torch.Tensor) -> torch.Tensor:\n    return x.relu()\n",
        "import torch\nlib = torch.library.Library('mylib', 'DEF')\n",
        """
        import torch
        @torch.library.custom_op("mylib::scale", mutates_args=())
        def scale(x: torch.Tensor) -> torch.Tensor:
            return x * 2
        @scale.register_fake
        def _(x):
            return torch.empty_like(x)
        torch.library.register_kernel("mylib::scale", "cpu")(lambda x: x * 2)
        torch.library.register_autograd(scale, lambda ctx, g: g * 2)
        torch.library.register_fake(torch.ops.mylib.scale.default)(lambda x: x)
        """,
        "import torch\nlib = torch.library.Library('mylib', 'FRAGMENT')\nlib.define('f(Tensor x) -> Tensor')\nlib.impl('f', lambda x: x, 'CPU')\n",
        "import torch\ntorch.library.define('mylib::f', '(Tensor x) -> Tensor')\ntorch.library.impl('mylib::f', 'CPU')(lambda x: x)\n",
        "import torch\nok = hasattr(torch.library, 'custom_op')\ny = torch.ops.aten.relu.default(torch.ones(2))\n",
        """
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        class Count(TorchDispatchMode):
            pass
        class ModelNew:
            def forward(self, x):
                with Count():       # inside forward only (torch-function-override's business)
                    return x + 1
        """,
        _load_inline("TORCH_LIBRARY(mylib, m) { m.def(\"f(Tensor x) -> Tensor\"); }\n"
                     "TORCH_LIBRARY_IMPL(mylib, CPU, m) { m.impl(\"f\", &f); }"),
        _load_inline("void f(torch::Library& m) { }  // TORCH_LIBRARY_IMPL(aten, CPU, m) in a comment"),
    ]),
    "sys-modules": (["import sys\nm = sys.modules['__main__']\n", "from sys import modules\nm = modules.get('a')\n"],
                    ["import sys\nv = sys.version_info\n"]),
    "gc-introspection": (["import gc\nobjs = gc.get_objects()\n", "import gc\nr = gc.get_referrers(1)\n"],
                         ["import gc\ngc.collect()\n"]),
    "frame-introspection": (["import sys\nf = sys._getframe(1)\n", "import inspect\nf = inspect.currentframe().f_back\n"],
                            ["import inspect\ns = inspect.signature(len)\n"]),
    "dynamic-code": (["exec('x = 1')\n", "y = eval('1 + 1')\n", "os = __import__('os')\n",
                      "import importlib\nm = importlib.import_module('os')\n",
                      # reached through the builtins rather than by its bare name
                      "import builtins\nbuiltins.exec('x = 1')\n", "__builtins__['eval']('1')\n",
                      "__builtins__.eval('1')\n", "import builtins\nbuiltins.__dict__['ex' + 'ec']('x = 1')\n",
                      "import builtins\nrun = vars(builtins).get('exec')\n",
                      "import builtins as b\nrun = getattr(b, 'ev' + 'al')\n",
                      "g = globals()['__builtins__']['exec']\n", "run = exec\nrun('x = 1')\n",
                      "from builtins import compile as c\ncode = c('1', 'f', 'eval')\n"],
                     ["import torch\nf = torch.compile(len)\n", "import re\nr = re.compile('a')\n",
                      "def f(model):\n    return model.eval()\n", "import builtins\nn = builtins.len([1])\n",
                      "def exec(x):\n    return x\ny = exec(3)\n"]),
    "dynamic-attribute": ([
        "import os\nlink = getattr(os, 'sym' + 'link')\n",
        "import sys\nname = 'x'\ndef f(n):\n    return getattr(sys, n)\n",
        "def f(obj, n):\n    return getattr(obj, n)\n",
        "import torch.nn.functional as F\ndef f(x, n):\n    return getattr(F, n)(x)\n",
        "import sys\nf = getattr(sys, '_getframe')\n",  # a sensitive module, even by a constant name
        "import os as o\nf = getattr(o, 'path')\n",
        "def f(name):\n    return getattr(__import__('o' + 's'), name)\n",
        "import importlib\nm = importlib.import_module('s' + 'ys')\nf = getattr(m, 'settrace')\n",
        "import sys\nclass M:\n    def __init__(self):\n        self.m = sys\n    def f(self):\n        return getattr(self.m, 'modules')\n",
        "import sys\nos_ = sys.modules['os']\nf = getattr(os_, 'system')\n",
        "import torch\nC = getattr(torch, '_' + 'C')\n",
        "import torch\nsetattr(torch.ops, 'aten', None)\n",
        "def f(obj, n):\n    return delattr(obj, n)\n",
        "def f(obj, n):\n    return hasattr(obj, n)\n",
        "def f(obj, n):\n    return object.__getattribute__(obj, n)\n",
        "import sys\nm = vars(sys)['mod' + 'ules']\n",
        "import sys\nd = sys.__dict__\n",
        "import builtins\nd = builtins.__dict__\n",
        "b = __builtins__\n",
        "def f(k):\n    return globals()[k]\n",
        "def f(k):\n    return locals().get(k)\n",
        "def f(obj, k):\n    return vars(obj)[k]\n",
        "def f(obj, k):\n    d = obj.__dict__\n    return d[k]\n",
        "import operator, sys\nf = operator.attrgetter('_getfr' + 'ame')(sys)\n",
        "from operator import attrgetter\ndef f(n):\n    return attrgetter(n)\n",
        "import operator\ndef f(n):\n    return operator.methodcaller(n)\n",
        "import functools, sys\nf = functools.reduce(getattr, ['_getframe'], sys)\n",
        "from os import *\n",
        "g = (lambda: 0).__globals__\n",
        "subs = object.__subclasses__()\n",
        "def f(args):\n    return getattr(*args)\n",
    ], [
        "import torch\nclass M(torch.nn.Module):\n    def f(self):\n        return getattr(self, 'weight')\n",
        "import torch\ndef f(x):\n    return getattr(torch.nn.functional, 'relu')(x)\n",
        "import torch.nn.functional as F\nACT = 'gelu'\ndef f(x):\n    return getattr(F, ACT)(x)\n",
        """
        import torch
        class M(torch.nn.Module):
            def __init__(self, n):
                super().__init__()
                for i in range(n):
                    setattr(self, f"conv{i}", torch.nn.Conv2d(3, 3, 3))
            def forward(self, x):
                for i in range(4):
                    x = getattr(self, f"conv{i}")(x)
                    if hasattr(self, f"bn{i}"):
                        x = getattr(self, f"bn{i}")(x)
                return x
        """,
        "class M:\n    def f(self, name):\n        return self.__dict__[name]\n",
        "import torch\nok = hasattr(torch.library, 'custom_op') and hasattr(torch._C, '_cuda_getDevice')\n",
        "def f(obj):\n    return getattr(obj, 'shape', None)\n",
        "d = {'a': 1}\ndef f(k):\n    return d[k]\n",
        "cfg = globals()['CONFIG']\n",
        "import operator\nget_w = operator.attrgetter('weight', 'bias')\n",
        "import os\np = os.path.join('a', 'b')\n",
        "class M:\n    def forward(self, x):\n        return x.__class__.__name__\n",
    ]),
    "ctypes-ffi": (["import ctypes\n", "from ctypes import CDLL\n"], ["import torch\n"]),
    "threads": ([
        "import threading\nthreading.Thread(target=print).start()\n",
        "from concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor() as ex:\n    pass\n",
        _load_inline("void f() { std::thread t([]{}); t.detach(); }"),
    ], ["import torch\nn = torch.get_num_threads()\n",
        _load_inline("void f(float* x, int n) {\n#pragma omp parallel for\n for (int i = 0; i < n; ++i) x[i] = 0; }")]),
    "child-process": ([
        "import subprocess\nsubprocess.run(['ls'])\n", "import os\nos.system('ls')\n",
        "import multiprocessing as mp\np = mp.Process(target=print)\n", _load_inline("void f() { system(\"ls\"); }"),
    ], ["import multiprocessing\nn = multiprocessing.cpu_count()\n", "import os\nn = os.cpu_count()\n"]),
    "finalizer": (["class M:\n    def __del__(self):\n        pass\n", "import weakref\nweakref.finalize(object(), print)\n"],
                  ["import weakref\nr = weakref.ref(int)\n"]),
    "exit-hooks": (["import atexit\natexit.register(print)\n", "import signal\nsignal.signal(signal.SIGALRM, print)\n",
                    "import sys\nsys.excepthook = print\n"],
                   ["import signal\ns = signal.SIGINT\n"]),
    "process-exit": (["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "raise SystemExit(0)\n"],
                     ["raise ValueError('bad input')\n"]),
    "file-access": ([
        "with open('f.txt', 'w') as f:\n    f.write('x')\n",
        "from pathlib import Path\nPath('/tmp/x').write_text('a')\n",
        "import shutil\nshutil.rmtree('/tmp/x')\n",
        "from pathlib import Path\np = Path.home() / 'x'\nf = p.open('w')\n",
        _load_inline("void f() { FILE* fp = fopen(\"/tmp/x\", \"w\"); }"),
    ], ["import os\np = os.path.join('a', 'b')\n", "class M:\n    def f(self):\n        self.open = True\n",
        "def open(path):\n    return path\nx = open('a')\n"]),
    "network-access": (["import socket\n", "import urllib.request\n", "from requests import get\n",
                        "import torch\nm = torch.hub.load('a/b', 'c')\n"],
                       ["import torch.distributed as dist\nr = dist.is_available()\n"]),
    "env-read": (["import os\nh = os.environ['HOME']\n", "import os\nk = os.getenv('KEY')\n",
                  "from os import environ\nk = environ.get('KEY')\n", "import os\nenv = dict(os.environ)\n"],
                 ["import os\nos.environ['TORCH_CUDA_ARCH_LIST'] = '9.0'\n",
                  "import os\nif 'TORCH_CUDA_ARCH_LIST' not in os.environ:\n    a = os.environ.get('CUDA_HOME')\n"]),
    "env-write": (["import os\nos.environ['X'] = '1'\n", "import os\nos.environ.update(X='1')\n", "import os\nos.putenv('X', '1')\n"],
                  ["import os\nk = os.getenv('X')\n"]),
    "global-state": (["import torch\ntorch.backends.cudnn.benchmark = True\n", "import torch\ntorch.set_num_threads(1)\n",
                      "import torch\ntorch.set_grad_enabled(False)\n"],
                     ["import torch\nwith torch.set_grad_enabled(False):\n    pass\n",
                      "import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n"]),
    "rng-reseed": (["import torch\nclass M:\n    def forward(self, x):\n        torch.manual_seed(0)\n        return x\n"],
                   ["import torch\ntorch.manual_seed(0)\n"]),
    "lower-precision": (["def f(x):\n    return x.half()\n", "import torch\ndef f(x):\n    return x.to(torch.bfloat16)\n",
                         "import torch\nwith torch.autocast('cuda'):\n    pass\n", _load_inline("__global__ void k(__half* x) {}")],
                        ["def f(x):\n    return x.float()\n", "import torch\nd = torch.float32\n"]),
    "tf32-enabled": (["import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n",
                      "import torch\ntorch.set_float32_matmul_precision('high')\n"],
                     ["import torch\ntorch.backends.cuda.matmul.allow_tf32 = False\n",
                      "import torch\ntorch.set_float32_matmul_precision('highest')\n"]),
    "scan-error": (["x = " + " + ".join(["a"] * 400) + "\n",
                    "def f(a):\n    return " + "-" * 300 + "a\n",
                    "import os\nx = os" + ".path" * 250 + "\n"],
                   ["x = " + " + ".join(["a"] * 150) + "\n", "x = sum([1] * 400)\n",
                    "ok = " + " and ".join(["a"] * 2000) + "\n"]),
    "inputs-override": (["import torch\ndef get_inputs():\n    return [torch.rand(1)]\n", "def get_init_inputs():\n    return []\n"],
                        ["class M:\n    def get_inputs(self):\n        return []\n", "batch_size = 4\n"]),
}


def _ids(source: str, reference: str | None = None) -> set[str]:
    return {f.id for f in scan_source(source, reference, strict=True)}


def _ids_lenient(source: str) -> set[str]:
    return {f.id for f in scan_source(source)}


def test_every_static_pattern_has_cases():
    assert {p.id for p in static_patterns()} == set(CASES)


POSITIVES = [(pid, i, _src(s)) for pid, (pos, _) in CASES.items() for i, s in enumerate(pos)]
NEGATIVES = [(pid, i, _src(s)) for pid, (_, neg) in CASES.items() for i, s in enumerate(neg)]


@pytest.mark.parametrize("pid,i,source", POSITIVES, ids=[f"{p}-{i}" for p, i, _ in POSITIVES])
def test_positive_snippet_is_found(pid, i, source):
    findings = scan_source(source, strict=True)
    hits = [f for f in findings if f.id == pid]
    assert hits, f"{pid} not found in:\n{source}\nfound: {findings}"
    assert all(f.message.startswith("line ") for f in hits)


@pytest.mark.parametrize("pid,i,source", NEGATIVES, ids=[f"{p}-{i}" for p, i, _ in NEGATIVES])
def test_negative_snippet_is_quiet(pid, i, source):
    assert pid not in _ids(source), source


@pytest.mark.parametrize("pid,i,source", POSITIVES, ids=[f"{p}-{i}" for p, i, _ in POSITIVES])
def test_positive_snippet_in_comment_or_string_is_quiet(pid, i, source):
    commented = "".join(f"# {line}\n" for line in source.splitlines())
    quoted = f"NOTE = {source!r}\n"
    docstring = '"""' + source.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""\n'
    for variant in (commented, quoted, docstring):
        assert scan_source(variant, strict=True) == [], variant


def test_message_gives_the_line_number():
    src = "import torch\n\n\nclass M(torch.nn.Module):\n    def __init__(self):\n        self.s = torch.cuda.Stream()\n"
    (f,) = [f for f in scan_source(src) if f.id == "side-stream"]
    assert f.message.startswith("line 6: ") and "torch.cuda.Stream()" in f.message
    assert f.severity == "reject"


def test_native_line_numbers_point_into_the_string():
    src = _load_inline("void f() {\n  int a;\n  cudaStream_t s; cudaStreamCreate(&s);\n}")
    (f,) = [f for f in scan_source(src) if f.id == "side-stream-cuda"]
    assert f.message.startswith("line 6: ")  # string opens on line 3, content line 0 is empty


def test_unparsable_source_gives_no_findings():
    assert scan_source("def broken(:\n    torch.cuda.Stream()\n") == []


def test_reference_constants_are_flagged_only_with_reference():
    cand = "batch_size = 1\nother = 3\n"
    ref = "batch_size = 128\ndim = 4\n"
    assert "inputs-override" not in _ids(cand)
    hits = [f for f in scan_source(cand, ref) if f.id == "inputs-override"]
    assert len(hits) == 1 and "batch_size" in hits[0].message


def test_lower_precision_quiet_when_reference_uses_it():
    cand = "def f(x):\n    return x.half()\n"
    ref = "import torch\ndef get_inputs():\n    return [torch.randn(4, dtype=torch.float16)]\n"
    assert "lower-precision" in _ids(cand)
    assert "lower-precision" not in _ids(cand, ref)


def test_shadowed_builtin_is_not_the_builtin():
    assert "dynamic-code" not in _ids("def eval(x):\n    return x\ny = eval(3)\n")
    assert "dynamic-code" in _ids("y = eval('3')\n")


def test_getattr_spelling_is_resolved():
    assert "side-stream" in _ids("import torch\ns = getattr(torch.cuda, 'Stream')()\n")


def test_findings_are_sorted_and_unique_per_line():
    src = "import torch\nimport subprocess\nsubprocess.run(['a']); subprocess.run(['b'])\ns = torch.cuda.Stream()\n"
    fs = scan_source(src)
    lines = [int(f.message.split(":")[0].split()[1]) for f in fs]
    assert lines == sorted(lines)
    assert len([f for f in fs if f.id == "child-process"]) == 1


def test_kernel_cache_outside_forward_is_not_a_result_cache():
    src = _src("""
        _KERNELS = {}
        def get_kernel(n):
            if n not in _KERNELS:
                _KERNELS[n] = build(n)
            return _KERNELS[n]
        class ModelNew:
            def forward(self, x):
                k = get_kernel(x.numel())
                return k(x)
    """)
    assert "result-cache" not in _ids(src)


def test_result_cache_in_a_helper_that_forward_returns():
    src = _src("""
        class ModelNew:
            def _compute(self, x):
                if self.out is not None:
                    return self.out
                self.out = x * 2
                return self.out
            def forward(self, x):
                return self._compute(x)
    """)
    assert "result-cache" in _ids(src)


# --- the scan never fails silently ----------------------------------------------------------
def test_parser_giving_up_is_a_scan_error():
    bomb = "x = " + " + ".join(["a"] * 5000) + "\n"  # the parser raises RecursionError
    (f,) = scan_source(bomb)
    assert (f.id, f.severity) == ("scan-error", "reject")
    assert f.message.startswith("line 1: the parser raised RecursionError") and "nothing was checked" in f.message
    with pytest.raises(RecursionError):
        scan_source(bomb, strict=True)


def test_three_thousand_deep_expressions_give_a_finding_fast():
    for source in ("x = " + " + ".join(["a"] * 3000) + "\n", "x = " + "-" * 3000 + "1\n",
                   "import os\nx = os" + ".a" * 3000 + "\n", "x = a" + "[0]" * 3000 + "\n"):
        start = time.perf_counter()
        ids = _ids_lenient(source)
        assert time.perf_counter() - start < 2.0, source[:40]
        assert "scan-error" in ids, source[:40]


def test_null_bytes_do_not_pass_silently():
    source = "import torch\nx = 1\0\n"
    try:
        ast.parse(source)
    except SyntaxError:  # Python 3.12+: the build reports it
        assert scan_source(source) == []
    except ValueError:  # Python 3.11: "source code string cannot contain null bytes"
        assert [f.id for f in scan_source(source)] == ["scan-error"]


def test_a_crashing_detector_is_a_scan_error_naming_it(monkeypatch):
    def broken(tree, source, ctx):
        yield 1, "found before crashing"
        raise KeyError("boom")

    monkeypatch.setitem(DETECTORS, "side_stream", broken)
    src = "import subprocess\nsubprocess.run(['ls'])\n"
    fs = scan_source(src)
    errors = [f for f in fs if f.id == "scan-error"]
    assert len(errors) == 1 and errors[0].severity == "reject"
    assert "detector side_stream raised KeyError: 'boom'" in errors[0].message
    assert "side-stream was not fully checked" in errors[0].message
    assert "child-process" in {f.id for f in fs}  # every other detector still ran
    assert "side-stream" in {f.id for f in fs}  # and what the broken one found before it crashed is kept
    with pytest.raises(KeyError):
        scan_source(src, strict=True)


def test_detectors_failing_alike_share_one_finding(monkeypatch):
    def broken(tree, source, ctx):
        raise RecursionError("maximum recursion depth exceeded")
        yield  # a generator, like every detector

    for name in ("side_stream", "threads"):
        monkeypatch.setitem(DETECTORS, name, broken)
    (f,) = [f for f in scan_source("x = 1\n") if f.id == "scan-error"]
    assert "detectors side_stream, threads raised RecursionError" in f.message
    assert "side-stream, threads were not fully checked" in f.message


def test_a_failing_context_is_a_scan_error(monkeypatch):
    def broken(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ScanContext, "build", broken)
    (f,) = scan_source("x = 1\n")
    assert f.id == "scan-error" and "building the scan context raised MemoryError" in f.message
    with pytest.raises(MemoryError):
        scan_source("x = 1\n", strict=True)


DEEP_SHAPES = {
    "sum": lambda n: " + ".join(["a"] * n),
    "strings": lambda n: " + ".join(["'int x;'"] * n),
    "attributes": lambda n: "os" + ".a" * n,
    "self-attributes": lambda n: "self" + ".a" * n,
    "calls": lambda n: "a" + "()" * n,
    "method-calls": lambda n: "x" + ".get()" * n,
    "subscripts": lambda n: "a" + "[0]" * n,
    "conditionals": lambda n: "a if a else " * n + "a",
    "negations": lambda n: "-" * n + "a",
}
DEEP_PLACES = {
    "module": "import os\na = 1\nx = {e}\nprint({e})\n",
    "forward": ("import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        a = x\n"
                "        self.calls += 1\n        if self.calls > 2 and {e}:\n            return self.last\n"
                "        y = {e}\n        self.cache[y] = x.data_ptr()\n        return {e}\n"),
    "native": ("from torch.utils.cpp_extension import load_inline\na = 'int x;'\nsrc = {e}\n"
               "ext = load_inline(name='k', cpp_sources=src, functions=['f'])\ntry:\n    ext.f({e})\n"
               "except Exception:\n    pass\n"),
    "names": ("import os, sys, torch\na = 1\ngetattr({e}, 'x')\ngetattr(os, {e})\nvars(sys)[{e}]\n"
              "lib = torch.library.Library({e}, 'IMPL')\nlib.impl({e}, a, 'CPU')\n"),
}


DEEP_PLACES["target"] = "import os\na = 1\n{e} = 1\ndel {e}\n"  # assignable shapes only
DEEP_CASES = [(s, p) for p in DEEP_PLACES for s in DEEP_SHAPES
              if p != "target" or s in ("attributes", "self-attributes", "subscripts")]


@pytest.mark.parametrize("shape,place", DEEP_CASES, ids=[f"{p}-{s}" for s, p in DEEP_CASES])
def test_deep_code_is_reported_not_crashed_on(shape, place):
    # 900 levels: CPython compiles it, recursive tree walkers (ast.unparse: ~400) die on it.
    source = DEEP_PLACES[place].replace("{e}", DEEP_SHAPES[shape](900))
    start = time.perf_counter()
    found = scan_source(source, strict=True)  # strict: a crash in any detector fails the test
    assert time.perf_counter() - start < 5.0
    (f,) = [f for f in found if f.id == "scan-error"]
    assert "nested" in f.message and f.severity == "reject"


def test_constant_names_reach_the_name_based_detectors():
    assert {"dynamic-attribute", "file-access"} <= _ids("import os\ngetattr(os, 'sym' + 'link')('a', 'b')\n")
    assert "child-process" in _ids("def f():\n    import os\n    o = os\n    o.system('ls')\n")
    assert "child-process" in _ids("import importlib\nm = importlib.import_module('o' + 's')\nm.system('ls')\n")
    assert "frame-introspection" in _ids(
        "import sys\nclass M:\n    def __init__(self):\n        self.s = sys\n    def f(self):\n        return self.s._getframe(1)\n")


def test_changed_severities():
    assert get_pattern("call-counting").severity == "warn"  # every timed output is compared: behaviour decides
    assert get_pattern("dynamic-attribute").severity == "reject"
    assert get_pattern("scan-error").severity == "reject"
    assert "counter is fine when every call's output is right" in get_pattern("call-counting").description.replace("\n", " ")


def test_cli_explains_the_new_entries(capsys):
    from cudal1.cli.main import main

    for pid in ("dynamic-attribute", "scan-error"):
        assert main(["findings", pid]) == 0
        out = capsys.readouterr().out
        assert pid in out and "What it does" in out


def test_long_chains_of_names_are_followed_boundedly():
    # 1,500 names each bound to the one before: resolution gives up after MAX_HOPS, never crashes
    chain = "".join(f"n{i} = n{i - 1} + 'a'\nm{i} = m{i - 1}\n" for i in range(1, 1500))
    src = f"import os\nn0 = 'a'\nm0 = os\n{chain}getattr(os, n1499)\nm1499.system('ls')\n"
    assert "dynamic-attribute" in _ids(src)
