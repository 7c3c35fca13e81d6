"""Optuna search over model families with k-fold (or holdout) validation, then greedy ensemble selection.

Each completed trial keeps its fold models and out-of-fold predictions in ``checkpoints/checkpoint-<trial>``, so
an interrupted search resumes with everything it had, and the final model is a weighted average of the selected
trials' fold models (bagging): nothing is refit after the search, which keeps ``time_limit`` honest.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge._utils.studies import open_storage
from trainforge.errors import DataError, TrainforgeError
from trainforge.tabular import features, models, scoring

_ENSEMBLE_POOL = 20  # best trials considered by ensemble selection
_SEARCH_SHARE = 0.85  # of time_limit; the rest covers ensembling, saving and importances


@dataclass
class Problem:
    """What is predicted from what: sub-task kind, targets (encoded), feature plan and rows."""

    kind: str  # "classification" | "regression"
    targets: list[str]
    encoders: list  # one fitted LabelEncoder per classification target (None for regression)
    plan: features.ColumnPlan
    X: pd.DataFrame
    Y: list[np.ndarray]
    weight: np.ndarray | None


@dataclass
class Outcome:
    """One finished trial: its family, parameters, validation score and what it produced."""

    number: int
    family: str
    params: dict
    score: float
    fit_time_s: float
    oof: list[np.ndarray]  # per target, predictions on the validation rows
    models: list[list] = field(repr=False)  # per fold, per target: fitted Pipelines


class Search:
    """One search: folds, objective, study, ensemble selection and the assembled final estimator."""

    def __init__(self, problem: Problem, params, seed: int, n_jobs: int, families: list[str], run_dir: Path, events):
        self.problem, self.params, self.seed, self.n_jobs = problem, params, seed, n_jobs
        self.families, self.run_dir, self.events = families, run_dir, events
        self.metric = params.metric
        self.greater = scoring.GREATER_IS_BETTER[self.metric]
        self.folds = self._folds()
        self.valid_rows = np.concatenate([valid for _, valid in self.folds])
        self.outcomes: list[Outcome] = []
        self.deadline = float("inf")
        self.storage = None

    # ------------------------------------------------------------------------------------------------ folds

    def _folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

        n = len(self.problem.X)
        stratify = self.problem.Y[0] if self.problem.kind == "classification" else None
        if self.params.validation == "holdout":
            train, valid = train_test_split(
                np.arange(n), test_size=self.params.holdout_fraction, random_state=self.seed, stratify=stratify
            )
            folds = [(np.sort(train), np.sort(valid))]
        else:
            splitter = (StratifiedKFold if stratify is not None else KFold)(
                self.params.cv_folds, shuffle=True, random_state=self.seed
            )
            folds = list(splitter.split(np.zeros(n), stratify))
        if self.problem.kind == "classification":
            for target, y, encoder in zip(self.problem.targets, self.problem.Y, self.problem.encoders, strict=True):
                for k, (train, _) in enumerate(folds):
                    missing = sorted(set(range(len(encoder.classes_))) - set(np.unique(y[train])))
                    if missing:
                        raise DataError(
                            f"target {target!r}: classes {list(encoder.classes_[missing])} are absent from the "
                            "training part "
                            f"of fold {k + 1}; add rows of those classes or lower params.cv_folds"
                        )
        return folds

    # ------------------------------------------------------------------------------------------------ one trial

    def pipeline(self, family: str, hp: dict):
        """An unfitted ``Pipeline(prepare -> model)`` for one family and its hyper-parameters."""
        from sklearn.pipeline import Pipeline

        fam = models.FAMILIES[family]
        mask = features.categorical_mask(self.problem.plan)
        prepare = features.build_preprocessor(self.problem.plan, fam.style, self.params, len(self.problem.X))
        model = models.make_estimator(family, self.problem.kind, hp, self.seed, self.n_jobs, mask)
        return Pipeline([("prepare", prepare), ("model", model)])

    def fit_predict(self, family: str, hp: dict, rows: np.ndarray, valid: np.ndarray, target: int):
        """Fit on ``rows`` for one target and predict the ``valid`` rows (probabilities or numbers)."""
        problem = self.problem
        pipe = self.pipeline(family, hp)
        fit_kw = {} if problem.weight is None else {"model__sample_weight": problem.weight[rows]}
        pipe.fit(problem.X.iloc[rows], problem.Y[target][rows], **fit_kw)
        X_valid = problem.X.iloc[valid]
        if problem.kind == "regression":
            return pipe, np.asarray(pipe.predict(X_valid), dtype=float)
        return pipe, pipe.predict_proba(X_valid)

    def evaluate(self, family: str, hp: dict, trial=None) -> tuple[float, list[np.ndarray], list[list], float]:
        """Validate one configuration on every fold; reports running scores to ``trial`` for pruning."""
        import optuna

        problem = self.problem
        parts: list[list[np.ndarray]] = [[] for _ in problem.targets]  # per target, each fold's predictions
        fold_models, started, position = [], time.monotonic(), 0
        for k, (train, valid) in enumerate(self.folds):
            if trial is not None and k and self.outcomes and time.monotonic() > self.deadline:
                raise optuna.TrialPruned(f"time_limit reached after {k} fold(s)")
            fitted = [self.fit_predict(family, hp, train, valid, t) for t in range(len(problem.targets))]
            fold_models.append([pipe for pipe, _ in fitted])
            for t, (_, prediction) in enumerate(fitted):
                parts[t].append(prediction)
            position += len(valid)
            if trial is not None and len(self.folds) > 1:
                trial.report(self._score([np.concatenate(p) for p in parts], self.valid_rows[:position]), step=k)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {k + 1}")
        oof = [np.concatenate(p) for p in parts]
        return self._score(oof, self.valid_rows), oof, fold_models, time.monotonic() - started

    def _score(self, predictions: list[np.ndarray], rows: np.ndarray) -> float:
        truths = [y[rows] for y in self.problem.Y]
        weight = None if self.problem.weight is None else self.problem.weight[rows]
        return scoring.score(self.metric, truths, predictions, weight)

    # ------------------------------------------------------------------------------------------------ study

    def optimize(self, resume: bool) -> list[Outcome]:
        """Run the study until ``num_trials`` trials exist in it or the time budget is spent."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.monotonic()
        self.deadline = started + self.params.time_limit * _SEARCH_SHARE
        study = self._study()
        if resume:
            self._load_checkpoints(study)
        done_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        remaining = self.params.num_trials - len(study.get_trials(deepcopy=False, states=done_states))
        if remaining > 0:
            stop = optuna.study.MaxTrialsCallback(self.params.num_trials, states=done_states)
            study.optimize(
                self._objective,
                n_trials=remaining,
                timeout=max(1.0, self.deadline - time.monotonic()),
                callbacks=[stop],
            )
        if not self.outcomes:
            raise TrainforgeError(
                f"no trial finished within params.time_limit={self.params.time_limit}s; raise params.time_limit"
            )
        return self.outcomes

    def _study(self):
        import optuna

        shared = self.params.study_storage is not None
        url = self.params.study_storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"
        storage = self.storage = open_storage(url)
        direction = "maximize" if self.greater else "minimize"
        study = optuna.create_study(
            storage=storage,
            study_name=self.params.study_name,
            direction=direction,
            load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
            if self.params.pruning
            else optuna.pruners.NopPruner(),
        )
        if study.direction.name.lower() != direction:
            raise TrainforgeError(
                f"study {self.params.study_name!r} at {url} was created to {study.direction.name.lower()}, but "
                f"params.metric {self.metric} must {direction}; use another params.study_name"
            )
        if not study.trials:
            for params in models.portfolio(self.families):
                study.enqueue_trial(params)
        # Workers joining one study must not replay the same random start-up samples; a private study stays
        # reproducible from training.seed and the trials it already holds.
        offset = len(study.trials) + (os.getpid() if shared else 0)
        study.sampler = optuna.samplers.TPESampler(seed=self.seed + offset)
        return study

    def _objective(self, trial) -> float:
        family = trial.suggest_categorical("family", tuple(self.families))
        hp = models.suggest(trial, family, self.problem.kind, len(self.problem.X))
        try:
            value, oof, fold_models, seconds = self.evaluate(family, hp, trial)
        except Exception as exc:
            # Recorded, then re-raised: a failing family stops the run (rule 9), with the trial named.
            self.events.write(
                "trial", number=trial.number, family=family, params=hp, state=type(exc).__name__, error=str(exc)
            )
            raise
        outcome = Outcome(trial.number, family, hp, value, seconds, oof, fold_models)
        self.outcomes.append(outcome)
        self._save_checkpoint(outcome)
        best = max if self.greater else min
        self.events.write(
            "trial",
            number=trial.number,
            family=family,
            params=hp,
            state="complete",
            metric=self.metric,
            score=value,
            fit_time_s=round(seconds, 3),
            best_score=best(o.score for o in self.outcomes),
        )
        return value

    def _save_checkpoint(self, outcome: Outcome) -> None:
        import joblib

        folder = self.run_dir / "checkpoints" / f"checkpoint-{outcome.number}"
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(outcome, folder / "trial.joblib")

    def _load_checkpoints(self, study) -> None:
        import joblib
        import optuna

        complete = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))}
        for path in sorted((self.run_dir / "checkpoints").glob("checkpoint-*/trial.joblib")):
            outcome = joblib.load(path)
            if outcome.number in complete:
                self.outcomes.append(outcome)
        self.events.write("resumed", trials=len(self.outcomes), from_dir=str(self.run_dir / "checkpoints"))

    # ------------------------------------------------------------------------------------------------ ensemble

    def select(self) -> list[tuple[Outcome, float]]:
        """Greedy ensemble selection with replacement (Caruana et al. 2004) on the validation predictions."""
        ranked = sorted(self.outcomes, key=lambda o: o.score, reverse=self.greater)
        if not self.params.ensemble or len(ranked) == 1:
            return [(ranked[0], 1.0)]
        pool = ranked[:_ENSEMBLE_POOL]
        counts = np.zeros(len(pool))
        total: list[np.ndarray] | None = None
        best_value, best_counts = pool[0].score, np.eye(len(pool))[0]
        for step in range(1, self.params.ensemble_size + 1):
            trials = []
            for j, candidate in enumerate(pool):
                mixed = (
                    candidate.oof
                    if total is None
                    else [(s + p) / step for s, p in zip(total, candidate.oof, strict=True)]
                )
                trials.append((self._score(mixed, self.valid_rows), j))
            value, j = (max if self.greater else min)(trials)
            counts[j] += 1
            total = list(pool[j].oof) if total is None else [s + p for s, p in zip(total, pool[j].oof, strict=True)]
            if (value > best_value) if self.greater else (value < best_value):
                best_value, best_counts = value, counts.copy()
        weights = best_counts / best_counts.sum()
        return [(o, float(w)) for o, w in zip(pool, weights, strict=True) if w > 0]

    def ensemble_score(self, selection: list[tuple[Outcome, float]]) -> float:
        """Validation score of a weighted selection."""
        mixed = [np.asarray(sum(w * o.oof[t] for o, w in selection)) for t in range(len(self.problem.targets))]
        return self._score(mixed, self.valid_rows)


def assemble(problem: Problem, selection: list[tuple[Outcome, float]]):
    """One scikit-learn estimator over raw rows: weighted soft voting of every selected fold model.

    Classification uses ``VotingClassifier`` (its ``le_`` maps back to the original labels), regression
    ``VotingRegressor``; several targets are wrapped in ``MultiOutputClassifier``/``MultiOutputRegressor``. The
    members are already fitted, so the fitted attributes are set directly instead of refitting.
    """
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
    from sklearn.utils import Bunch

    voters = []
    for t in range(len(problem.targets)):
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
        voters.append(voter)
    if len(voters) == 1:
        return voters[0]
    wrapper = (MultiOutputClassifier if problem.kind == "classification" else MultiOutputRegressor)(voters[0])
    wrapper.estimators_ = voters
    return wrapper


def predict_encoded(model, problem: Problem, X: pd.DataFrame) -> list[np.ndarray]:
    """Per-target predictions in the encoded space the metrics read (probabilities or numbers)."""
    voters = model.estimators_ if len(problem.targets) > 1 else [model]
    if problem.kind == "classification":
        return [v.predict_proba(X) for v in voters]
    return [np.asarray(v.predict(X), dtype=float) for v in voters]
