"""The soak tool without services: the MemUsage parser, the growth rule on synthetic series, the writers, and
the CLI's bad input and run loop with Docker, Locust and the clock replaced by fakes."""

import json
import random
import types

import pytest

from loadtest.runs import soak
from loadtest.runs.soak import GROWS, HOLDS, MIB, TOO_SHORT, Tolerance, judge

MEM = soak.MEMORY


@pytest.mark.parametrize(
    "text, expected",
    [
        ("45.2MiB / 23.4GiB", 45.2 * MIB),
        ("512KiB / 1GiB", 512 * 1024),
        ("1.5GiB / 8GiB", 1.5 * 1024**3),
        ("0B / 0B", 0),
        ("980kB / 2GB", 980_000),
        ("12.5MB / 2GB", 12_500_000),
        ("3GB / 8GB", 3e9),
        ("17B / 1GiB", 17),
    ],
)
def test_parse_size(text, expected):
    assert soak.parse_size(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "--", "12 parsecs / 1GiB", "MiB / 1GiB"])
def test_parse_size_refuses_what_it_does_not_know(text):
    with pytest.raises(ValueError, match="unrecognised memory size"):
        soak.parse_size(text)


def test_parse_stats_names_series_by_service():
    out = ('{"ID":"abc123def456","Name":"session-lab-app1-1","MemUsage":"50MiB / 1GiB"}\n'
           '{"ID":"fff000111222","Name":"session-lab-redis-1","MemUsage":"4MiB / 1GiB"}\n')
    ids = {"abc123def456" + "0" * 52: "app1", "fff000111222" + "1" * 52: "redis"}
    assert soak.parse_stats(out, ids) == {"memory:app1": 50 * MIB, "memory:redis": 4 * MIB}


def test_info_field():
    info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
    assert soak.info_field(info, "used_memory") == 1048576
    with pytest.raises(ValueError, match="no used_memory"):
        soak.info_field("NOAUTH Authentication required.", "used_memory")


def series(values, interval=10.0):
    return [(i * interval, v) for i, v in enumerate(values)]


def noisy(n, level, spread, seed=1):
    rng = random.Random(seed)
    return [level + rng.uniform(-spread, spread) for _ in range(n)]


def test_flat_with_noise_holds():
    # 60 samples, 10 s apart, 120 s warm-up: 48 judged, +-2 MiB noise around 60 MiB
    verdict = judge(series(noisy(60, 60 * MIB, 2 * MIB)), 120, MEM)
    assert verdict["verdict"] == HOLDS and verdict["samples"] == 48


def test_steady_growth_grows():
    # 0.5 MiB per sample: about 24 MiB over the judged part, on top of the noise
    values = [v + i * 0.5 * MIB for i, v in enumerate(noisy(60, 60 * MIB, 1 * MIB))]
    verdict = judge(series(values), 120, MEM)
    assert verdict["verdict"] == GROWS and verdict["growth"] > verdict["allowed"]


def test_one_step_up_early_then_flat_holds():
    values = noisy(60, 60 * MIB, 1 * MIB)
    values = [v + (30 * MIB if i >= 15 else 0) for i, v in enumerate(values)]  # step just after warm-up
    assert judge(series(values), 120, MEM)["verdict"] == HOLDS


def test_one_step_up_late_then_flat_holds():
    # A step in the last third: last - first is large, but the middle third stayed where the first was.
    for seed in range(20):  # the middle third's margin, not the noise, decides
        values = [v + (30 * MIB if i >= 45 else 0) for i, v in enumerate(noisy(60, 60 * MIB, 1 * MIB, seed))]
        assert judge(series(values), 120, MEM)["verdict"] == HOLDS, seed


def test_growth_below_the_floor_holds():
    # steady, but only 5 MiB in all: below the 8 MiB floor (and 10 % of 20 MiB is less than that)
    values = [20 * MIB + i * 5 * MIB / 60 for i in range(60)]
    verdict = judge(series(values), 120, MEM)
    assert verdict["verdict"] == HOLDS and verdict["allowed"] == 8 * MIB


def test_redis_keys_use_their_own_floor():
    keys = Tolerance(0.10, 50, "keys")
    assert judge(series([100 + i for i in range(60)]), 120, keys)["verdict"] == HOLDS  # +45 keys: below 50
    assert judge(series([100 + 3 * i for i in range(60)]), 120, keys)["verdict"] == GROWS


def test_too_few_samples_is_too_short():
    verdict = judge(series([1.0] * 17), 120, MEM)  # 12 before the warm-up ends, 5 after
    assert verdict["verdict"] == TOO_SHORT and "5 samples after the 120 s warm-up" in verdict["why"]


def test_missing_samples_do_not_count():
    values = [1.0 * MIB] * 13 + [None] * 10 + [1.0 * MIB] * 3
    verdict = judge(series(values), 120, MEM)
    assert verdict["verdict"] == TOO_SHORT and verdict["missing"] == 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["--warmup", "600", "--duration", "600"], "--warmup (600 s) must be shorter than --duration (600 s)"),
        (["--interval", "0"], "--interval must be above 0"),
        (["--interval", "-5"], "--interval must be above 0"),
        (["--mode", "random"], "unknown routing mode random: choose from"),
        (["--duration", "ten"], "argument --duration: invalid float value: 'ten'"),
        (["--duration", "60", "--warmup", "30", "--interval", "10"], "only 4 samples would follow the warm-up"),
        (["--users", "0"], "--users at least 1"),
    ],
)
def test_bad_input_exits_2(monkeypatch, capsys, args, message):
    monkeypatch.setattr(soak, "require_stack", lambda: pytest.fail("bad input must be refused before Docker"))
    assert soak.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("soak: ") and message in err and "Traceback" not in err


def test_a_missing_docker_is_a_lab_error(monkeypatch, capsys):
    def no_docker():
        raise soak.LabError("docker is not installed (see README: Requirements)")
    monkeypatch.setattr(soak, "require_stack", no_docker)
    assert soak.main([]) == 1 and "docker is not installed" in capsys.readouterr().err


def synthetic_samples(grow_app2=False, n=61):
    samples = []
    levels = zip(noisy(n, 80 * MIB, MIB, 1), noisy(n, 80 * MIB, MIB, 2), noisy(n, 9 * MIB, 0.2 * MIB, 3))
    for i, (a, b, lb) in enumerate(levels):
        t = i * 10.0
        samples += [(t, "memory:app1", a), (t, "memory:app2", b + (i * 0.6 * MIB if grow_app2 else 0)),
                    (t, "memory:lb", lb if i != 30 else None),  # one failed sample: a gap
                    (t, "redis:keys", 400.0 + (i % 5) * 10), (t, "redis:used_memory", 3 * MIB + (i % 3) * 0.1 * MIB)]
    return samples


META = {"duration_s": 600, "warmup_s": 120, "interval_s": 10, "users": 30, "mode": "sticky"}


def test_the_writers_produce_soak_md_json_and_png(tmp_path, capsys):
    assert soak.finish(tmp_path, synthetic_samples(grow_app2=True), META, 0) == 1
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["series"]["memory:app2"]["verdict"] == GROWS
    assert report["series"]["memory:app1"]["verdict"] == HOLDS
    assert report["series"]["memory:lb"]["missing"] == 1
    keys = report["series"]["redis:keys"]
    assert (keys["relative_tolerance"], keys["floor"], keys["unit"]) == (0.1, 50, "keys")
    assert "median of the last third" in report["rule"]
    md = (tmp_path / "soak.md").read_text()
    assert "| series | after warm-up start | end | growth | verdict |" in md
    assert "| memory:app2 |" in md and "GROWS" in md and "| redis:keys | " in md
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert "keeps growing: memory:app2" in capsys.readouterr().out


def test_a_flat_run_exits_0_and_an_interrupted_one_keeps_130(tmp_path):
    assert soak.finish(tmp_path, synthetic_samples(), META, 0) == 0
    assert soak.finish(tmp_path, synthetic_samples(), META, 130) == 130


def test_a_run_too_short_to_judge_exits_2(tmp_path, capsys):
    assert soak.finish(tmp_path, synthetic_samples(n=15), META, 0) == 2
    assert "too short to judge" in capsys.readouterr().err
    assert json.loads((tmp_path / "soak.json").read_text())["series"]["memory:app1"]["verdict"] == TOO_SHORT


class FakeLocust:
    returncode = None

    def __init__(self):
        self.signals = []

    def poll(self):
        return self.returncode

    def send_signal(self, sig):
        self.signals.append(sig)
        self.returncode = 0

    def wait(self, timeout=None):
        return 0


@pytest.fixture
def fake_lab(monkeypatch):
    """Everything main() touches outside this process: a clock, the routing mode, Locust and the samples."""
    lab = types.SimpleNamespace(now=0.0, mode="round-robin", switches=[], locust=FakeLocust(), interrupt_at=None)

    def sleep(seconds):
        lab.now += seconds

    def take_sample(ids):
        if lab.interrupt_at is not None and lab.now >= lab.interrupt_at:
            raise KeyboardInterrupt
        if lab.now == 50:
            return {"memory:app1": None, **dict.fromkeys(soak.REDIS_SERIES)}, ["docker stats failed: boom"]
        return {"memory:app1": 50 * MIB + lab.now * 0.2 * MIB, "redis:keys": 100.0, "redis:used_memory": 2.0 * MIB}, []

    def switch_mode(mode):
        lab.switches.append(mode)
        lab.mode = mode

    monkeypatch.setattr(soak, "time", types.SimpleNamespace(monotonic=lambda: lab.now, sleep=sleep, time=lambda: 1e9,
                                                            strftime=soak.time.strftime, gmtime=soak.time.gmtime))
    monkeypatch.setattr(soak, "require_stack", lambda: None)
    monkeypatch.setattr(soak, "current_mode", lambda: lab.mode)
    monkeypatch.setattr(soak, "switch_mode", switch_mode)
    monkeypatch.setattr(soak.locust_run, "start", lambda folder, users, run_time_s, *rest: lab.locust)
    monkeypatch.setattr(soak, "containers", lambda: {"abc": "app1"})
    monkeypatch.setattr(soak, "take_sample", take_sample)
    return lab


def test_a_run_samples_judges_and_restores_the_routing_mode(fake_lab, tmp_path, capsys):
    code = soak.main(["--duration", "100", "--warmup", "20", "--interval", "5", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1  # app1 grows 0.2 MiB/s, 16 MiB in the judged 80 s
    assert fake_lab.switches == ["sticky", "round-robin"] and fake_lab.locust.signals
    rows = (tmp_path / "samples.csv").read_text().splitlines()
    assert rows[0] == "t,series,value" and len(rows) == 1 + 21 * 3 and "50.0,memory:app1," in rows
    assert "[   0/100 s] (warm-up) memory MiB app1=50.0 | redis keys=100 used=2.0 MiB" in out
    assert "MISSING: docker stats failed: boom" in out
    assert json.loads((tmp_path / "soak.json").read_text())["series"]["memory:app1"]["missing"] == 1


def test_ctrl_c_writes_what_was_gathered_and_exits_130(fake_lab, tmp_path, capsys):
    fake_lab.interrupt_at = 60
    code = soak.main(["--duration", "100", "--warmup", "20", "--interval", "5", "--out", str(tmp_path)])
    assert code == 130 and fake_lab.mode == "round-robin" and fake_lab.locust.signals
    assert "interrupted" in capsys.readouterr().err
    assert (tmp_path / "soak.md").exists() and (tmp_path / "soak.png").stat().st_size > 0
