"""``python -m fastcnn search``: an end-to-end coarse -> fine run on two local workers,
an in-process quiet run, and one-line errors for bad options."""

import json
import os
import subprocess
import sys

import pytest

from _helpers import subprocess_env
from fastcnn.cli import main
from fastcnn.tuning import SearchResults


def test_coarse_then_fine_on_two_workers(tmp_path):
    out = tmp_path / "run"
    env = subprocess_env()
    proc = subprocess.run([sys.executable, "-m", "fastcnn", "search", "--trials", "3",
                           "--epochs", "1", "--refine", "1", "--fine-epochs", "1",
                           "--top-k", "2", "--ensemble", "2", "--workers", "2",
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("fastcnn search: digits (1150 train, 287 validation, 360 test)")
    assert "LocalExecutor(workers=2, threads_per_worker=" in lines[0]
    progress = [line for line in lines if line.startswith("[")]
    assert [p.split(" done")[0] for p in progress] == ["[1/3", "[2/3", "[3/3", "[1/1"]
    assert all(" running, " in p and " diverged" in p for p in progress)
    assert lines[-1].startswith("test accuracy: best model ")
    for name in ("results.csv", "results.json", "search.png", "best_model.npz",
                 "summary.json"):
        assert (out / name).stat().st_size > 0, name
    results = SearchResults.from_json(out / "results.json")
    assert len(results) == 4 and {r["stage"] for r in results} == {"coarse", "fine"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ensemble_k"] == 2 and 0 <= summary["ensemble_test_accuracy"] <= 1
    assert summary["fine_space"]["lr"]["class_name"] == "LogUniform"
    assert f"{summary['best_test_accuracy']:.4f}" in lines[-1]


def test_quiet_in_process(tmp_path, capsys):
    assert main(["search", "--trials", "2", "--epochs", "1", "--workers", "0", "--quiet",
                 "--lr-range", "1e-3,1e-2", "--ensemble", "5", "--out",
                 str(tmp_path / "q")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("2 trials (")
    assert "ensemble of the top 2 " in lines[1]             # only 2 trials to ensemble
    results = SearchResults.from_json(tmp_path / "q" / "results.json")
    assert all(1e-3 <= r["params"]["lr"] <= 1e-2 for r in results)
    assert {r["worker"] for r in results} == {os.getpid()}


@pytest.mark.parametrize("argv, message", [
    (["--trials", "0"], "--trials must be a positive int; got 0."),
    (["--lr-range", "1e-2"], "--lr-range must be LOW,HIGH with 0 < LOW < HIGH"),
    (["--reg-range", "0,1"], "--reg-range must be LOW,HIGH"),
    (["--dataset", "imagenet"], "--dataset must be one of digits"),
    (["--model", "lenet5"], "--model lenet5 / --optimizer adam:"),
    (["--val-split", "1.5"], "--val-split must lie in (0, 1); got 1.5."),
    (["--workers", "-1"], "--workers must be a non-negative int; got -1."),
])
def test_bad_options_are_one_line_errors(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--out", str(tmp_path / "x")] + argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m fastcnn search: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_search_where_every_trial_diverges_says_so(tmp_path, capsys):
    assert main(["search", "--trials", "2", "--epochs", "1", "--workers", "0", "--quiet",
                 "--lr-range", "50,100", "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no trial finished" in err[0] and "'diverged': 2" in err[0]
