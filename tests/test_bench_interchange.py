"""CUDA-L1 JSON lines: reading (unknown fields kept), mapping rows to suite tasks or to tasks of
their own, writing a candidates folder, and the one-error rule for rows that cannot be used."""

from __future__ import annotations

import json

import pytest

from cudal1.bench.interchange import (
    EXTRA_DIR, InterchangeError, InterchangeRow, import_rows, map_rows, read_rows, run_rows, write_rows,
)
from cudal1.bench.runner import BenchError, candidates_from_jsonl
from cudal1.bench.stats import TaskResult
from cudal1.judge.verdict import Verdict
from cudal1.tasks import load_suite

OWN_REF = '''import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super(Model, self).__init__()

    def forward(self, x):
        return torch.tanh(x) * 2

batch_size = 16
dim = 32

def get_inputs():
    return [torch.randn(batch_size, dim)]

def get_init_inputs():
    return []
'''
CAND = "import torch\nclass ModelNew(torch.nn.Module):\n    def forward(self, A, B):\n        return A @ B\n"


@pytest.fixture(scope="module")
def suite():
    return load_suite("builtin").tasks


def _rows(tmp_path, rows) -> str:
    p = tmp_path / "h100.json"  # CUDA-L1 names its JSON-lines files .json
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(p)


def test_read_keeps_unknown_fields_and_scores(tmp_path):
    path = _rows(tmp_path, [
        {"level_id": 1, "task_id": 1, "ref_code": "x", "custom_code": CAND, "cuda_graph_code": "g", "cudnn_code": "c",
         "score_default": 2.75, "score_torch_compile_default": 2.457, "score_cudnn": 2.9},
        {"level_id": 1, "task_id": 2, "ref_code": "y", "custom_code": None, "score_default": None},
    ])
    rows = read_rows(path)
    assert rows[0].scores == {"score_default": 2.75, "score_torch_compile_default": 2.457, "score_cudnn": 2.9}
    assert rows[0].extra == {"cuda_graph_code": "g", "cudnn_code": "c"}
    assert rows[1].custom_code is None
    out = tmp_path / "again.jsonl"
    write_rows(rows, out)
    assert [json.loads(line) for line in out.read_text().splitlines()][0]["cudnn_code"] == "c"
    # a JSON array works too
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([r.to_json() for r in rows]))
    assert read_rows(arr) == rows


def test_bad_lines_name_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"level_id": 1, "task_id": 1}\nnot json\n')
    with pytest.raises(InterchangeError, match=r"bad.jsonl:2"):
        read_rows(p)
    p.write_text('{"task_id": 1}\n')
    with pytest.raises(InterchangeError, match="level_id"):
        read_rows(p)


def test_map_rows_to_suite_and_own_tasks(suite):
    matmul = next(t for t in suite if t.id == "level1/1_Square_Matmul")
    rows = [
        InterchangeRow(1, 1, "import torch  # CUDA-L1's version, other sizes", CAND),
        InterchangeRow(1, 900, OWN_REF, CAND),
        InterchangeRow(2, 901, None, CAND),
        InterchangeRow(1, 1, None, CAND),
    ]
    m = map_rows(rows, suite, size="full", origin="x.jsonl")
    assert [(t.id, code is not None) for t, code, _ in m.items] == [(matmul.id, True), ("level1/900_Imported", True)]
    own = m.items[1][0]
    assert own.source == OWN_REF and own.level == 1 and own.number == 900 and own.input_specs == ("float32[16, 32]",)
    assert any("differs" in n for n in m.notes)
    assert len(m.errors) == 2 and "no ref_code" in m.errors[0] and "more than once" in m.errors[1]


def test_bench_rejects_unusable_rows_in_one_error(tmp_path, suite):
    _rows(tmp_path, [{"level_id": 2, "task_id": 901, "custom_code": CAND},
                            {"level_id": 3, "task_id": 902, "custom_code": CAND}])
    with pytest.raises(BenchError, match=r"2 row\(s\)"):
        candidates_from_jsonl(tmp_path / "h100.json", suite, "full")
    ok = _rows(tmp_path, [{"level_id": 1, "task_id": 1, "custom_code": CAND, "score_default": 1.5},
                          {"level_id": 1, "task_id": 900, "ref_code": OWN_REF, "custom_code": CAND}])
    cs = candidates_from_jsonl(tmp_path / "h100.json", suite, "full")
    assert ok and set(cs.sources) == {"level1/1_Square_Matmul", "level1/900_Imported"}
    assert [t.id for t in cs.extra_tasks] == ["level1/900_Imported"]
    assert cs.meta["level1/1_Square_Matmul"]["published"] == {"score_default": 1.5}


def test_import_rows_writes_a_candidates_folder(tmp_path, suite):
    rows = [InterchangeRow(1, 1, None, CAND, {"score_default": 2.0}, {"cudnn_code": "c"}),
            InterchangeRow(1, 2, None, None, {"score_default": None}),
            InterchangeRow(1, 900, OWN_REF, CAND)]
    s = import_rows(rows, suite, tmp_path / "out")
    assert s.written == ["level1/1_Square_Matmul", "level1/900_Imported"] and s.without_code == ["level1/2_Rectangular_Matmul"]
    assert (tmp_path / "out/level1/1_Square_Matmul.py").read_text() == CAND
    assert (tmp_path / "out" / EXTRA_DIR / "reference/level1/900_Imported.py").read_text() == OWN_REF
    assert (tmp_path / "out" / EXTRA_DIR / "candidates/level1/900_Imported.py").read_text() == CAND
    published = [json.loads(x) for x in (tmp_path / "out/published.jsonl").read_text().splitlines()]
    assert published[0] == {"level_id": 1, "task_id": 1, "task": "level1/1_Square_Matmul", "cudnn_code": "c",
                            "score_default": 2.0}
    # the imported folder's extra tasks load as a suite of their own
    extra = load_suite(tmp_path / "out" / EXTRA_DIR / "reference")
    assert [t.id for t in extra.tasks] == ["level1/900_Imported"] and not extra.errors


def test_run_rows_scores_are_ratios(suite):
    def v(kind, s=None):
        return Verdict(kind, kind == "accepted", s, None, None, None, (), "GPU", "2.x")

    matmul = next(t for t in suite if t.id == "level1/1_Square_Matmul")
    res = [TaskResult(matmul.id, 1, v("accepted", 3.0), {"eager": v("accepted", 1.0), "compile": v("accepted", 1.5)}),
           TaskResult("level1/2_Rectangular_Matmul", 1, v("incorrect"), {"eager": v("accepted", 1.0)})]
    rows = run_rows(res, {matmul.id: matmul}, {matmul.id: CAND})
    assert rows[0]["score_default"] == 3.0 and rows[0]["score_torch_compile_default"] == 2.0
    assert rows[0]["ref_code"] == matmul.source and rows[0]["custom_code"] == CAND
    assert rows[1]["score_default"] is None and rows[1]["task_id"] == 2 and rows[1]["verdict"] == "incorrect"
    assert "score_torch_compile_default" not in rows[1]
    assert rows[0]["speedup_ci"] is None  # a verdict without an interval
    with_ci = Verdict("accepted", True, 3.0, None, None, None, (), "GPU", "2.x", speedup_ci=(2.8, 3.2))
    rows = run_rows([TaskResult(matmul.id, 1, with_ci, {})], {matmul.id: matmul}, {matmul.id: CAND})
    assert rows[0]["speedup_ci"] == [2.8, 3.2]
