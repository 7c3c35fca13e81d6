"""What a tabular run writes beside ``model.joblib``: leaderboard, feature importances (CSV + SVG), card section."""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge.tabular import scoring

_IMPORTANCE_ROWS = 1000  # rows scored per permutation (a sample of larger sets)


def write_leaderboard(folder: Path, search, final, candidates) -> pd.DataFrame:
    """``leaderboard.csv``: the final model, then the ensembles it was chosen over and every trial, best first.

    ``default`` marks a family's library-default trial, ``ensemble_weight`` each trial's share of the final model.
    """
    import optuna

    study = optuna.load_study(study_name=search.settings.study_name, storage=search.storage)
    weights = {o.number: w for o, w in final.members}

    def combined(candidate, model: str) -> dict:
        return {
            "model": model,
            "how": candidate.how,
            "family": "+".join(sorted({o.family for o, _ in candidate.members})),
            "trial": None,
            "default": False,
            "state": "COMPLETE",
            "score": candidate.score,
            "fit_time_s": sum(o.fit_time_s for o, _ in candidate.members),
            "ensemble_weight": 1.0 if candidate is final else 0.0,
            "params": json.dumps({f"trial{o.number}": round(w, 4) for o, w in candidate.members}),
        }

    rows = [combined(c, c.how) for c in candidates if c is not final and c.how != "best_trial"]
    for trial in study.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.WAITING:  # queued starting points the budget did not reach
            continue
        started, completed = trial.datetime_start, trial.datetime_complete
        fit_time_s = (completed - started).total_seconds() if completed is not None and started is not None else None
        default = bool(trial.user_attrs.get("default"))
        params = trial.user_attrs.get("variant", {}) if default else trial.params
        rows.append(
            {
                "model": f"trial{trial.number}",
                "how": "trial",
                "family": trial.params.get("family", search.families[0]),
                "trial": trial.number,
                "default": default,
                "state": trial.state.name,
                "score": trial.value,
                "fit_time_s": fit_time_s,
                "ensemble_weight": weights.get(trial.number, 0.0),
                "params": json.dumps({k: v for k, v in params.items() if k != "family"}),
            }
        )
    board = pd.DataFrame(rows).astype({"trial": "Int64"})
    complete = board["state"] == "COMPLETE"
    board = pd.concat(
        [
            pd.DataFrame([combined(final, "final")]),
            board[complete].sort_values(
                "score", ascending=not scoring.GREATER_IS_BETTER[search.metric], kind="stable"
            ),
            board[~complete],
        ]
    ).astype({"trial": "Int64"})
    board.insert(0, "rank", range(1, len(board) + 1))
    board = board.rename(columns={"score": f"validation_{search.metric}"})
    board.to_csv(folder / "leaderboard.csv", index=False)
    return board


def write_importances(folder: Path, model, search, eval_set, seed: int, seconds: float = 30.0) -> pd.DataFrame:
    """Permutation importance of each raw input column (on the eval rows, else a training sample).

    The drop in the search metric when a column's values are shuffled, reported per user column rather than per
    encoded feature. ``model`` is the ensemble's heaviest member (its first fold model, in the same voting
    wrapper): scoring every member for every shuffle would cost more than the search on wide tables. It runs
    within about ``seconds`` (a share of the run's time budget): one timed prediction sizes the rows scored and the
    repeats (3 down to 1).
    """
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    from trainforge.tabular.ensemble import predict_encoded

    problem = search.problem
    if eval_set is not None:
        X, Y, weight = eval_set
    else:
        X, Y, weight = problem.X, problem.Y, problem.weight
    rows = np.random.default_rng(seed).permutation(len(X))[:_IMPORTANCE_ROWS]
    with threadpool_limits(limits=1):  # as the search's fits: one thread beats contention on a busy machine
        started = time.monotonic()
        predict_encoded(model, problem, X.iloc[rows])
        per_call = max(time.monotonic() - started, 1e-4)
    if per_call * len(X.columns) * 3 > seconds:  # fewer rows first (the cost is mostly per row) ...
        keep = min(len(rows), max(100, int(len(rows) * seconds / (per_call * len(X.columns) * 3))))
        per_call *= keep / len(rows)
        rows = rows[:keep]
    repeats = max(1, min(3, int(seconds / (per_call * len(X.columns)))))  # ... then fewer repeats
    X, Y = X.iloc[rows].reset_index(drop=True), [y[rows] for y in Y]
    weight = None if weight is None else weight[rows]
    sign = 1.0 if scoring.GREATER_IS_BETTER[search.metric] else -1.0

    def scorer(estimator, frame, index):
        positions = np.asarray(index, dtype=int)
        predictions = predict_encoded(estimator, problem, frame)
        truths = [y[positions] for y in Y]
        return sign * scoring.score(search.metric, truths, predictions, None if weight is None else weight[positions])

    with threadpool_limits(limits=1):
        result = permutation_importance(
            model, X, np.arange(len(X)), scoring=scorer, n_repeats=repeats, random_state=seed, n_jobs=1
        )
    table = pd.DataFrame(
        {"feature": list(X.columns), "importance": result.importances_mean, "std": result.importances_std}
    )
    table = table.sort_values("importance", ascending=False, kind="stable")
    table.to_csv(folder / "feature_importances.csv", index=False)
    (folder / "feature_importance.svg").write_text(importance_svg(table), encoding="utf-8")
    return table


def importance_svg(
    table: pd.DataFrame,
    top: int = 15,
    width: int = 520,
    title: str = "permutation importance of the heaviest ensemble member",
) -> str:
    """A dependency-free horizontal bar chart of the ``top`` importances (``feature``, ``importance`` columns)."""
    shown = table.head(top)
    bar_h, left, pad = 18, 170, 10
    height = pad * 2 + bar_h * len(shown) + 20
    peak = max(float(shown["importance"].max()), 1e-12)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{pad}" y="{pad + 8}">{escape(title)}</text>',
    ]
    for i, (name, value) in enumerate(zip(shown["feature"], shown["importance"], strict=True)):
        y = pad + 20 + i * bar_h
        length = max(0.0, float(value)) / peak * (width - left - 70)
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(str(name))[:26]}</text>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{length:.1f}" height="{bar_h - 5}" fill="#1f77b4"/>')
        parts.append(f'<text x="{left + length + 4:.1f}" y="{y + 12}">{float(value):.4f}</text>')
    return "".join(parts) + "</svg>"


def card_section(run_dir: Path, config) -> str:
    """Markdown for the model card: the top of the leaderboard, the importance plot and joblib usage."""
    board = pd.read_csv(run_dir / "leaderboard.csv").head(10)
    score = next(c for c in board.columns if c.startswith("validation_"))
    lines = [
        "## Leaderboard",
        "",
        f"Validation: {_search_text(run_dir)}; `leaderboard.csv` lists every trial (`default`: the family's "
        "library defaults, always tried first under the same folds).",
        "",
        f"| rank | model | family | {score} | fit time (s) | ensemble weight |",
        "|---|---|---|---|---|---|",
    ]
    for row in board.itertuples(index=False):
        value = "" if pd.isna(getattr(row, score)) else f"{getattr(row, score):.4f}"
        seconds = "" if pd.isna(row.fit_time_s) else f"{row.fit_time_s:.1f}"
        model = f"final ({row.how})" if row.model == "final" else row.model + (" (default)" if row.default else "")
        lines.append(f"| {row.rank} | {model} | {row.family} | {value} | {seconds} | {row.ensemble_weight:.3f} |")
    lines += [
        "",
        "## Feature importance",
        "",
        "![feature importance](feature_importance.svg)",
        "",
        "Values in `feature_importances.csv`.",
        "",
        "## Use it",
        "",
        "```python",
        "import joblib",
        "import pandas as pd",
        "",
        f'model = joblib.load("{run_dir}/model.joblib")  # needs scikit-learn, xgboost, lightgbm; not trainforge',
        'rows = pd.read_csv("new_rows.csv")  # the training columns, without the target(s)',
        "print(model.predict(rows))"
        + ("\nprint(model.predict_proba(rows))" if config.task == "tabular_classification" else ""),
        "```",
        "",
        f"Or: `trainforge predict {run_dir} --input new_rows.csv --output predictions.csv`.",
        "",
    ]
    return "\n".join(lines)


def _search_text(run_dir: Path) -> str:
    """The search's settings and target rule, as the last ``train_started`` event recorded them."""
    path = run_dir / "events.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    for line in reversed(lines):
        event = json.loads(line)
        if event.get("event") == "train_started" and "search" in event:
            target = event.get("target")
            return event["search"] + (f"; target: {target}" if target else "")
    return "see leaderboard.csv"
