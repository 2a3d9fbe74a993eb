"""Scripted LLM answers with real candidate code, and a tiny deliberately slow task, for the
LLM-search tests (served by tests/llm_server.py)."""

TASK_SOURCE = '''"""ReLU computed row by row: a deliberately slow reference for the LLM-search tests."""

import torch
import torch.nn as nn

ROWS = 1024
COLS = 256

SMOKE = {"ROWS": 1024, "COLS": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.relu(row) for row in x])


def get_inputs():
    return [torch.randn(ROWS, COLS)]


def get_init_inputs():
    return []
'''

TASK_FILE = "level1/90_Rowwise_Relu.py"


def write_task(root) -> str:
    path = root / TASK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TASK_SOURCE)
    return str(path)


def answer(code: str, analysis: str = "The reference launches one relu per row.",
           design: str = "Apply one vectorized operation to the whole tensor.") -> str:
    return (f"### Performance Analysis\n{analysis}\n\n### Algorithm Design\n{design}\n\n"
            f"### Code Implementation\n```python\n{code.strip()}\n```\n")


HEAD = ("import torch\nimport torch.nn as nn\n\n\nclass ModelNew(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n\n    def forward(self, x):\n")
# correct and fast: one vectorized relu
CORRECT = answer(HEAD + "        return torch.relu(x)\n")
# broken: calls a function that does not exist (the judge reports the AttributeError)
BROKEN = answer(HEAD + "        return torch.relu_fused_fast(x)\n")
# malformed: no code block at all
MALFORMED = ("### Performance Analysis\nThe loop is slow.\n\n### Algorithm Design\n"
             "I would write a fused kernel, but I ran out of room to show it.\n")
# hacking: computes in the caller's input (no allocation); the judge's input check rejects it
MUTATES = answer(HEAD + "        return x.relu_()  # in place: saves an allocation\n")
# passes the judge; the scripted checker calls it a hack (to exercise the checker path)
CHECKER_HACK = answer(HEAD + "        return torch.clamp_min(x, 0.0)\n")

CHECKER_MARK = "You review GPU kernels for reward hacking"


def checker_candidate(prompt: str) -> str:
    """The candidate code shown in a checker prompt (not the known cases after it)."""
    return prompt.split("## Candidate", 1)[1].split("## Known hack cases", 1)[0]


def checker_answer(prompt: str) -> str:
    if "clamp_min" in checker_candidate(prompt):
        return "clamp_min only looks like relu; it special-cases the inputs.\nVERDICT: HACK"
    return "One vectorized relu instead of a Python loop: genuine.\nVERDICT: OK"
