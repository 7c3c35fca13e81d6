"""The final model: the best trial, a greedy ensemble or a stack -- whichever validates best -- as one estimator.

Every candidate is scored on the same out-of-fold predictions of the training rows:

- ``best_trial``: the best single trial (a family's defaults included), bagged over its fold models;
- ``greedy``: ensemble selection with replacement over the best trials (Caruana et al., 2004), weights = how often
  each was picked; its score is the selection's own (in-sample for the weights, so it is slightly optimistic);
- ``stack``: a linear model over the best trials' out-of-fold predictions (Wolpert, 1992; Breiman, 1996:
  logistic regression on class probabilities, non-negative least squares on numbers), scored by a nested 5-fold
  cross-validation of that linear model, and assembled as scikit-learn's ``StackingClassifier``/``Regressor``.

A candidate replaces the current choice only when it scores strictly better, so the simpler model wins ties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainforge.tabular.search import Outcome, Problem, Search

_ENSEMBLE_POOL = 20  # best trials considered by ensemble selection
_STACK_POOL = 8  # trials a stack reads: the best of each family first, then the next best
_STACK_FOLDS = 5


@dataclass
class Final:
    """One candidate final model: how it combines trials, the trials and weights, its validation score."""

    how: str  # "best_trial" | "greedy" | "stack"
    members: list[tuple[Outcome, float]]
    score: float
    meta: list = field(default_factory=list)  # stack: one fitted linear model per target


def choose(search: Search) -> tuple[Final, list[Final]]:
    """The final model and every candidate considered (best trial, then greedy and stack as ``ensemble`` allows)."""
    ranked = sorted(search.outcomes, key=lambda o: o.score, reverse=search.greater)
    candidates = [Final("best_trial", [(ranked[0], 1.0)], ranked[0].score)]
    mode = search.settings.ensemble
    if mode != "none" and len(ranked) > 1:
        candidates.append(greedy(search, ranked))
        if mode == "stack":
            stacked = stack(search, ranked)
            if stacked is not None:
                candidates.append(stacked)
    chosen = candidates[0]
    for candidate in candidates[1:]:
        if _better(candidate.score, chosen.score, search.greater):
            chosen = candidate
    return chosen, candidates


def _better(value: float, than: float, greater: bool) -> bool:
    if np.isnan(value):
        return False
    return bool(np.isnan(than) or (value > than if greater else value < than))


def greedy(search: Search, ranked: list[Outcome]) -> Final:
    """Greedy ensemble selection with replacement on the out-of-fold predictions."""
    pool = ranked[:_ENSEMBLE_POOL]
    counts = np.zeros(len(pool))
    total: list[np.ndarray] | None = None
    best_value, best_counts = pool[0].score, np.eye(len(pool))[0]
    for step in range(1, search.settings.ensemble_size + 1):
        trials = []
        for j, candidate in enumerate(pool):
            mixed = (
                candidate.oof if total is None else [(s + p) / step for s, p in zip(total, candidate.oof, strict=True)]
            )
            trials.append((search._score(mixed, search.valid_rows), j))
        value, j = (max if search.greater else min)(trials)
        counts[j] += 1
        total = list(pool[j].oof) if total is None else [s + p for s, p in zip(total, pool[j].oof, strict=True)]
        if _better(value, best_value, search.greater):
            best_value, best_counts = value, counts.copy()
    weights = best_counts / best_counts.sum()
    members = [(o, float(w)) for o, w in zip(pool, weights, strict=True) if w > 0]
    return Final("greedy", members, weighted_score(search, members))


def weighted_score(search: Search, members: list[tuple[Outcome, float]]) -> float:
    """Validation score of a weighted average of trials' out-of-fold predictions."""
    mixed = [np.asarray(sum(w * o.oof[t] for o, w in members)) for t in range(len(search.problem.targets))]
    return search._score(mixed, search.valid_rows)


def stack(search: Search, ranked: list[Outcome]) -> Final | None:
    """A linear model over the pool's out-of-fold predictions, scored by nested cross-validation.

    Returns None when the rows cannot support it (fewer than two trials, or a class with fewer rows than the nested
    folds).
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    pool = _diverse(ranked)
    problem, rows = search.problem, search.valid_rows
    if len(pool) < 2:
        return None
    weight = None if problem.weight is None else problem.weight[rows]
    metas, nested = [], []
    for t in range(len(problem.targets)):
        y = problem.Y[t][rows]
        Z = stack_features(problem, [o.oof[t] for o in pool], t)
        meta = _meta_learner(problem.kind, search.seed)
        if problem.kind == "classification":
            classes = len(problem.encoders[t].classes_)
            if len(np.unique(y)) < classes or np.bincount(y, minlength=classes).min() < _STACK_FOLDS:
                return None
            cv = StratifiedKFold(_STACK_FOLDS, shuffle=True, random_state=search.seed)
            method = "predict_proba"
        else:
            cv, method = KFold(_STACK_FOLDS, shuffle=True, random_state=search.seed), "predict"
        fit_params = None if weight is None else {"sample_weight": weight}
        nested.append(np.asarray(cross_val_predict(meta, Z, y, cv=cv, method=method, params=fit_params), dtype=float))
        metas.append(clone(meta).fit(Z, y, **(fit_params or {})))
    members = [(o, 1.0 / len(pool)) for o in pool]
    return Final("stack", members, search._score(nested, rows), metas)


def _diverse(ranked: list[Outcome]) -> list[Outcome]:
    """The best trial of each family (best first), then the next best trials, ``_STACK_POOL`` at most."""
    pool: list[Outcome] = []
    for outcome in ranked:
        if outcome.family not in {o.family for o in pool}:
            pool.append(outcome)
    pool = pool[:_STACK_POOL]
    for outcome in ranked:
        if len(pool) >= _STACK_POOL:
            break
        if outcome not in pool:
            pool.append(outcome)
    return sorted(pool, key=ranked.index)


def stack_features(problem: Problem, predictions: list[np.ndarray], target: int) -> np.ndarray:
    """The stack's inputs as scikit-learn's stacking builds them.

    Numbers as columns; class probabilities, without the first class's column when there are two (it is one minus
    the other).
    """
    columns = []
    for prediction in predictions:
        if prediction.ndim == 1:
            columns.append(prediction.reshape(-1, 1))
        elif len(problem.encoders[target].classes_) == 2:
            columns.append(prediction[:, 1:])
        else:
            columns.append(prediction)
    return np.hstack(columns)


def _meta_learner(kind: str, seed: int):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if kind == "classification":
        return LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    return LinearRegression(positive=True)  # non-negative weights: Breiman's stacked regressions


# ---------------------------------------------------------------------------------------------------- assemble


def assemble(problem: Problem, final: Final):
    """One scikit-learn estimator over raw rows.

    Best trial and greedy: weighted soft voting of every fold model (``VotingClassifier`` -- its ``le_`` maps back
    to the original labels -- or ``VotingRegressor``). Stack: ``StackingClassifier``/``Regressor`` whose estimators
    are the pool's trials (each a vote of its fold models) and whose final estimator is the fitted linear model.
    Several targets are wrapped in ``MultiOutputClassifier``/``MultiOutputRegressor``. The members are already
    fitted, so the fitted attributes are set directly instead of refitting.
    """
    from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor

    if final.how == "stack":
        voters = [_stacker(problem, final, t) for t in range(len(problem.targets))]
    else:
        voters = [_voter(problem, final.members, t) for t in range(len(problem.targets))]
    if len(voters) == 1:
        return voters[0]
    wrapper = (MultiOutputClassifier if problem.kind == "classification" else MultiOutputRegressor)(voters[0])
    wrapper.estimators_ = voters
    return wrapper


def _voter(problem: Problem, selection: list[tuple[Outcome, float]], t: int):
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.utils import Bunch

    members, weights = [], []
    for outcome, weight in selection:
        for k, fold in enumerate(outcome.models):
            members.append((f"trial{outcome.number}_{outcome.family}_fold{k}", fold[t]))
            weights.append(weight / len(outcome.models))
    if problem.kind == "classification":
        voter = VotingClassifier(members, voting="soft", weights=weights)
        voter.le_, voter.classes_ = problem.encoders[t], problem.encoders[t].classes_
    else:
        voter = VotingRegressor(members, weights=weights)
    voter.estimators_ = [m for _, m in members]
    voter.named_estimators_ = Bunch(**dict(members))
    voter.feature_names_in_ = np.asarray(problem.plan.features, dtype=object)
    return voter


def _stacker(problem: Problem, final: Final, t: int):
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.utils import Bunch

    named = [(f"trial{o.number}_{o.family}", _voter(problem, [(o, 1.0)], t)) for o, _ in final.members]
    if problem.kind == "classification":
        stacker = StackingClassifier(named, final_estimator=final.meta[t])
        stacker._label_encoder, stacker.classes_ = problem.encoders[t], problem.encoders[t].classes_
        stacker.stack_method_ = ["predict_proba"] * len(named)
    else:
        stacker = StackingRegressor(named, final_estimator=final.meta[t])
        stacker.stack_method_ = ["predict"] * len(named)
    stacker.estimators_ = [voter for _, voter in named]
    stacker.named_estimators_ = Bunch(**dict(named))
    stacker.final_estimator_ = final.meta[t]
    stacker.feature_names_in_ = np.asarray(problem.plan.features, dtype=object)
    return stacker


def predict_encoded(model, problem: Problem, X: pd.DataFrame) -> list[np.ndarray]:
    """Per-target predictions in the encoded space the metrics read (probabilities or numbers)."""
    voters = model.estimators_ if len(problem.targets) > 1 else [model]
    if problem.kind == "classification":
        return [v.predict_proba(X) for v in voters]
    return [np.asarray(v.predict(X), dtype=float) for v in voters]


def first_pipeline(estimator):
    """The first ``Pipeline(prepare -> model)`` inside an assembled model (every member shares its column plan)."""
    if hasattr(estimator, "named_steps"):
        return estimator
    inner = getattr(estimator, "regressor_", None)  # TransformedTargetRegressor (log1p target)
    if inner is not None:
        return first_pipeline(inner)
    members = getattr(estimator, "estimators_", None)
    return first_pipeline(members[0]) if members else None
