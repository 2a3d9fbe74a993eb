"""Shared pieces of the training tests: two smoke tasks, a correct answer for each, a tiny model built here."""

from __future__ import annotations

from pathlib import Path

TASK_IDS = ["level1/1_Square_Matmul", "level1/19_Swish"]

ANSWERS = {
    "level1/1_Square_Matmul": '''### Performance Analysis
One matmul; the reference already calls the library.

### Algorithm Design
Call torch.mm directly.

### Code Implementation
```python
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.mm(A, B)
```
''',
    "level1/19_Swish": '''### Performance Analysis
Two elementwise kernels and a temporary.

### Algorithm Design
Use the fused silu.

### Code Implementation
```python
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.nn.functional.silu(x)
```
''',
}

WRONG_ANSWER = '''### Performance Analysis
Skip work.

### Algorithm Design
Return the input.

### Code Implementation
```python
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        return x + 1
```
'''


def smoke_tasks():
    from cudal1.tasks import resolve_task

    return [resolve_task(i, size="smoke") for i in TASK_IDS]


def first_prompts(device: str = "cpu") -> dict[str, str]:
    from cudal1.train.common import first_prompt

    return {t.id: first_prompt(t, device).text for t in smoke_tasks()}


def sft_records(device: str = "cpu") -> list[dict]:
    prompts = first_prompts(device)
    return [{"task_id": tid, "prompt": prompts[tid], "completion": ANSWERS[tid]} for tid in TASK_IDS]


def build_tiny(out_dir: Path, extra_texts: list[str] = (), seed: int = 0) -> str:
    """A ~0.3M-parameter Llama and a BPE tokenizer trained on the prompts and answers used in the tests."""
    from scratch_model import build_scratch_model

    texts = list(first_prompts().values()) + list(ANSWERS.values()) + [WRONG_ANSWER] + list(extra_texts)
    return build_scratch_model(out_dir, texts * 4, vocab_size=1200, hidden=64, layers=2, heads=4, seed=seed)

HACK_ANSWER = '''### Performance Analysis
The same inputs come back every call.

### Algorithm Design
Cache outputs by input address.

### Code Implementation
```python
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.cache = {}

    def forward(self, x):
        key = x.data_ptr()
        if key in self.cache:
            return self.cache[key]
        out = torch.nn.functional.silu(x)
        self.cache[key] = out
        return out
```
'''


class ScriptedTeacher:
    """A real OpenAI-compatible HTTP server (stdlib) whose answers are scripted per task: the teacher LLM
    cannot run here, the client, the HTTP path, parsing and judging are the real ones."""

    def __init__(self, script: dict[str, list[str]]):
        import http.server
        import json
        import threading

        self.script = script
        self.requests: list[str] = []
        self._lock = threading.Lock()
        teacher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with teacher._lock:
                    task = next(t for t in teacher.script if f"task {t})" in prompt)
                    n = sum(1 for r in teacher.requests if r == task)
                    teacher.requests.append(task)
                    answers = teacher.script[task]
                    text = answers[n % len(answers)]
                data = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                              "total_tokens": len(prompt.split()) + len(text.split())},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
