"""Tracing ``Model.forward`` into an FX graph, symbolically first, at the task's shapes second.

FX's symbolic tracing keeps every shape symbolic, so a forward that needs a shape as a number
(``math.sqrt(k.size(-1))``, ``self.bias[:, :, :T, :T]`` with T from ``x.size()``, ``if
x.dim() == 4``) cannot be traced. `ShapeTracer` runs every traced call on the meta values of
its operands as it records it, so ``size()``, ``shape``, ``dim()`` and ``ndim`` of a traced
value are the task's numbers: the graph is then valid for those input shapes only, and
`shape_guard` writes the check that sends any other input to the reference's own forward.

Buffers are read as ``get_attr`` nodes (``self.bias`` in the graph, not a copied constant), so
the candidate reads the same buffer the reference does.

A forward that assigns module attributes (``self.hidden = ...``: state carried from one call to
the next) cannot be expressed by a graph; such models are reported as not traceable.
"""

from __future__ import annotations

import torch
from torch import fx


class _Tracer(fx.Tracer):
    proxy_buffer_attributes = True


class _ShapeProxy(fx.Proxy):
    """A proxy whose shape queries answer with the traced value's numbers."""

    def _meta(self):
        v = self.node.meta.get("cudal1_value")
        return v if isinstance(v, torch.Tensor) else None

    def size(self, dim=None):
        v = self._meta()
        if v is None:
            return self.tracer.create_proxy("call_method", "size", (self,) if dim is None else (self, dim), {})
        return v.size() if dim is None else v.size(dim)

    def dim(self):
        v = self._meta()
        return v.dim() if v is not None else self.tracer.create_proxy("call_method", "dim", (self,), {})

    @property
    def shape(self):
        v = self._meta()
        return v.shape if v is not None else self.tracer.create_proxy("call_function", getattr, (self, "shape"), {})

    @property
    def ndim(self):
        v = self._meta()
        return v.dim() if v is not None else self.tracer.create_proxy("call_function", getattr, (self, "ndim"), {})


class ShapeTracer(_Tracer):
    """Traces with the meta value of every node computed as it is recorded (see module doc)."""

    def __init__(self, inputs: list):
        super().__init__()
        self._inputs = list(inputs)
        self._evaluating = False  # while a node's value is computed, module calls and attributes are plain

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ShapeProxy(node, self)

    def call_module(self, m, forward, args, kwargs):
        return forward(*args, **kwargs) if self._evaluating else super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        return attr_val if self._evaluating else super().getattr(attr, attr_val, parameter_proxy_cache)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        p = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        self._evaluating = True
        try:
            p.node.meta["cudal1_value"] = self._evaluate(kind, target, args, kwargs)
        except Exception:  # noqa: BLE001 - a value that cannot be computed on meta keeps symbolic shapes
            pass
        finally:
            self._evaluating = False
        return p

    def _evaluate(self, kind, target, args, kwargs):
        def value(a):
            if isinstance(a, fx.Proxy):
                if "cudal1_value" not in a.node.meta:
                    raise LookupError(a.node.name)
                return a.node.meta["cudal1_value"]
            return a

        args = fx.node.map_aggregate(args, value)
        kwargs = fx.node.map_aggregate(kwargs, value)
        if kind == "placeholder":
            return self._inputs.pop(0)
        if kind == "get_attr":  # read around the tracer's patched Module.__getattr__ (it records a node)
            obj = self.root
            for part in str(target).split("."):
                d = vars(obj)
                for table in (d.get("_parameters", {}), d.get("_buffers", {}), d.get("_modules", {}), d):
                    if part in table:
                        obj = table[part]
                        break
                else:
                    raise LookupError(target)
            return obj
        if kind == "call_function":
            return target(*args, **kwargs)
        if kind == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        if kind == "call_module":
            return self.root.get_submodule(target)(*args, **kwargs)
        raise LookupError(kind)


def assigned_state(model: torch.nn.Module) -> list[str]:
    """Module attributes the traced forward assigned (they now hold proxies)."""
    return [f"{name + '.' if name else ''}{attr}" for name, m in model.named_modules()
            for attr, v in vars(m).items() if isinstance(v, fx.Proxy)]


def trace_model(model: torch.nn.Module, inputs: list) -> tuple[fx.GraphModule, bool]:
    """(graph module, specialized): symbolic when possible, else at the inputs' shapes.
    Raises when neither works or when the forward assigns module attributes."""
    state = {name: dict(vars(m)) for name, m in model.named_modules()}
    try:
        gm, specialized = fx.GraphModule(model, _Tracer().trace(model)), False
    except Exception:  # noqa: BLE001 - shapes used as numbers: try again at the task's shapes
        _restore(model, state)
        gm, specialized = fx.GraphModule(model, ShapeTracer(inputs).trace(model)), True
    assigned = assigned_state(model)
    _restore(model, state)
    if assigned:
        raise TypeError(f"forward assigns {', '.join(assigned)}: state a graph cannot express")
    return gm, specialized


def _restore(model: torch.nn.Module, state: dict) -> None:
    for name, m in model.named_modules():
        saved = state.get(name)
        if saved is not None:
            for attr in [a for a in vars(m) if a not in saved]:
                delattr(m, attr)
            vars(m).update(saved)


def shape_guard(gm: fx.GraphModule, inputs: list) -> str | None:
    """Source of the check that a specialized graph's inputs have the traced shapes, dtypes
    and values (other inputs run the reference's forward), or None when there are none."""
    names = [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    checks, call = [], []
    for name, v in zip(names, inputs):
        call.append(name)
        if isinstance(v, torch.Tensor):
            checks.append(f"tuple({name}.shape) != {tuple(v.shape)!r} or {name}.dtype != {v.dtype}")
        elif isinstance(v, (int, float, bool, str, type(None))):
            checks.append(f"{name} != {v!r}")
    if not checks:
        return None
    return (f"if {' or '.join(checks)}:\n"
            f"    return super().forward({', '.join(call)})  # traced at the task's shapes only")
