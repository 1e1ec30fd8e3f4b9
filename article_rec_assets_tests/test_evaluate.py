"""The `python -m article_rec_assets.evaluate` command on a small click table."""

import numpy as np
import pandas as pd
import pytest

from article_rec_assets import evaluate


@pytest.fixture
def clicks_csv(tmp_path):
    rng = np.random.default_rng(11)
    rows = []
    start = pd.Timestamp("2024-05-01T00:00Z")
    for s in range(300):
        begin = start + pd.Timedelta(minutes=float(rng.uniform(0, 2 * 24 * 60)))
        for j in range(int(rng.integers(2, 5))):
            stamp = begin + pd.Timedelta(minutes=2 * j)
            rows.append((f"r{s % 40}", s, f"a{rng.integers(0, 25)}", stamp.isoformat()))
    path = tmp_path / "clicks.csv"
    pd.DataFrame(rows, columns=["reader_id", "session_id", "article_id", "timestamp"]).to_csv(
        path, index=False
    )
    return path


def test_prints_a_table_per_day_and_in_total(clicks_csv, tmp_path, capsys):
    folds_csv = tmp_path / "folds.csv"
    evaluate.main(
        [
            "--clicks",
            str(clicks_csv),
            "--days",
            "2024-05-02",
            "--train-days",
            "1",
            "--k",
            "5",
            "--quiet",
            "--folds-csv",
            str(folds_csv),
        ]
    )
    out = capsys.readouterr().out
    assert "### 2024-05-02 (UTC)" in out and "### all days" in out
    header = "| recommender | pairs | HR@5 | MRR@5 | NDCG@5 | coverage | fallback share |"
    assert out.count(header) == 2
    for name in ("last-hour popularity", "successor counts", "session co-occurrence", "item-kNN cosine"):
        assert out.count(f"| {name} |") == 2
    folds = pd.read_csv(folds_csv)
    assert len(folds) == 12 * 5  # 12 folds x 5 baselines
    assert "ties by popularity" in out


def test_models_and_ties_are_chosen(clicks_csv, capsys):
    evaluate.main(
        [
            *("--clicks", str(clicks_csv), "--days", "2024-05-02", "--train-days", "1", "--quiet"),
            *("--models", "successors", "last-hour", "--ties", "id"),
        ]
    )
    out = capsys.readouterr().out
    assert "| successor counts |" in out and "| last-hour popularity |" in out
    assert "item-kNN" not in out and "ties by id" in out


def test_articles_need_clicks(capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--g1", "somewhere", "--articles", "a.csv", "--days", "2024-05-02"])
    assert "--articles goes with --clicks" in capsys.readouterr().err
