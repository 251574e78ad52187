"""A run folder has one writer: a second trainer is refused, a stale lock is taken over, orphaned workers stop."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cplir.cli import main
from cplir.engine.run_lock import LOCK_NAME, RunLock
from cplir.engine.run_log import read_log
from cplir.errors import RunInUseError
from trainer_fixtures import trained_run

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("lock"))


def resume_argv(cfg, *extra):
    return ["train", "--config", str(cfg.run_dir / "config.yaml"), "--resume", "auto", "--no-progress",
            "--device", "cpu", "--set", "train.iterations=4", "--set", "train.optim.schedule_iters=3", *extra]


def test_a_second_trainer_is_refused_naming_the_first(run, capsys):
    cfg, _ = run
    log_before = (cfg.run_dir / "metrics.jsonl").read_text()
    with RunLock(cfg.run_dir):  # another trainer holds the folder
        assert main(resume_argv(cfg)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"in use by another trainer (pid {os.getpid()} on host {socket.gethostname()}" in err
    assert (cfg.run_dir / "metrics.jsonl").read_text() == log_before  # nothing written
    assert not (cfg.run_dir / LOCK_NAME).exists()  # released by its owner


@pytest.mark.slow
def test_a_lock_left_by_a_killed_trainer_is_taken_over_with_a_note(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from cplir.engine.run_lock import RunLock
        RunLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(600)
        """)], env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"pid {holder.pid} "):
            RunLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to release: the file stays behind
        holder.wait(timeout=60)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
    notes = []
    lock = RunLock(tmp_path, note=notes.append).acquire()
    try:
        assert len(notes) == 1 and f"left by pid {holder.pid} on host" in notes[0]
        assert "ended without releasing it" in notes[0]
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_finished_run_leaves_no_lock_and_a_resume_needs_none(run, capsys):
    cfg, _ = run
    assert not (cfg.run_dir / LOCK_NAME).exists()
    assert main(resume_argv(cfg)) == 0
    assert "took over" not in capsys.readouterr().err
    assert not (cfg.run_dir / LOCK_NAME).exists()
    assert [r["iteration"] for r in read_log(cfg.run_dir, "train")][-1] == 4


@pytest.mark.slow
def test_torchrun_workers_exit_when_their_launcher_is_killed(tmp_path):
    """A stand-in launcher starts a worker as torchrun does (TORCHELASTIC_RUN_ID set) and is killed with -9."""
    watching = tmp_path / "watching"
    worker = textwrap.dedent(f"""
        import pathlib, time
        from cplir.engine.distributed import exit_with_launcher
        exit_with_launcher(interval=0.1, grace=2.0)
        pathlib.Path({str(watching)!r}).touch()
        while True:
            time.sleep(0.1)
        """)
    launcher = textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {worker!r}], env=dict(os.environ, TORCHELASTIC_RUN_ID="t"))
        print(child.pid, flush=True)
        time.sleep(600)
        """)
    proc = subprocess.Popen([sys.executable, "-c", launcher], env=dict(os.environ, PYTHONPATH=SRC),
                            stdout=subprocess.PIPE, text=True)
    worker_pid = int(proc.stdout.readline())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not watching.exists():  # importing torch takes a while
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _alive(worker_pid):
        time.sleep(0.2)
    alive = _alive(worker_pid)
    if alive:
        os.kill(worker_pid, signal.SIGKILL)
    assert not alive, "the orphaned worker kept running"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, already exited but not reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_every_torchrun_rank_stops_when_the_run_folder_is_held(run, tmp_path):
    cfg, _ = run
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=SRC)
    with RunLock(cfg.run_dir):
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                               "--standalone", "-m", "cplir", *resume_argv(cfg)], env=env, capture_output=True,
                              text=True, timeout=300)
    assert proc.returncode != 0  # and no rank was left waiting in a collective
    assert "cplir train: error: run folder" in proc.stderr and "in use by another trainer" in proc.stderr
    assert "cplir train: error: rank 0 could not lock the run folder" in proc.stderr
