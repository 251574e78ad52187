"""The demo pipeline (make demo) end to end, shortened to a few iterations: PromptIR against CPL in one report."""

import json
import re

import pytest

from cplir.cli import main
from cplir.demo import output_folder, run_demo
from cplir.errors import ConfigError
from cplir.engine.run_log import read_log

SHORT = ["train.iterations=2", "train.optim.warmup_iters=1", "train.val_every=2", "train.save_every=2",
         "data.max_val_images=1"]
FIGURES = {"figures/curves.png", "figures/examples.png", "figures/routing_entropy.png",
           "figures/mutual_information.png", "figures/selection_maps_promptir.png", "figures/selection_maps_cpl.png"}


@pytest.mark.slow
def test_demo_compares_promptir_and_cpl_in_one_report(tmp_path, capsys):
    assert run_demo(str(tmp_path), SHORT) == 0
    out = capsys.readouterr().out
    assert "protocol promptir" in out and "features pyramid" in out
    for run in ("embedded-three-task-promptir", "embedded-three-task-cpl"):  # same budget, seed and data
        assert [r["iteration"] for r in read_log(tmp_path / run, "val")] == [0, 2]
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", html)
    assert FIGURES <= set(images)
    assert all((tmp_path / image).stat().st_size > 1000 for image in images)
    for task in ("denoise_15", "denoise_25", "denoise_50", "derain", "dehaze", "average"):
        row = re.search(rf"\n{task} +(.*)\n", html)[1]  # degraded, PromptIR, CPL, difference: PSNR / SSIM each
        assert len(re.findall(r"[-+]?\d+\.\d+ / [-+]?\d\.\d{3}", row)) == 4, row
    assert "protocol promptir" in html and "not comparable to the papers" in html
    assert "astronaut, coffee, motorcycle" in html and "features pyramid" in html
    summary = json.loads((tmp_path / "demo.json").read_text())
    degraded, cpl = summary["degraded"]["tasks"]["derain"]["psnr"], summary["CPL"]["tasks"]["derain"]["psnr"]
    assert row.split()[0] == f"{summary['degraded']['average']['psnr']:.2f}" and degraded > 0 and cpl > 0
    routing = summary["CPL"]["routing"]["prompt1"]
    assert {"entropy_bits", "selection_entropy_bits", "mutual_information"} <= set(routing)
    assert 0 <= routing["entropy_bits"]["all"] <= routing["max_entropy_bits"]


def test_demo_never_deletes_an_existing_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    precious = out / "embedded-three-task-cpl" / "checkpoints" / "iter_00000100.pth"  # a run trained into runs/
    precious.parent.mkdir(parents=True)
    precious.write_text("weights")
    runs = ["embedded-three-task-promptir", "embedded-three-task-cpl"]
    assert output_folder(out, runs, overwrite=False) == tmp_path / "runs-2"
    assert "runs exists and is kept; writing to" in capsys.readouterr().out
    (tmp_path / "runs-2").mkdir()
    assert output_folder(out, runs, overwrite=False) == tmp_path / "runs-3"
    with pytest.raises(ConfigError, match="holds no demo results"):
        output_folder(out, runs, overwrite=True)
    assert main(["demo", "--out", str(out), "--overwrite"]) == 2
    assert "holds no demo results" in capsys.readouterr().err and precious.read_text() == "weights"
    demo = tmp_path / "demo"  # an earlier demo's folder: --overwrite replaces its results, nothing else
    for name in ("embedded-three-task-cpl/metrics.jsonl", "figures/curves.png", "report.html", "demo.json",
                 "notes.txt"):
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        (demo / name).write_text("x")
    assert output_folder(demo, runs, overwrite=True) == demo
    assert sorted(p.name for p in demo.iterdir()) == ["notes.txt"]
