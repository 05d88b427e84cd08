"""The report: one entry's keys and values, the table, the JSON file and the PNG chart."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from app.catalog import parse_catalog_config
from training.contract import build_contract
from training.dataset import Catalog, Split, leave_last_out
from training.report import (
    CURVE_KS,
    method_metrics,
    print_table,
    ranks_from_lists,
    score_matrix_metrics,
    top_columns,
    write_chart,
    write_json,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_ranks_from_lists_finds_each_target_or_gives_inf() -> None:
    lists = [["a", "b", "c"], ["x"], []]
    assert ranks_from_lists(lists, ["b", "y", "z"]).tolist() == [1.0, math.inf, math.inf]


def test_method_metrics_from_served_lists() -> None:
    # Three users, a catalog of 20; targets at positions 0, 12 and not served at all.
    lists = [list(range(0, 100)), list(range(5, 105)), list(range(100))]
    targets = [0, 17, 500]
    ranks = ranks_from_lists(lists, targets)
    assert ranks.tolist() == [0, 12, math.inf]
    entry = method_metrics(ranks, [items[:10] for items in lists], 20)
    assert entry["hr@10"] == pytest.approx(1 / 3)  # only rank 0
    assert entry["hr@50"] == pytest.approx(2 / 3)  # ranks 0 and 12
    assert entry["hr@100"] == pytest.approx(2 / 3)
    assert entry["ndcg@10"] == pytest.approx(1 / 3)  # 1/log2(2) for the first user only
    assert entry["mrr"] == pytest.approx((1 + 1 / 13) / 3)
    # top-10s: 0-9, 5-14, 0-9 -> 15 distinct of 20 items.
    assert entry["coverage@10"] == pytest.approx(15 / 20)
    assert entry["rmse"] is None and entry["mae"] is None
    assert len(entry["hr_curve"]) == len(CURVE_KS) == 100
    assert entry["hr_curve"][0] == pytest.approx(1 / 3)  # HR@1
    assert entry["hr_curve"][12] == pytest.approx(2 / 3)  # HR@13 includes rank 12


def test_method_metrics_of_a_rating_only_method() -> None:
    # errors 0.5 and -1.5 (the None truth is skipped): RMSE sqrt((0.25 + 2.25) / 2), MAE 1.
    entry = method_metrics(None, None, 20, np.array([4.5, 2.5, 3.0]), [4.0, 4.0, None])
    assert entry["rmse"] == pytest.approx(math.sqrt(1.25))
    assert entry["mae"] == pytest.approx(1.0)
    assert entry["hr@10"] is None and entry["hr_curve"] is None and entry["coverage@10"] is None


def toy_split() -> Split:
    """Items a-d; u1 saw a and is tested on c, u2 saw d and is tested on b."""
    config = parse_catalog_config(
        {"name": "toy", "items": {"file": "items.csv"}, "interactions": {"file": "events.csv"}}
    )
    data = Catalog.from_records(
        config,
        users={"u1": {}, "u2": {}},
        items={i: {} for i in "abcd"},
        sequences={"u1": ["a", "c"], "u2": ["d", "b"]},
    )
    return leave_last_out(data, build_contract(data, 1))


def test_top_columns_skip_seen_items_best_first() -> None:
    scores = np.array([[9.0, 1.0, 5.0, 7.0], [0.0, 3.0, 8.0, 9.0]])
    top = top_columns(scores, [np.array([0]), np.array([3])], 2)
    assert top.tolist() == [[3, 2], [2, 1]]
    assert top_columns(scores, [np.array([0]), np.array([3])], 10).shape == (2, 4)


def test_score_matrix_and_served_lists_give_the_same_entry() -> None:
    items = ["a", "b", "c", "d"]
    scores = np.array([[9.0, 1.0, 5.0, 7.0], [0.0, 3.0, 8.0, 9.0]])
    from_matrix = score_matrix_metrics(scores, toy_split(), items)
    # What the service would return: unseen items best first, as ids.
    served = [["d", "c", "b"], ["c", "b", "a"]]
    from_lists = method_metrics(
        ranks_from_lists(served, ["c", "b"]), [s[:10] for s in served], len(items)
    )
    assert from_matrix.keys() == from_lists.keys()
    for key, value in from_matrix.items():
        assert value == (pytest.approx(from_lists[key]) if value is not None else None), key
    assert from_matrix["mrr"] == pytest.approx((1 / 2 + 1 / 2) / 2)  # both targets second


def sample_report() -> dict:
    ranking = method_metrics(np.array([0, 4, 30, np.inf]), [[0, 1], [2, 3]], 10)
    weaker = method_metrics(np.array([2, 60, np.inf, np.inf]), [[0, 1], [0, 1]], 10)
    ratings = method_metrics(None, None, 10, np.array([3.0, 4.0]), [4.0, float("nan")])
    return {
        "protocol": {"dataset": "toy", "description": "leave-last-out", "seed": np.int64(7)},
        "methods": {"EASE": ranking, "popularity": weaker, "SVD": ratings},
    }


def test_table_renders_every_method_dashes_and_bold_best() -> None:
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    print_table(console, sample_report())
    plain = console.export_text(clear=False)
    for name in ("EASE", "popularity", "SVD"):
        assert name in plain
    assert "—" in plain  # SVD has no HR, the rankers no RMSE
    styled = console.export_text(styles=True)
    # EASE's HR@10 (2/4 = 0.5000) beats popularity's (1/4) and is the only one bold.
    assert "\x1b[1m0.5000" in styled
    assert "\x1b[1m0.2500" not in styled


def test_write_json_is_strict_json(tmp_path: Path) -> None:
    path = write_json(sample_report(), tmp_path / "deep" / "report.json")
    loaded = json.loads(path.read_text())  # would fail on NaN or a numpy value
    assert set(loaded["methods"]) == {"EASE", "popularity", "SVD"}
    assert loaded["protocol"]["seed"] == 7
    assert loaded["methods"]["SVD"]["hr@10"] is None
    assert loaded["methods"]["SVD"]["rmse"] == pytest.approx(1.0)  # only 3 vs 4 is known
    assert len(loaded["methods"]["EASE"]["hr_curve"]) == 100


def test_write_chart_writes_a_png(tmp_path: Path) -> None:
    path = write_chart(sample_report(), tmp_path / "hr.png")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000  # axes, two curves and a legend, not an empty canvas


def test_write_chart_without_ranking_methods_still_writes_a_png(tmp_path: Path) -> None:
    report = {"protocol": {}, "methods": {"SVD": sample_report()["methods"]["SVD"]}}
    assert write_chart(report, tmp_path / "hr.png").read_bytes()[:8] == PNG_SIGNATURE
