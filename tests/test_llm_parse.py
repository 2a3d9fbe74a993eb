"""Parsing LLM answers: sections, the final ModelNew block, malformed and truncated answers."""

from cudal1.policies.llm.parse import code_blocks, parse_response, sections

GOOD = '''### Performance Analysis
Implementation 2 fuses the add into the matmul.

### Algorithm Design
Use a single fused kernel.

### Code Implementation
```cpp
// a helper shown for reference
int helper();
```
```python
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def forward(self, x):
        return x * 2  # first try
```
On second thought, the final version:
```python
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def forward(self, x):
        return x + x
```
```python
model = ModelNew()  # usage, not an implementation
```
'''


def test_takes_last_closed_python_block_defining_modelnew():
    parsed = parse_response(GOOD)
    assert parsed.ok
    assert "return x + x" in parsed.source and "first try" not in parsed.source
    assert "usage" not in parsed.source
    assert parsed.analysis.startswith("Implementation 2 fuses")
    assert parsed.design == "Use a single fused kernel."
    assert parsed.missing_sections == ()
    assert [b.lang for b in parsed.blocks] == ["cpp", "python", "python", "python"]


def test_missing_sections_are_reported_but_code_is_kept():
    text = "Here you go:\n```python\nclass ModelNew(nn.Module):\n    pass\n```\n"
    parsed = parse_response(text)
    assert parsed.ok and parsed.source.startswith("class ModelNew")
    assert set(parsed.missing_sections) == {"analysis", "design", "code"}


def test_bold_and_numbered_headings_are_sections():
    text = "1. **Performance Analysis**: \nA\n\n**Algorithm Design**\nB\n\n3) Code Implementation\n```py\nclass ModelNew:\n    pass\n```"
    secs = sections(text)
    assert secs["analysis"] == "A" and secs["design"] == "B"
    assert parse_response(text).ok


def test_heading_inside_code_is_not_a_section():
    text = "### Algorithm Design\nD\n```python\n# Performance Analysis\nclass ModelNew:\n    pass\n```"
    assert "analysis" not in sections(text)


def test_no_code_block_is_malformed():
    parsed = parse_response("### Performance Analysis\nIt is fast.\n### Algorithm Design\nMake it faster.")
    assert not parsed.ok and parsed.source == ""
    assert parsed.failure == "no code block in the response"


def test_no_modelnew_is_malformed():
    parsed = parse_response("```python\nclass Model(nn.Module):\n    pass\n```")
    assert parsed.failure == "no code block defines class ModelNew"


def test_only_non_python_blocks():
    parsed = parse_response("```cuda\n__global__ void k() {}\n```")
    assert parsed.failure.startswith("no python code block")


def test_truncated_inside_code_block():
    text = "### Code Implementation\n```python\nimport torch\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return x +"
    parsed = parse_response(text, finish_reason="length")
    assert not parsed.ok
    assert parsed.failure.startswith("truncated") and "token limit" in parsed.failure
    assert parsed.source.startswith("import torch")  # the partial code is kept for the record
    assert code_blocks(text)[-1].closed is False


def test_truncated_before_any_code():
    parsed = parse_response("### Performance Analysis\nThe reference spends", finish_reason="length")
    assert parsed.failure.startswith("truncated before any code block")


def test_empty_response():
    assert parse_response("").failure == "empty response"
    assert parse_response(None).failure == "empty response"


def test_tilde_fences_and_longer_fences():
    text = "````python\nclass ModelNew:\n    s = '''```'''\n````\n"
    parsed = parse_response(text)
    assert parsed.ok and "'''```'''" in parsed.source
