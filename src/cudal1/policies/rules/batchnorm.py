"""BatchNorm in eval mode folded into the convolution or linear layer before it.

``bn(conv(x))`` becomes ``_layer_batch_norm(x, conv, bn, kept)`` (`runtime`): while the
BatchNorm is in eval mode and keeps running statistics it is a per-channel affine map, so one
convolution with weight ``W * gamma / sqrt(var + eps)`` and bias ``(b - mean) * gamma /
sqrt(var + eps) + beta`` computes both (**reassociated**, like `linalg`'s rules: the scale is
applied to the weights before the sum); the folded weights are kept until a weight or a
statistic changes. In training mode -- KernelBench's models are judged in training mode -- the
BatchNorm uses the batch's statistics and updates its running ones, and the helper runs the
two modules as written (**exact**). So this rewrite speeds up inference only; the coverage
report counts it apart from the rewrites that change what a training-mode forward runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import fx, nn

from .codegen import Helper
from .folding import kept_values
from .graph_utils import Rewrite, module_of
from .patterns import single_use
from .runtime import _fold_batch_norm, _layer_batch_norm, helper_source

RULE = "batchnorm-eval-fold"
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _as_written(x, layer, bn, kept):
    """What analysis runs (meta tensors): the two modules."""
    return bn(layer(x))


HELPER = Helper("_layer_batch_norm", _as_written,
                helper_source(_fold_batch_norm) + "\n\n" + helper_source(_layer_batch_norm))


def fold_eval_batch_norm(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``bn(layer(x))`` with a BatchNorm after a zero-padded convolution or a linear layer that
    nothing else reads -> `runtime._layer_batch_norm` (see the module docstring)."""
    out = []
    for n in list(gm.graph.nodes):
        bn = module_of(n, gm)
        if not isinstance(bn, _BN) or len(n.args) != 1 or n.kwargs or not bn.track_running_stats:
            continue
        layer_node = n.args[0]
        layer = module_of(layer_node, gm) if isinstance(layer_node, fx.Node) else None
        if not isinstance(layer, _LAYERS) or not single_use(layer_node) or len(layer_node.args) != 1 or layer_node.kwargs:
            continue
        if getattr(layer, "padding_mode", "zeros") != "zeros":
            continue
        with gm.graph.inserting_before(n):
            kept, holder = kept_values(gm, "_batch_norm_fold", _fold_batch_norm)
            args = (layer_node.args[0], gm.graph.get_attr(layer_node.target), gm.graph.get_attr(n.target), kept)
            new = gm.graph.create_node("call_function", HELPER.fn, args, name=f"{n.name}_folded")
        n.replace_all_uses_with(new)
        gm.graph.erase_node(n)  # the helper makes this very BatchNorm call (it updates statistics: not left behind)
        out.append(Rewrite(RULE, n.name, f"{n.target} after {layer_node.target}: folded into its weights in eval mode",
                           helpers=(HELPER,), kept=(holder,)))
    return out
