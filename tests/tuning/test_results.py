"""SearchResults: the table, files, refine, plot."""

import csv
import json
import math

import pytest

from _tuning_helpers import build_tiny, tiny_data
from fastcnn.tuning import LogUniform, SearchResults, Uniform, random_search


def _record(index, status="ok", acc=0.5, loss=1.0, lr=1e-3, drop=0.1, stage="coarse"):
    return {"stage": stage, "index": index, "params": {"lr": lr, "drop": drop}, "seed": index,
            "status": status, "val_accuracy": acc, "val_loss": loss, "epochs": 2,
            "time": 0.5, "first_loss": 2.3, "error": "boom" if status == "failed" else None,
            "diverged": {"epoch": 0, "batch": 3, "loss": 9.0, "first_loss": 2.3,
                         "reason": "x"} if status == "diverged" else None,
            "history": {}, "worker": 1, "model": None}


SPACE = {"lr": LogUniform(1e-5, 1e-1), "drop": Uniform(0.0, 0.5)}


def _results():
    return SearchResults([_record(0, acc=0.7, lr=1e-4), _record(1, "diverged", acc=0.1, lr=5e-2),
                          _record(2, acc=0.9, loss=0.3, lr=2e-3, drop=0.2),
                          _record(3, "failed", acc=math.nan, loss=math.nan),
                          _record(4, acc=0.9, loss=0.2, lr=4e-3, drop=0.3)], SPACE)


def test_ranking_best_top_and_counts():
    results = _results()
    assert [r["index"] for r in results] == [4, 2, 0, 1, 3]   # ties on accuracy: lower loss
    assert results.best["index"] == 4
    assert [r["index"] for r in results.top(10)] == [4, 2, 0]  # finished trials only
    assert results.counts == {"ok": 3, "diverged": 1, "failed": 1}
    with pytest.raises(ValueError, match="k must be a positive int"):
        results.top(0)


def test_table_reads_like_the_course():
    lines = str(_results()).splitlines()
    assert lines[0] == ("val_acc: 0.9000  val_loss: 0.2000  lr: 4.000e-03  drop: 0.3  "
                        "epochs: 2  0.5 s  ok  (1 / 5)")
    assert "diverged at epoch 1 batch 4" in lines[3]
    assert lines[4].endswith("failed: boom  (5 / 5)")
    assert lines[5] == "5 trials: 3 ok, 1 diverged, 1 failed"
    assert len(_results().table(2).splitlines()) == 3


def test_best_without_finished_trials_says_why():
    with pytest.raises(ValueError, match="no trial finished"):
        SearchResults([_record(0, "diverged")]).best


def test_json_round_trip_and_csv(tmp_path):
    results = _results()
    again = SearchResults.from_json(results.to_json(tmp_path / "r.json"))
    assert [r["index"] for r in again] == [r["index"] for r in results]
    assert again.space == SPACE and again.counts == results.counts
    assert math.isnan(again[-1]["val_accuracy"])
    with open(results.to_csv(tmp_path / "r.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [row["index"] for row in rows] == ["4", "2", "0", "1", "3"]
    assert rows[0]["lr"] == "0.004" and rows[0]["rank"] == "1" and rows[4]["error"] == "boom"
    (tmp_path / "other.json").write_text(json.dumps({"records": []}))
    with pytest.raises(ValueError, match="not a file written by SearchResults.to_json"):
        SearchResults.from_json(tmp_path / "other.json")


def test_refine_uses_the_top_k_finished_trials():
    fine = _results().refine(top_k=2, expand=0.0)
    assert fine["lr"].low == pytest.approx(2e-3) and fine["lr"].high == pytest.approx(4e-3)
    assert (fine["drop"].low, fine["drop"].high) == pytest.approx((0.2, 0.3))
    with pytest.raises(ValueError, match="carry no search space"):
        SearchResults([_record(0)]).refine()


def test_adding_results_ranks_both_stages_together():
    fine = SearchResults([_record(0, acc=0.95, stage="fine")])
    both = _results() + fine
    assert len(both) == 6 and both.best["stage"] == "fine" and both.space == SPACE


def test_plot_writes_a_png_with_log_axes_for_log_parameters(tmp_path):
    path = _results().plot("lr", "drop", tmp_path / "sub" / "search.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not a parameter of this search"):
        _results().plot("lr", "momentum", tmp_path / "x.png")


def test_models_of_a_real_search_come_back(tmp_path):
    (x, y), val = tiny_data()
    results = random_search(build_tiny, {"lr": LogUniform(1e-3, 1e-2)}, x, y,
                            validation_data=val, trials=2, epochs=1, seed=0)
    model = results.model()
    assert model.evaluate(*val)[1] == pytest.approx(results.best["val_accuracy"])
    no_models = random_search(build_tiny, {"lr": LogUniform(1e-3, 1e-2)}, x, y,
                              validation_data=val, trials=1, epochs=1, seed=0,
                              keep_models=False)
    with pytest.raises(ValueError, match="kept no model"):
        no_models.model()
