"""The judge's channel: typed messages round-trip exactly, and anything else is refused."""

from __future__ import annotations

import json
import os

import pytest
import torch

from cudal1.judge import protocol as p
from cudal1.judge.transfer import CallRecord, read_call

SAMPLES = [
    p.Setup("cuda", 4, "src", "full", "cand", 7, False, 0.9, True),
    p.Trials((p.TrialSpec("t0", 1, 2, repeat_check=True), p.TrialSpec("w_reinit", 3, 4, params="reinit")), 1 << 20, (("a", "b"),)),
    p.Warmup(5, 3), p.TimeRound("r0", (1, 2), (3, 4), True), p.Profile(1, 3), p.Audit(False), p.Ping(), p.Exit(),
    p.Failure("runtime", "boom", (p.WireFinding("crash", "x"),)), p.Pong(),
    p.SetupDone((p.ParamInfo("lin.weight", (4, 3), "torch.float32"),), 0.5), p.TrialsDone(True, False),
    p.RoundDone((0.1, 0.2)), p.RoundDone((0.3,), 1), p.WarmedUp(0.012), p.Done(), p.Profiled((p.KernelTime("k", 0.5, 3),)),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg):
    kinds = {**p.REQUESTS, **p.REPLIES}
    assert p.decode(p.encode(msg), kinds) == msg


@pytest.mark.parametrize("line, why", [
    ("not json", "not JSON"),
    ('{"type": "RoundDone"}', "missing field"),
    ('{"type": "RoundDone", "times_ms": [1.0], "extra": 1}', "unknown field"),
    ('{"type": "RoundDone", "times_ms": "fast"}', "expected a list"),
    ('{"type": "RoundDone", "times_ms": [true]}', "expected a number"),
    ('{"type": "Done", "findings": [{"id": "x"}]}', "missing field"),
    ('{"type": "SetupDone", "params": [], "import_s": 0.1}', "unexpected message type"),
    ('[1, 2]', "unexpected message type"),
])
def test_malformed_replies_are_refused(line, why):
    with pytest.raises(p.ProtocolError, match=why):
        p.decode(line, {"RoundDone": p.RoundDone, "Done": p.Done, "Failure": p.Failure})


def test_non_finite_times_do_not_pass_as_numbers():
    line = p.encode(p.RoundDone((float("nan"),)))
    assert json.loads(line)["times_ms"] == [None]
    assert p.decode(line, {"RoundDone": p.RoundDone}).times_ms[0] != p.decode(line, {"RoundDone": p.RoundDone}).times_ms[0]


def _record(**extra):
    return {"leaves": [torch.ones(2)], "info": [{"kind": "tensor", "type": "torch.Tensor", "exact": True, "device": "cpu",
                                                 "value": "", "error": "", "aliases": ""}], "structure": "T", **extra}


def test_call_files_are_read_once_and_checked(tmp_path):
    path = p.call_file(str(tmp_path), "r0", 0)
    torch.save(_record(inputs_fp=[[1.0, 2.0]]), path)
    rec = read_call(path, str(tmp_path))
    assert rec.structure == "T" and rec.inputs_fp == ((1.0, 2.0),) and torch.equal(rec.leaves[0], torch.ones(2))
    assert not os.path.exists(path)  # deleted once read


def test_a_mapped_read_gives_the_same_record_refuses_links_and_deletes_the_file(tmp_path):
    """The reference's files are mapped (no copy); the checks are those of a full read."""
    from torch.utils.serialization import config

    import cudal1.judge.worker  # noqa: F401 - the worker writes its files without a zip checksum

    assert config.save.compute_crc32 is False
    x = torch.randn(64, 33)
    path = p.call_file(str(tmp_path), "r0", 0)
    torch.save(_record(out64=[x.double()]) | {"leaves": [x]}, path)
    rec = read_call(path, str(tmp_path), mmap=True)
    assert torch.equal(rec.leaves[0], x) and torch.equal(rec.out64[0], x.double())
    assert not os.path.exists(path)
    other = tmp_path / "judge"
    other.mkdir()
    torch.save(_record(), other / "expected.pt")
    link = p.call_file(str(tmp_path), "r1", 0)
    os.symlink(other / "expected.pt", link)
    with pytest.raises(p.ProtocolError, match="link"):
        read_call(link, str(tmp_path), mmap=True)
    path = p.call_file(str(tmp_path), "r2", 0)
    with open(path, "wb") as f:
        f.write(b"\x80\x04garbage")
    with pytest.raises(p.ProtocolError, match="unreadable"):
        read_call(path, str(tmp_path), mmap=True)


def test_only_sources_with_kernels_of_their_own_are_profiled():
    """The profiler's start-up (4.7 s on an H200 host) is paid where the ghost-kernel check needs
    it, or for every candidate when asked (cudal1 eval)."""
    from dataclasses import replace

    from cudal1.judge import Judge, JudgeConfig

    plain = "class ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"
    triton_src = "import triton\n@triton.jit\ndef k(x_ptr):\n    pass\n" + plain
    cuda_src = 'src = """__global__ void scale(float* x) {}"""\n' + plain
    judge = Judge("cpu")
    assert not judge.profiles(triton_src)  # no profiler on a CPU
    judge.device = "cuda:0"
    assert judge.profiles(triton_src) and judge.profiles(cuda_src) and not judge.profiles(plain)
    judge.config = replace(judge.config, profile_every_candidate=True)
    assert judge.profiles(plain)
    judge.config = replace(judge.config, profile_kernels=False)
    assert not judge.profiles(triton_src)


def test_links_foreign_folders_and_bad_contents_are_refused(tmp_path):
    folder, other = tmp_path / "work", tmp_path / "judge"
    folder.mkdir()
    other.mkdir()
    torch.save(_record(), other / "expected.pt")
    link = p.call_file(str(folder), "r0", 0)
    os.symlink(other / "expected.pt", link)  # the candidate points its output at the judge's file
    with pytest.raises(p.ProtocolError, match="link"):
        read_call(link, str(folder))
    with pytest.raises(p.ProtocolError, match="not in the worker's folder"):
        read_call(str(other / "expected.pt"), str(folder))
    for bad in ({"leaves": "x", "info": [], "structure": "T"}, _record(info=[{"kind": "tensor"}]), _record(sneaky=1), [1]):
        path = p.call_file(str(folder), "r1", 0)
        torch.save(bad, path)
        with pytest.raises(p.ProtocolError):
            read_call(path, str(folder))
    path = p.call_file(str(folder), "r2", 0)
    with open(path, "wb") as f:
        f.write(b"\x80\x04garbage")
    with pytest.raises(p.ProtocolError, match="unreadable"):
        read_call(path, str(folder))


def test_sampled_call_records_are_read_with_their_seed_and_shapes_or_refused(tmp_path):
    path = p.call_file(str(tmp_path), "r0", 0)
    torch.save(_record(sample_seed=7, sample_n=2, shapes=[[4096, 8]]), path)
    rec = read_call(path, str(tmp_path))
    assert (rec.sample_seed, rec.sample_n, rec.shapes) == (7, 2, ((4096, 8),))
    for bad in (_record(sample_seed=7), _record(sample_seed=7, sample_n=2, shapes=[[1], [2]]),
                _record(sample_seed="7", sample_n=2, shapes=[[4]]), _record(sample_seed=7, sample_n=0, shapes=[[4]]),
                _record(sample_seed=7, sample_n=2, shapes=[[-1]])):
        torch.save(bad, path)
        with pytest.raises(p.ProtocolError, match="sample"):
            read_call(path, str(tmp_path))


def test_sample_positions_follow_the_seed_alone():
    a = p.sample_indices(10**6, 42, 1000, torch.randint, torch.Generator)
    assert torch.equal(a, p.sample_indices(10**6, 42, 1000, torch.randint, torch.Generator))
    assert not torch.equal(a, p.sample_indices(10**6, 43, 1000, torch.randint, torch.Generator))
    assert a.dtype == torch.int64 and int(a.min()) >= 0 and int(a.max()) < 10**6 and a.numel() == 1000


def test_only_large_outputs_are_sampled_and_about_one_call_in_ten_is_whole():
    from cudal1.judge.worker import Worker

    small, large = torch.zeros(1024), torch.zeros(5 << 20)  # 4 KB, 20 MB
    assert Worker.draw_sample(small, 65536) is None and Worker.draw_sample(large, 0) is None
    draws = [Worker.draw_sample((large, 3), 65536) for _ in range(2000)]
    whole = sum(d is None for d in draws)
    assert 120 < whole < 290  # FULL_CALL_SHARE = 0.1 of 2000 (binomial sd 13)
    seeds = {d[0] for d in draws if d}
    assert len(seeds) == len(draws) - whole and all(d[1] == 65536 for d in draws if d)


def test_a_sampled_records_full_shapes_are_those_it_names():
    whole = CallRecord(leaves=(torch.zeros(4, 3), None), info=(), structure="T")
    sampled = CallRecord(leaves=(torch.zeros(2),), info=(), structure="T", sample_seed=1, sample_n=2, shapes=((400, 3),))
    assert whole.full_shapes() == ((4, 3), None) and sampled.full_shapes() == ((400, 3),)
