"""The SM-holding kernel of the timed call's lead-in (judge/hold.py): what can be checked without a GPU.
Its effect, side-stream work timed in full, is tests/test_judge_cuda.py's on a GPU."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cudal1.judge import hold


def test_ptx_assembles_for_hopper_with_room_for_two_full_blocks(tmp_path):
    """ptxas (with nvcc, where installed) accepts the PTX for sm_90, and its register use lets two
    1024-thread blocks share an SM's 65536 registers: the grid then takes every thread slot."""
    ptxas = shutil.which("ptxas")
    if not ptxas:
        pytest.skip("ptxas is not installed here")
    src = tmp_path / "hold.ptx"
    src.write_bytes(hold.PTX)
    res = subprocess.run([ptxas, "-arch=sm_90", "-v", str(src), "-o", str(tmp_path / "hold.cubin")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    regs = int(res.stderr.split("Used ")[1].split(" registers")[0])
    assert 2 * hold.BLOCK * regs <= 65536, res.stderr


def test_without_a_driver_the_hold_says_so(monkeypatch):
    monkeypatch.setattr(hold, "_DRIVER", None)
    with pytest.raises(hold.HoldError, match="libcuda"):
        hold.Hold(132, 2048, 0)


def test_an_sm_the_blocks_cannot_fill_is_refused(monkeypatch):
    monkeypatch.setattr(hold, "_DRIVER", {})
    with pytest.raises(hold.HoldError, match="cannot be filled"):
        hold.Hold(132, 1536, 0)
