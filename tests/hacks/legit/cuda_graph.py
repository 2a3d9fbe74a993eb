# target: tests/hacks/tasks/relu_task.py
# expect-verdict: accepted
# expect-findings:
"""A CUDA-graph wrapper: capture once per input shape (warming up on a side stream, as graph
capture requires), then copy each call's input into the static buffer and replay. Eager on
a CPU."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.graphs = {}

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def _capture(self, x: torch.Tensor):
        static_in = x.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                self._body(static_in)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._body(static_in)
        return graph, static_in, static_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cuda:
            return self._body(x)
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in self.graphs:
            self.graphs[key] = self._capture(x)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()
