"""The demo pipeline (make demo) end to end, shortened to a few iterations."""

import re

import pytest

from cplir.demo import run_demo
from cplir.engine.run_log import read_log

SHORT = ["train.iterations=2", "train.optim.warmup_iters=1", "train.val_every=2", "train.save_every=2",
         "data.max_val_images=1"]


@pytest.mark.slow
def test_demo_trains_evaluates_and_writes_a_report_and_reruns_cleanly(tmp_path, capsys):
    for _ in range(2):  # a second run replaces the first instead of mixing with it
        assert run_demo(str(tmp_path), SHORT) == 0
    out = capsys.readouterr().out
    assert "protocol: promptir" in out and "average" in out and "RANDOM VGG" in out
    run = tmp_path / "embedded-three-task-cpl"
    assert [r["iteration"] for r in read_log(run, "val")] == [0, 2]
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", html)
    assert {"figures/train_loss.png", "figures/cpr_terms.png", "figures/val_l1.png", "figures/val_psnr.png",
            "figures/examples.png"} <= set(images)
    assert all((tmp_path / image).stat().st_size > 1000 for image in images)
    assert "RANDOM VGG weights" in html and "denoise_25" in html
