"""benchmarks/gpu_validate.py: items under their own limits, one result line each, resumable."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gpu_validate as gv  # noqa: E402


def ctx(tmp_path: Path) -> gv.Ctx:
    return gv.Ctx(out=tmp_path, device="cpu", suite="builtin", workers=0)


def item(name: str, limit_s: int, *argvs: list[str], skip: str = "") -> gv.Item:
    def steps(c):
        if skip:
            raise gv.Skip(skip)
        yield from argvs

    return gv.Item(name, limit_s, "test item", steps, lambda c, log: (f"{len(log.splitlines())} lines", {"log": log}))


def test_an_item_past_its_limit_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # The step starts a grandchild that would outlive it; the whole process group must go.
    code = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    t0 = time.monotonic()
    r = gv.run_item(item("slow", 3, [sys.executable, "-c", code]), ctx(tmp_path))
    assert r["status"] == "timeout" and r["rc"] == 124 and time.monotonic() - t0 < 30
    assert r["summary"].startswith("killed at its 3 s limit")
    grandchild = int(pid_file.read_text())
    time.sleep(0.5)
    assert not _running(grandchild)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait to be reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_failed_and_skipped_items_say_why_in_one_line(tmp_path):
    failed = gv.run_item(item("bad", 30, [sys.executable, "-c", "print('first'); raise SystemExit('the reason')"]),
                         ctx(tmp_path))
    assert failed["status"] == "failed" and failed["rc"] == 1 and "the reason" in failed["summary"]
    assert "\n" not in failed["summary"]
    skipped = gv.run_item(item("later", 30, skip="needs the optimize item first"), ctx(tmp_path))
    assert skipped["status"] == "skipped" and skipped["summary"] == "needs the optimize item first"
    # A later step does not run after a failed one.
    two = gv.run_item(item("two", 30, [sys.executable, "-c", "raise SystemExit(3)"],
                           [sys.executable, "-c", "print('second ran')"]), ctx(tmp_path))
    assert two["rc"] == 3 and "second ran" not in (tmp_path / "two.log").read_text()


def test_results_are_kept_and_a_rerun_skips_what_has_a_result(tmp_path, capsys):
    out = tmp_path / "out"
    assert gv.main(["--device", "cpu", "--only", "machine", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["item"] for r in lines] == ["machine"] and lines[0]["status"] == "ok"
    assert lines[0]["numbers"]["torch"] and "sandbox" in lines[0]["summary"]
    capsys.readouterr()
    assert gv.main(["--device", "cpu", "--only", "machine", "--out", str(out)]) == 0
    assert "has a result" in capsys.readouterr().out
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    assert gv.main(["--device", "cpu", "--only", "machine", "--redo", "machine", "--out", str(out)]) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_unknown_item_names_the_choices(capsys, tmp_path):
    assert gv.main(["--only", "cuda_test", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().out
    assert "no item cuda_test" in err and "cuda_tests" in err


def test_pytest_summary_counts_and_failed_ids():
    log = ("....F.\nFAILED tests/test_x.py::test_one - AssertionError\n"
           "=========== 1 failed, 5 passed, 2 skipped in 12.34s ===========\n")
    text, numbers = gv.pytest_summary(None, log)
    assert numbers["failed"] == 1 and numbers["passed"] == 5 and numbers["skipped"] == 2 and numbers["pytest_s"] == 12.34
    assert numbers["failed_tests"] == ["tests/test_x.py::test_one"] and "failed: test_one" in text


def test_task_choices_of_the_gpu_items_exist():
    """A typo in a task id costs a whole GPU item (it happened: judge_noise's default named a task
    the suite does not have)."""
    import fnmatch

    import judge_noise
    from cudal1.tasks import load_suite, resolve_task

    for spec in judge_noise.DEFAULT_TASKS.split(","):
        assert resolve_task(spec, size="smoke").id.startswith(spec)
    builtin = [t.id for t in load_suite("builtin", size="smoke").tasks]
    for glob in gv.BENCH_TASKS.split(","):
        assert any(fnmatch.fnmatch(i, glob) for i in builtin), glob
    kernelbench = Path(__file__).resolve().parents[2] / "shared" / "kernelbench"
    if kernelbench.is_dir():  # beside the checkout, as in CI
        ids = [t.id for t in load_suite(str(kernelbench), size="full").tasks]
        for glob in gv.OPTIMIZE_TASKS.split(","):
            assert any(fnmatch.fnmatch(i, glob) for i in ids), glob


def test_deadline_shares_what_is_left_in_proportion_and_keeps_a_floor():
    assert gv.deadline_limit(600, 300, left_s=1500, later_shares=[200]) == 600  # room enough: its own limit
    assert gv.deadline_limit(600, 300, left_s=900, later_shares=[300, 300]) == 300  # its third
    # An earlier item that finished early leaves more: 1200 s for shares 300 of 600 -> 600, capped by the limit.
    assert gv.deadline_limit(500, 300, left_s=1200, later_shares=[300]) == 500
    assert gv.deadline_limit(600, 300, left_s=100, later_shares=[300, 300]) == gv.MIN_ITEM_S  # late: it still runs
    assert gv.deadline_limit(30, 30, left_s=100, later_shares=[]) == 30


def test_the_planned_shares_fit_the_default_deadline():
    assert sum(i.share for i in gv.ITEMS) <= 25 * 60
    assert all(i.share <= i.limit_s for i in gv.ITEMS)


def test_a_run_under_a_deadline_applies_the_cut_limit(tmp_path, monkeypatch):
    """Two slow items under a 6 s deadline, planned shares 3:1: the first gets 4 s of the 6, the
    second what is left, at least the floor (2 s here); both run and are killed at the cut limit."""
    slow = [sys.executable, "-c", "import time; time.sleep(300)"]
    items = [replace(item("first", 600, slow), share_s=30), replace(item("second", 600, slow), share_s=10)]
    monkeypatch.setattr(gv, "ITEMS", items)
    monkeypatch.setattr(gv, "MIN_ITEM_S", 2)
    t0 = time.monotonic()
    gv.main(["--device", "cpu", "--out", str(tmp_path), "--deadline-min", "0.1"])  # 6 s
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["item"], r["status"]) for r in rows] == [("first", "timeout"), ("second", "timeout")]
    assert rows[0]["limit_s"] == 4 and rows[1]["limit_s"] == 2
    assert time.monotonic() - t0 < 30


def test_an_item_with_a_tail_runs_its_later_steps_after_a_cut_off_first(tmp_path):
    """The bench item: its report step runs on what a cut-off bench stored; the item says timeout."""
    slow = [sys.executable, "-c", "import time; time.sleep(300)"]
    report = [sys.executable, "-c", "print('report ran')"]
    r = gv.run_item(replace(item("bench", 6, slow, report), tail_s=3), ctx(tmp_path))
    assert r["status"] == "timeout" and r["rc"] == 124
    assert "report ran" in (tmp_path / "bench.log").read_text()
    assert r["wall_s"] < 6 + 5
    # Without a tail the later step does not run.
    r = gv.run_item(item("plain", 2, slow, report), ctx(tmp_path))
    assert r["status"] == "timeout" and "report ran" not in (tmp_path / "plain.log").read_text()


def test_pytest_summary_of_a_run_cut_off_counts_the_result_lines():
    """cuda_tests and corpus were cut off at their limits on an H200 with no summary line: the -v
    lines still say what passed and what failed."""
    log = ("tests/test_a.py::test_one PASSED [ 10%]\n[gw1] [ 50%] FAILED tests/test_b.py::test_two\n"
           "[gw0] [ 60%] PASSED tests/test_b.py::test_three\n[gw0] [ 70%] SKIPPED tests/test_b.py::test_four\n")
    text, numbers = gv.pytest_summary(None, log)
    assert (numbers["passed"], numbers["failed"], numbers["skipped"]) == (2, 1, 1)
    assert numbers["failed_tests"] == ["tests/test_b.py::test_two"] and "failed: test_two" in text


def test_optimize_summary_counts_a_task_nothing_beat_as_the_reference(tmp_path):
    """The user keeps the reference where no candidate won: 1.0x in the median and mean, not the
    best loser's 0.63x."""
    (tmp_path / "optimize").mkdir()
    (tmp_path / "optimize" / "results.json").write_text(json.dumps({"tasks": [
        {"task": "level1/12_Diag", "best_text": "50.00x [48.00-53.00]", "best_speedup": 50.0, "beats_reference": True,
         "wall_s": 86.0},
        {"task": "level1/23_Softmax", "best_text": "0.63x [0.55-0.66]", "best_speedup": 0.63, "beats_reference": False,
         "wall_s": 88.0}]}))
    text, numbers = gv.optimize_summary(ctx(tmp_path), "")
    assert "median 25.50x, mean 25.50x" in text and "level1/23 0.63x" in text
    assert [r["speedup"] for r in numbers["tasks"]] == [50.0, 0.63]
