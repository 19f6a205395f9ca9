"""``python -m fastcnn train``: an end-to-end run on digits into a temporary folder, and
one-line errors (exit status 2, no traceback) for bad options and missing data."""

import json
import os
import subprocess
import sys

import pytest
from _helpers import subprocess_env

from fastcnn.cli import main


@pytest.fixture(autouse=True)
def _no_downloads_and_restored_env(monkeypatch):
    monkeypatch.setenv("FASTCNN_NO_DOWNLOAD", "1")
    # run() may set OMP_WAIT_POLICY; monkeypatch restores the environment afterwards
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))


def test_end_to_end_on_digits(tmp_path):
    out = tmp_path / "run"
    env = subprocess_env(FASTCNN_BACKEND="numpy")
    proc = subprocess.run([sys.executable, "-m", "fastcnn", "train", "--epochs", "2",
                           "--out", str(out), "--seed", "1"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("fastcnn train: digits (1293 train, 144 validation, 360 test)")
    assert [line.split(" - ")[0] for line in lines[1:3]] == ["Epoch 1/2", "Epoch 2/2"]
    assert lines[-1].startswith("test accuracy: ")
    assert "Traceback" not in proc.stderr
    for name in ("history.json", "model.npz", "curves.png", "lr.png", "filters.png",
                 "update_ratios.png"):
        assert (out / name).stat().st_size > 0, name
    record = json.loads((out / "history.json").read_text())
    assert record["resolved"]["model"] == "digits_cnn" and record["resolved"]["epochs"] == 2
    assert len(record["history"]["loss"]) == 2 and len(record["history"]["lr"]) == 2
    assert record["history"]["lr"][1] < record["history"]["lr"][0]      # exponential decay
    acc = float(lines[-1].split()[2])
    assert acc == pytest.approx(record["test_accuracy"], abs=1e-4) and acc > 0.8
    from fastcnn.train.model import load_model
    assert load_model(out / "model.npz").count_params() == 30_634


def test_quiet_in_process(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTCNN_BACKEND", "numpy")
    assert main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "q"),
                 "--lr-decay", "1", "--optimizer", "sgd", "--augment", "shift",
                 "--val-split", "0", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("test accuracy:")
    record = json.loads((tmp_path / "q" / "history.json").read_text())
    assert record["resolved"]["optimizer"] == "sgd" and record["resolved"]["lr"] == 0.05
    assert "val_loss" not in record["history"]


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "imagenet"], "--dataset must be one of digits, mnist, fashion-mnist, "
                                "cifar10; got 'imagenet'."),
    (["--model", "alexnet"], "--model must be one of"),
    (["--optimizer", "lion"], "--optimizer must be one of"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--epochs", "0"], "--epochs must be a positive int; got 0."),
    (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'. Hint: see"),
    (["--bogus"], "unrecognized arguments: --bogus. Hint: see"),
    (["--val-split", "1.5"], "--val-split must lie in [0, 1); got 1.5."),
    (["--augment", "rotate"], "--augment: get: augmentation name must be one of"),
    (["--data-dir", "x"], "--data-dir is not used with --dataset digits"),
    (["--model", "lenet5"], "--model lenet5 does not fit digits images (1, 8, 8)"),
    (["--backend", "fortran"], "--backend:"),
], ids=["dataset", "model", "optimizer", "lr", "epochs", "epochs-type", "unknown-option",
        "val-split", "augment", "data-dir-digits", "model-too-big", "backend"])
def test_bad_options_are_one_line_errors(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "r")] + argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m fastcnn train: error: "), err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "cifar10"])
def test_missing_data_files_are_one_line_errors(dataset, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", dataset, "--data-dir", str(empty), "--out",
              str(tmp_path / "r")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data set files not found" in err
    assert str(empty) in err and "--data-dir" in err
    assert not (tmp_path / "r").exists()                 # nothing written before the data
