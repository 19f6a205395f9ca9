"""Every ``--optimizer`` of ``python -m fastcnn train`` trains the default model with its
default learning rate: no divergence, no guard warning, a useful test accuracy."""

import json

import pytest

from fastcnn.cli import main
from fastcnn.cli.train import DEFAULT_LR
from fastcnn.optim.optimizers import _REGISTRY as OPTIMIZERS


def test_every_optimizer_has_a_default_rate():
    assert set(DEFAULT_LR) == set(OPTIMIZERS)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_default_rate_trains_the_default_model(optimizer, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTCNN_NO_DOWNLOAD", "1")
    assert main(["train", "--optimizer", optimizer, "--epochs", "2", "--seed", "0",
                 "--out", str(tmp_path / optimizer)]) == 0
    err = capsys.readouterr().err
    assert "warning: fit:" not in err, err          # neither a stop nor the 3x warning
    record = json.loads((tmp_path / optimizer / "history.json").read_text())
    assert record["diverged"] is None
    assert record["test_accuracy"] > 0.85, (optimizer, record["test_accuracy"])
