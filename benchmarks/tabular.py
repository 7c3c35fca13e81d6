"""Benchmark: trainforge tabular vs a default XGBoost model and AutoGluon ``best_quality``, at equal time, held out.

Tables (no download; every one is real data):

    breast_cancer, wine, iris, digits  scikit-learn's bundled classification sets (569, 178, 150, 1,797 rows)
    diabetes                           scikit-learn's bundled regression set (442 rows; a whole-number target)
    conll_entities                     count regression: named entities per sentence of CoNLL-2003 train (14,041
                                       rows) from surface features of its tokens (capitalised/upper-case/digit
                                       tokens, runs of capitalised words, length...); needs ../shared/data
    bccd_cells                         count regression: blood cells per BCCD smear photo (364 rows) from colour
                                       statistics of the image (channel means and spreads on a 6x8 grid); needs
                                       ../shared/data and Pillow

statsmodels' bundled count sets (e.g. randhie) would join when statsmodels is installed; it is not here.

Every contender gets the same 75/25 split (stratified for classification, seed 0) and is scored on the same held-out
rows: log loss (the primary score) and accuracy for classification, RMSE (primary) and R² for regression.
trainforge (``params.preset: best``, ``search.timeout`` = the budget) and AutoGluon (``presets="best_quality"``,
``time_limit`` = the budget, ``eval_metric`` = the primary score) get the same time; the default XGBoost model is
``XGBClassifier()`` / ``XGBRegressor()`` with ``random_state`` fixed.

Run:  python benchmarks/tabular.py [--time-limit 60] [--datasets breast_cancer wine ...]
      [--autogluon-python /path/to/venv/bin/python] [--shared-data ../shared/data]

AutoGluon pins other versions of pandas and friends, so it lives in its own virtualenv
(`python -m venv ag && ag/bin/pip install torch==2.13.0 "autogluon.tabular[lightgbm,xgboost]"`); pass that
interpreter with --autogluon-python and the AutoGluon contender runs there on the same CSV files.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets, metrics
from sklearn.model_selection import train_test_split

SEED = 0
HERE = Path(__file__).resolve().parent
PRIMARY = {"classification": "log_loss", "regression": "rmse"}


def _bundled(loader: Callable) -> Callable[[Path], pd.DataFrame]:
    def load(_shared: Path) -> pd.DataFrame:
        bunch = loader(as_frame=True)
        frame = bunch.frame.rename(columns={bunch.target.name: "target"})
        frame.columns = [re.sub(r"\W+", "_", str(c)) for c in frame.columns]
        return frame

    return load


def conll_entities(shared: Path) -> pd.DataFrame:
    """One row per CoNLL-2003 training sentence: surface features of its tokens; target = entity count."""
    path = shared / "conll2003" / "train.txt"
    rows, tokens, tags = [], [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.strip():
            token, tag = line.rsplit(" ", 1)
            tokens.append(token)
            tags.append(tag)
            continue
        if tokens and tokens[0] != "-DOCSTART-":
            rows.append({**_sentence_features(tokens), "target": sum(t.startswith("B-") for t in tags)})
        tokens, tags = [], []
    return pd.DataFrame(rows)


def _sentence_features(tokens: list[str]) -> dict[str, float]:
    title = [bool(re.fullmatch(r"[A-Z][a-z].*", t)) for t in tokens]
    upper = [bool(re.fullmatch(r"[A-Z]{2,}", t)) for t in tokens]
    capital = [a or b for a, b in zip(title, upper, strict=True)]
    runs = sum(1 for i, c in enumerate(capital) if c and (i == 0 or not capital[i - 1]))
    return {
        "tokens": len(tokens),
        "title_tokens": sum(title[1:]),
        "upper_tokens": sum(upper),
        "capital_runs": runs - int(capital[0]),
        "first_capital": int(capital[0]),
        "digit_tokens": sum(any(ch.isdigit() for ch in t) for t in tokens),
        "punctuation": sum(not any(ch.isalnum() for ch in t) for t in tokens),
        "hyphenated": sum("-" in t.strip("-") for t in tokens),
        "mean_length": float(np.mean([len(t) for t in tokens])),
        "lower_tokens": sum(t.islower() for t in tokens),
    }


def bccd_cells(shared: Path) -> pd.DataFrame:
    """One row per BCCD photo: RGB means and spreads overall and on a 6x8 grid of grey means; target = cell count."""
    from PIL import Image

    folder = shared / "regression_bccd_counts"
    rows = []
    for split in sorted(folder.glob("*.csv")):
        for file_name, count in pd.read_csv(split)[["file_name", "cell_count"]].itertuples(index=False):
            image = np.asarray(Image.open(folder / file_name).convert("RGB"), dtype=float) / 255.0
            row = {f"{c}_mean": image[..., i].mean() for i, c in enumerate("rgb")}
            row |= {f"{c}_std": image[..., i].std() for i, c in enumerate("rgb")}
            grey = image.mean(axis=2)
            h, w = grey.shape
            for gy in range(6):
                for gx in range(8):
                    cell = grey[gy * h // 6 : (gy + 1) * h // 6, gx * w // 8 : (gx + 1) * w // 8]
                    row[f"grey_{gy}{gx}"] = cell.mean()
            rows.append({**row, "target": int(count)})
    return pd.DataFrame(rows)


DATASETS: dict[str, tuple[str, Callable[[Path], pd.DataFrame], str | None]] = {
    "breast_cancer": ("classification", _bundled(datasets.load_breast_cancer), None),
    "wine": ("classification", _bundled(datasets.load_wine), None),
    "iris": ("classification", _bundled(datasets.load_iris), None),
    "digits": ("classification", _bundled(datasets.load_digits), None),
    "diabetes": ("regression", _bundled(lambda **kw: datasets.load_diabetes(scaled=False, **kw)), None),
    "conll_entities": ("regression", conll_entities, "conll2003/train.txt"),
    "bccd_cells": ("regression", bccd_cells, "regression_bccd_counts/train.csv"),
}


def load(name: str, shared: Path) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    kind, loader, _ = DATASETS[name]
    frame = loader(shared)
    stratify = frame["target"] if kind == "classification" else None
    train, test = train_test_split(frame, test_size=0.25, random_state=SEED, stratify=stratify)
    return kind, train.reset_index(drop=True), test.reset_index(drop=True)


def score(kind: str, truth, prediction, probabilities=None) -> dict[str, float]:
    if kind == "classification":
        labels = sorted(pd.unique(truth))
        return {
            "log_loss": metrics.log_loss(truth, probabilities, labels=labels),
            "accuracy": metrics.accuracy_score(truth, prediction),
        }
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth, prediction))),
        "r2": metrics.r2_score(truth, prediction),
    }


def run_xgboost(kind: str, train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict, float]:
    import xgboost

    started = time.monotonic()
    model = (xgboost.XGBClassifier if kind == "classification" else xgboost.XGBRegressor)(random_state=SEED)
    model.fit(train.drop(columns="target"), train["target"])
    X = test.drop(columns="target")
    probabilities = model.predict_proba(X) if kind == "classification" else None
    return score(kind, test["target"], model.predict(X), probabilities), time.monotonic() - started


def run_trainforge(
    kind: str, train: pd.DataFrame, test: pd.DataFrame, time_limit: int, folder: Path, n_jobs: int
) -> tuple[dict, float, str]:
    import joblib

    from trainforge.config.loading import load_config
    from trainforge.training.driver import run

    train.to_csv(folder / "train.csv", index=False)
    started = time.monotonic()
    config = load_config(
        {
            "task": f"tabular_{kind}",
            "data": {"source": str(folder / "train.csv"), "eval_fraction": 0},  # every training row, as the others
            "training": {"seed": SEED},
            "params": {"target_columns": ["target"], "preset": "best", "n_jobs": n_jobs},
            "search": {"timeout": time_limit},
            "output": {"dir": str(folder / "run"), "report_to": ["none"]},
        }
    )
    result = run(config)
    seconds = time.monotonic() - started
    model = joblib.load(result.output_dir / "model.joblib")
    X = test.drop(columns="target")
    probabilities = model.predict_proba(X) if kind == "classification" else None
    board = pd.read_csv(result.output_dir / "leaderboard.csv")
    final = board.iloc[0]
    chosen = f"{final['how']}: {final['family']}"
    return score(kind, test["target"], model.predict(X), probabilities), seconds, chosen


_AUTOGLUON_SCRIPT = """
import json, sys, time
import pandas as pd
from autogluon.tabular import TabularPredictor
folder, kind, limit, dystack = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "on"
train, test = pd.read_csv(folder + "/train.csv"), pd.read_csv(folder + "/test.csv")
started = time.monotonic()
predictor = TabularPredictor(
    label="target",
    problem_type="multiclass" if kind == "classification" and train["target"].nunique() > 2
    else "binary" if kind == "classification" else "regression",
    eval_metric="log_loss" if kind == "classification" else "root_mean_squared_error",
    path=folder + "/ag",
    verbosity=0,
)
predictor.fit(train, presets="best_quality", time_limit=limit, **({} if dystack else {"dynamic_stacking": False}))
X = test.drop(columns="target")
out = {"prediction": predictor.predict(X).tolist(), "seconds": time.monotonic() - started}
if kind == "classification":
    proba = predictor.predict_proba(X)
    out["probabilities"] = proba[sorted(proba.columns)].to_numpy().tolist()
print(json.dumps(out))
"""


def _one_hot(labels: pd.Series) -> np.ndarray | None:
    """Certain probabilities for ``labels`` (only to name the metrics of a failed run)."""
    classes = sorted(pd.unique(labels))
    return np.eye(len(classes))[[classes.index(v) for v in labels]]


def run_autogluon(
    python: str, kind: str, train: pd.DataFrame, test: pd.DataFrame, time_limit: int, folder: Path
) -> tuple[dict, float, str]:
    """AutoGluon in its own interpreter (virtualenv), on the same split written as CSV.

    ``best_quality`` first runs a dynamic-stacking check on a hold-out (DyStack); when that finds no model within a
    short budget, AutoGluon 1.6 then stops with "Learner is already fit". The table is then fitted again with the
    same preset and budget and ``dynamic_stacking=False``, and the row says so.
    """
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    for dystack in ("on", "off"):
        shutil.rmtree(folder / "ag", ignore_errors=True)
        command = [python, "-c", _AUTOGLUON_SCRIPT, str(folder), kind, str(time_limit), dystack]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            break
        print(f"AutoGluon (DyStack {dystack}) failed: {done.stderr.strip().splitlines()[-1]}", flush=True)
    else:
        names = score(kind, test["target"], test["target"], _one_hot(test["target"]))
        return {m: float("nan") for m in names}, 0.0, "failed"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    probabilities = np.asarray(result["probabilities"]) if kind == "classification" else None
    note = "" if dystack == "on" else "DyStack off (on: failed at this budget)"
    return score(kind, test["target"], result["prediction"], probabilities), result["seconds"], note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=int, default=60, help="seconds for trainforge and AutoGluon per table")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--autogluon-python", help="interpreter of a virtualenv that has autogluon.tabular")
    parser.add_argument("--shared-data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--n-jobs", type=int, default=1, help="trainforge's params.n_jobs")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        needs = DATASETS[name][2]
        if needs is not None and not (args.shared_data / needs).exists():
            print(f"{name}: skipped, {args.shared_data / needs} is absent", flush=True)
            continue
        kind, train, test = load(name, args.shared_data)
        with tempfile.TemporaryDirectory() as tmp:
            contenders: dict[str, tuple] = {"xgboost default": run_xgboost(kind, train, test)}
            contenders["trainforge best"] = run_trainforge(kind, train, test, args.time_limit, Path(tmp), args.n_jobs)
            if args.autogluon_python:
                contenders["autogluon best_quality"] = run_autogluon(
                    args.autogluon_python, kind, train, test, args.time_limit, Path(tmp)
                )
        for who, (scores, seconds, *chosen) in contenders.items():
            rows.append(
                {
                    "table": name,
                    "kind": kind,
                    "rows": len(train) + len(test),
                    "contender": who,
                    **scores,
                    "time_s": round(seconds, 1),
                    "final": chosen[0] if chosen else "",
                }
            )
        print(pd.DataFrame(rows[-len(contenders) :]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    if args.json:
        args.json.write_text(table.to_json(orient="records", indent=1))
    print(f"\ntime limit {args.time_limit}s per table; AutoGluon {'included' if args.autogluon_python else 'skipped'}")
    print(summary(table).to_markdown(index=False, floatfmt=".4f"))


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per table: each contender's primary held-out score (lower is better) and trainforge's standing."""
    out = []
    for name, group in table.groupby("table", sort=False):
        kind = group["kind"].iloc[0]
        primary = PRIMARY[kind]
        scores = dict(zip(group["contender"], group[primary], strict=True))
        row = {"table": name, "rows": group["rows"].iloc[0], "score": primary, **scores}
        if kind == "classification":
            row |= {f"{k} acc": v for k, v in zip(group["contender"], group["accuracy"], strict=True)}
        tf, xgb = scores["trainforge best"], scores["xgboost default"]
        row["tf <= xgb"] = tf <= xgb
        if "autogluon best_quality" in scores:
            row["tf <= ag"] = tf <= scores["autogluon best_quality"]
        out.append(row)
    return pd.DataFrame(out)


if __name__ == "__main__":
    main()
