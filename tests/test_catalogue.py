"""The catalogue as data (every entry complete, ids unique, docs in sync), the example hacks in
tests/hacks/ (each found by its static pattern) and the legitimate candidates beside them
(no reject finding), and the ``cudal1 findings`` command."""

from __future__ import annotations

import ast
import json
import re
import runpy
import textwrap
from pathlib import Path

import pytest
import torch

from cudal1.judge.catalogue import (
    SECTIONS, CatalogueError, finding, get_pattern, load_catalogue, runtime_patterns, scan_source, static_patterns,
)
from cudal1.judge.catalogue.docs import render_findings_doc
from cudal1.judge.verdict import VERDICTS

ROOT = Path(__file__).resolve().parent.parent
HACKS = ROOT / "tests" / "hacks"
HACK_FILES = sorted(HACKS.glob("*.py"))
LEGIT_FILES = sorted((HACKS / "legit").glob("*.py"))

RUNTIME_IDS = """output-not-tensor output-shape-mismatch output-dtype-mismatch output-device-mismatch
output-mismatch nonfinite-output unwritten-output strict-tolerance-fails input-mutated input-specialized
stochastic-reference nondeterministic-reference timed-output-mismatch timer-tampered
leftover-threads leftover-processes global-state-changed lower-precision-flags remeasure-disagrees
ghost-kernel l2-persistence-set sandbox-denied candidate-exit missing-modelnew signature-mismatch
build-failed crash timeout input-generation-tampered reference-module-tampered harness-tampered dispatch-override
untimed-work reply-malformed output-aliases-input output-storage-reused timed-behaviour-differs parameter-specialized
parameters-not-probed reference-process-tampered speedup-not-significant timing-unreliable""".split()


def header(path: Path) -> dict:
    """The ``# key: value`` lines at the top of an example (see tests/hacks/README.md)."""
    text = path.read_text()
    fields = dict(re.findall(r"^# ([a-z-]+):(.*)$", text.split('"""', 1)[0], re.MULTILINE))
    for required in ("target", "expect-verdict", "expect-findings"):
        assert required in fields, f"{path.name}: missing '# {required}:' header line"

    def ids(name: str) -> list[str]:
        return [s.strip() for s in fields.get(name, "").split(",") if s.strip()]

    return {
        "source": text,
        "target": ROOT / fields["target"].strip(),
        "verdict": fields["expect-verdict"].strip(),
        "findings": ids("expect-findings"),
        "one_of": ids("expect-one-of"),
        "may": ids("may-also-find"),
        "requires": ids("requires"),
    }


# --- the catalogue ---------------------------------------------------------------------------
def test_catalogue_loads_with_enough_entries():
    cat = load_catalogue()
    assert len(static_patterns()) >= 25
    assert sorted(p.id for p in runtime_patterns()) == sorted(RUNTIME_IDS)
    assert len(cat) == len(static_patterns()) + len(runtime_patterns())


def test_every_entry_has_every_section():
    for p in load_catalogue().values():
        for s in SECTIONS:
            assert str(getattr(p, s)).strip(), f"{p.id} lacks {s}"
        assert (p.detector is not None) == (p.kind == "static"), p.id


def test_runtime_severities():
    rejects = [i for i in RUNTIME_IDS if i.startswith("output-")] + ["nonfinite-output", "timed-output-mismatch"]
    warns = ["strict-tolerance-fails", "global-state-changed", "lower-precision-flags", "ghost-kernel",
             "remeasure-disagrees", "stochastic-reference"]
    assert all(get_pattern(i).severity == "reject" for i in rejects)
    assert all(get_pattern(i).severity == "warn" for i in warns)


def _write(tmp_path, entries: str) -> str:
    p = tmp_path / "patterns.yaml"
    p.write_text("patterns:\n" + textwrap.indent(textwrap.dedent(entries), ""))
    return str(p)


GOOD = """
- id: demo
  name: Demo
  category: demo
  severity: warn
  kind: runtime
  description: d
  why: w
  example: e
  fix: f
"""


def test_validation_names_entry_and_missing_section(tmp_path):
    assert list(load_catalogue(_write(tmp_path, GOOD))) == ["demo"]
    with pytest.raises(CatalogueError, match=r"\(demo\).*missing section\(s\) why"):
        load_catalogue(_write(tmp_path, GOOD.replace("  why: w\n", "")))


@pytest.mark.parametrize("change,message", [
    (lambda s: s + s, "duplicate id"),
    (lambda s: s.replace("kind: runtime", "kind: static\n  detector: nope"), "need a detector"),
    (lambda s: s.replace("kind: runtime", "kind: runtime\n  detector: side_stream"), "no detector"),
    (lambda s: s.replace("severity: warn", "severity: fatal"), "severity"),
    (lambda s: s.replace("id: demo", "id: Demo_Id"), "kebab-case"),
    (lambda s: s + "  extra: 1\n", "unknown key"),
])
def test_validation_errors(tmp_path, change, message):
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_write(tmp_path, change(GOOD)))


def test_get_pattern_and_finding():
    assert get_pattern("side-stream").kind == "static"
    with pytest.raises(KeyError, match="side-stream"):
        get_pattern("side-stram")
    f = finding("ghost-kernel", "no kernel of ext ran")
    assert (f.id, f.severity) == ("ghost-kernel", "warn")


# Where the judge reports a runtime finding: Evidence.add(ID, ...), finding(ID, ...) (the
# catalogue's constructor), the worker's self.finding(ID, ...), compare's c.fail(ID, ...).
FINDING_CALL = re.compile(r'(?:\.add|\bfinding|\.fail)\(\s*"([a-z0-9][a-z0-9-]*)"')
SEVERITY_LITERAL = re.compile(r'(?:\.add|\.finding|\.fail)\(\s*[^,()]+,\s*"(?:reject|warn)"')


def _library_sources():
    return sorted((ROOT / "src" / "cudal1").rglob("*.py"))


def test_every_finding_id_in_the_source_is_in_the_catalogue():
    from cudal1.judge.protocol import ERROR_VERDICTS

    used = {fid: "protocol.ERROR_VERDICTS" for _, fid in ERROR_VERDICTS.values()}
    for path in _library_sources():
        for m in FINDING_CALL.finditer(path.read_text()):
            used.setdefault(m.group(1), str(path.relative_to(ROOT)))
    assert len(used) >= 40, "the call-site pattern no longer finds the judge's findings"
    unknown = {fid: where for fid, where in used.items() if fid not in load_catalogue()}
    assert not unknown, f"finding ids used in src/ but missing from patterns.yaml: {unknown}"


def test_runtime_findings_take_their_severity_from_the_catalogue():
    """No call site writes a severity or builds a Finding itself (only the catalogue and the
    verdict's own decoding do), so an entry's severity is the one every finding of it carries."""
    for path in _library_sources():
        rel = path.relative_to(ROOT / "src" / "cudal1")
        text = path.read_text()
        assert not SEVERITY_LITERAL.search(text), f"{rel}: a finding with a literal severity"
        if rel.parts[:2] != ("judge", "catalogue") and rel != Path("judge/verdict.py"):
            assert not re.search(r"\bFinding\(", text), f"{rel}: builds a Finding; use catalogue.finding(id, message)"


def test_candidate_process_findings_get_catalogue_severity():
    from cudal1.judge.protocol import Failure, WireFinding
    from cudal1.judge.session import Evidence

    ev = Evidence()
    ev.take(Failure("runtime", "x", (WireFinding("global-state-changed", "m"), WireFinding("made-up", "n"))))
    assert [(f.id, f.severity) for f in ev.findings] == [("global-state-changed", "warn"), ("reply-malformed", "reject")]


def test_findings_doc_is_up_to_date():
    doc = ROOT / "docs" / "findings.md"
    assert doc.read_text() == render_findings_doc(), "run: python scripts/gen_findings_doc.py"


def test_findings_doc_has_every_section_of_every_entry():
    doc = render_findings_doc()
    for p in load_catalogue().values():
        start = doc.index(f'<a id="{p.id}"></a>')
        section = doc[start:doc.find("<a id=", start + 1)]
        for title in ("**What it does**", "**Why is this bad?**", "**Example**", "**Use instead**"):
            assert title in section, f"{p.id}: {title}"


# --- example hacks ---------------------------------------------------------------------------
def test_enough_hacks_cover_the_field():
    assert len(HACK_FILES) >= 15
    expected = {i for f in HACK_FILES for i in header(f)["findings"]}
    needed = {"side-stream", "tensor-subclass", "pointer-keyed-cache", "result-cache", "call-counting",
              "empty-return", "inputs-override", "timer-patching", "threads", "input-mutated", "kernel-fallback",
              "lower-precision", "global-state", "input-specialized", "env-read", "file-access", "network-access",
              "child-process", "sleep-or-spin"}
    assert needed <= expected, needed - expected


@pytest.mark.parametrize("path", HACK_FILES, ids=[p.name for p in HACK_FILES])
def test_hack_header_is_valid(path):
    h = header(path)
    assert h["target"].is_file(), h["target"]
    assert h["verdict"] in VERDICTS
    assert h["findings"], "a hack must name what catches it"
    cat = load_catalogue()
    named = h["findings"] + h["one_of"] + h["may"]
    assert all(i in cat for i in named), [i for i in named if i not in cat]
    assert set(h["requires"]) <= {"cuda", "triton", "cpu"}
    # accepted only when everything that catches it is a warning; rejected needs a reject
    severities = {cat[i].severity for i in h["findings"] + h["one_of"]}
    assert (h["verdict"] == "accepted") == ("reject" not in severities), (h["verdict"], severities)
    tree = ast.parse(h["source"])
    assert any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body)


@pytest.mark.parametrize("path", HACK_FILES, ids=[p.name for p in HACK_FILES])
def test_hack_static_findings_match_header(path):
    h = header(path)
    found = {f.id for f in scan_source(h["source"], h["target"].read_text(), strict=True)}
    static_expected = {i for i in h["findings"] if get_pattern(i).kind == "static"}
    assert static_expected <= found, f"not found: {static_expected - found}"
    allowed = set(h["findings"]) | set(h["may"])
    assert found <= allowed, f"found but not in the header: {found - allowed}"


@pytest.mark.parametrize("path", LEGIT_FILES, ids=[p.name for p in LEGIT_FILES])
def test_legit_candidate_has_no_reject_finding(path):
    h = header(path)
    assert h["verdict"] == "accepted"
    findings = scan_source(h["source"], h["target"].read_text(), strict=True)
    assert [f for f in findings if f.severity == "reject"] == []
    assert {f.id for f in findings} == {i for i in h["findings"] if get_pattern(i).kind == "static"}


def test_legit_candidates_cover_the_brief():
    names = {p.name for p in LEGIT_FILES}
    assert {"cpp_openmp.py", "algebraic.py", "cuda_graph.py", "triton_relu.py", "conv_channels_last.py"} <= names


@pytest.mark.parametrize("name", ["algebraic.py", "conv_channels_last.py", "cuda_graph.py"])
def test_legit_cpu_candidates_match_their_reference(name):
    h = header(HACKS / "legit" / name)
    ref = runpy.run_path(str(h["target"]))
    cand = runpy.run_path(str(HACKS / "legit" / name))
    torch.manual_seed(0)
    model = ref["Model"](*ref["get_init_inputs"]())
    torch.manual_seed(0)
    new = cand["ModelNew"](*ref["get_init_inputs"]())
    inputs = ref["get_inputs"]()
    torch.testing.assert_close(new(*inputs), model(*inputs), atol=1e-4, rtol=1e-4)


# --- the CLI -----------------------------------------------------------------------------------
def test_cli_lists_all(capsys):
    from cudal1.cli.main import main

    assert main(["findings", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} == set(load_catalogue())
    assert main(["findings"]) == 0
    assert "side-stream" in capsys.readouterr().out


def test_cli_explains_one(capsys):
    from cudal1.cli.main import main

    assert main(["findings", "pointer-keyed-cache"]) == 0
    out = capsys.readouterr().out
    for title in ("What it does", "Why is this bad?", "Example", "Use instead"):
        assert title in out
    assert main(["findings", "crash", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["severity"] == "reject"
    assert main(["findings", "no-such-id"]) == 2
