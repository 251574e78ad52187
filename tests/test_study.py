"""`cplir study`: the driver on a minimal budget (killed and continued), its summary statistics and its errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cplir.cli import main
from cplir.study import VARIANTS, StudySettings, run_name, summarise

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--iterations", "8", "--seeds", "0", "--variants", "promptir", "cpl", "--evaluations", "2", "--jobs", "1",
        "--threads", "1",
        "--set", "data.crop_size=32", "--set", "data.batch_size=2", "--set", "train.optim.warmup_iters=2",
        "--set", "data.test=[{benchmark: embedded, root: embedded, split: test, options: {variant: three_task, "
        "max_size: 48}}]", "--no-progress"]


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_a_killed_study_continues_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "study"
    first = out / "runs" / run_name("promptir", 0)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    study = subprocess.Popen([sys.executable, "-m", "cplir", "study", "--out", str(out), *TINY], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: (first / "checkpoints" / "iter_00000004.pth").is_file(), 300, "the first checkpoint")
    finally:
        os.killpg(study.pid, signal.SIGKILL)  # the driver and its trainer, as a crash or kill -9 would
        study.wait()
        _wait_for(lambda: _group_gone(study.pid), 30, "the killed processes to end")
    assert not (out / "results" / "cpl-s0.json").exists() and not (out / "study.json").exists()

    assert main(["study", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "0 already trained, 2 to train" in printed
    starts = [r for r in map(json.loads, (first / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "run"]
    assert starts[0]["resumed_from"] == "" and starts[-1]["resumed_from"].endswith("iter_00000004.pth")

    payload = json.loads((out / "study.json").read_text())
    assert set(payload["summary"]) == {"promptir", "cpl"} and set(payload["runs"]) == {"promptir-s0", "cpl-s0"}
    tasks = {"denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"}
    assert set(payload["degraded"]["tasks"]) == tasks
    for name, run in payload["runs"].items():
        assert set(run["tasks"]) == tasks and run["iterations"] == 8 and run["weights"] == "ema"
        assert set(run["routing"]) == {"prompt1", "prompt2", "prompt3"}
        assert [r["iteration"] for r in run["curves"]["val"]] == [0, 4, 8]
    assert set(payload["runs"]["cpl-s0"]["term_to_l1"]) == {"cpr"}
    assert payload["runs"]["promptir-s0"]["term_to_l1"] == {}
    versus = payload["summary"]["cpl"]["vs_promptir"]
    assert versus["seeds"] == [0] and versus["beyond_noise"] is False  # one seed: never more than noise
    summary = (out / "summary.md").read_text()
    assert "| degraded input |" in summary and "| PromptIR | 1 |" in summary and "| CPL | 1 |" in summary
    assert all((out / "figures" / f).stat().st_size > 1000 for f in ("curves.png", "psnr.png", "routing.png"))
    assert "figures/curves.png" in (out / "report.html").read_text()

    scored = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    assert main(["study", "--out", str(out), *TINY]) == 0  # finished: nothing retrained or rescored
    assert "2 already trained, 0 to train" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()} == scored

    changed = [a if a != "8" else "9" for a in TINY]
    assert main(["study", "--out", str(out), *changed]) == 2
    assert "was started with iterations 8, not 9" in capsys.readouterr().err


def _run(psnr: float, seed_shift: float = 0.0) -> dict:
    tasks = {"derain": {"psnr": psnr + seed_shift, "ssim": 0.5}, "dehaze": {"psnr": psnr - seed_shift, "ssim": 0.5}}
    return {"tasks": tasks, "average": {"psnr": psnr, "ssim": 0.5}, "routing": {}, "seconds_per_iteration": 0.5,
            "term_to_l1": {}}


def test_a_difference_is_noise_unless_every_seed_agrees_and_it_exceeds_the_spread():
    settings = StudySettings(seeds=[0, 1, 2], variants=["promptir", "spm", "cpl"])
    results = {"promptir-s0": _run(20.0), "promptir-s1": _run(20.2), "promptir-s2": _run(20.1),
               "spm-s0": _run(20.1), "spm-s1": _run(20.1), "spm-s2": _run(20.3),  # +0.07 mean, within spread
               "cpl-s0": _run(20.5), "cpl-s1": _run(20.6), "cpl-s2": _run(20.7)}  # +0.5 on every seed
    summary = summarise(results, settings)
    assert summary["promptir"]["psnr"]["mean"] == pytest.approx(20.1)
    assert summary["promptir"]["psnr"]["sd"] == pytest.approx(0.1)
    assert "vs_promptir" not in summary["promptir"]
    assert summary["spm"]["vs_promptir"]["psnr_deltas"] == pytest.approx([0.1, -0.1, 0.2])
    assert summary["spm"]["vs_promptir"]["seed_spread"] == pytest.approx(0.2)
    assert summary["spm"]["vs_promptir"]["beyond_noise"] is False
    assert summary["cpl"]["vs_promptir"]["mean"] == pytest.approx(0.5)
    assert summary["cpl"]["vs_promptir"]["beyond_noise"] is True


def test_study_settings_refuse_bad_values(tmp_path, capsys):
    assert main(["study", "--out", str(tmp_path), "--variants", "promptir", "nope"]) == 2
    assert "unknown study variant nope" in capsys.readouterr().err
    assert main(["study", "--out", str(tmp_path), "--seeds", "0", "0"]) == 2
    assert "must not repeat" in capsys.readouterr().err
    assert main(["study", "--out", str(tmp_path), "--iterations", "0"]) == 2
    assert main(["study", "--out", str(tmp_path), "--iterations", "10"]) == 2  # shorter than the warm-up
    assert "warmup_iters must be between 0 and the schedule length" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_the_help_names_every_variant(capsys):
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in VARIANTS), text
