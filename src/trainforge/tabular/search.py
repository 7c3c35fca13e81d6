"""Optuna search over model families under (repeated) k-fold or holdout validation.

Each completed trial keeps its fold models and out-of-fold predictions in ``checkpoints/checkpoint-<trial>``, so
an interrupted search resumes with everything it had. Every family's library defaults are the first trials, scored
under the very folds the searched trials get (``models.first_trials``); ``ensemble.choose`` then keeps the best of
the best trial, the greedy ensemble and the stack by validation score. Nothing is refit after the search: the final
model is a bag of the chosen trials' fold models, which keeps the time budget honest.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trainforge._utils.studies import open_storage, sqlite_lock
from trainforge.errors import DataError, TrainforgeError
from trainforge.tabular import features, models, scoring
from trainforge.tabular.settings import Settings, TargetRule


def search_seconds(budget: float) -> float:
    """The seconds of a time budget in which trials may run.

    The rest -- a fifth, or 5 s plus a tenth when that is less -- pays for choosing and assembling the final model,
    its evaluation, the importances and the model card.
    """
    return budget - min(0.2 * budget, 5.0 + 0.1 * budget)


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
    oof: list[np.ndarray]  # per target, the out-of-fold predictions of ``Search.valid_rows`` (repeats averaged)
    models: list[list] = field(repr=False)  # per fold, per target: fitted Pipelines
    default: bool = False  # the family's library defaults (``models.first_trials``)
    # ``oof`` follows the sorted validation rows; checkpoints of earlier versions (fold order) lack this and are
    # left out on resume rather than misread.
    sorted_rows: bool = True


class Search:
    """One search: folds, objective and study; ``ensemble.choose`` picks the final model from its outcomes."""

    def __init__(
        self,
        problem: Problem,
        settings: Settings,
        params,
        seed: int,
        n_jobs: int,
        families: list[str],
        run_dir: Path,
        events,
        target: TargetRule | None = None,
    ):
        self.problem, self.settings, self.params, self.seed, self.n_jobs = problem, settings, params, seed, n_jobs
        self.families, self.run_dir, self.events, self.target = families, run_dir, events, target
        self.metric = settings.metric
        self.greater = settings.greater
        self.folds = self._folds()
        self.valid_rows = np.unique(np.concatenate([valid for _, valid in self.folds]))
        self.outcomes: list[Outcome] = []
        self.deadline = float("inf")
        self.storage = None

    # ------------------------------------------------------------------------------------------------ folds

    def _folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, train_test_split

        n, settings = len(self.problem.X), self.settings
        stratify = self.problem.Y[0] if self.problem.kind == "classification" else None
        if settings.validation == "holdout":
            train, valid = train_test_split(
                np.arange(n), test_size=settings.holdout_fraction, random_state=self.seed, stratify=stratify
            )
            folds = [(np.sort(train), np.sort(valid))]
        else:
            splitter = (RepeatedStratifiedKFold if stratify is not None else RepeatedKFold)(
                n_splits=settings.folds, n_repeats=settings.repeats, random_state=self.seed
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
        """An unfitted ``Pipeline(prepare -> model)`` for one family and its hyper-parameters.

        ``target_transform: log1p`` wraps it in ``TransformedTargetRegressor`` (fit on ``log1p(y)``, predictions
        through ``expm1``): numpy functions, so the fitted model still loads without trainforge.
        """
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.pipeline import Pipeline

        hp = dict(hp)
        transform = hp.pop("target_transform", "none")
        fam = models.FAMILIES[family]
        mask = features.categorical_mask(self.problem.plan)
        prepare = features.build_preprocessor(self.problem.plan, fam.style, self.params, len(self.problem.X))
        model = models.make_estimator(family, self.problem.kind, hp, self.seed, self.n_jobs, mask)
        pipe = Pipeline([("prepare", prepare), ("model", model)])
        if transform == "log1p":
            return TransformedTargetRegressor(pipe, func=np.log1p, inverse_func=np.expm1, check_inverse=False)
        return pipe

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

    def evaluate(
        self, family: str, hp: dict, trial=None, default: bool = False
    ) -> tuple[float, list[np.ndarray], list[list], float]:
        """Validate one configuration on every fold; reports running scores to ``trial`` for pruning.

        A row predicted in several repeats gets the mean of its predictions, as the bagged final model would.
        Default trials report but the median rule never prunes them (they are the floor the final choice is held
        to); the time budget stops them as it stops any trial but the first.
        """
        import optuna
        from threadpoolctl import threadpool_limits

        problem = self.problem
        sums: list[np.ndarray | None] = [None for _ in problem.targets]
        counts = np.zeros(len(problem.X))
        fold_models, started = [], time.monotonic()
        for k, (train, valid) in enumerate(self.folds):
            if trial is not None and k and self.outcomes and time.monotonic() > self.deadline:
                raise optuna.TrialPruned(f"time budget reached after {k} fold(s)")
            # OpenMP/BLAS threads follow params.n_jobs too: histogram gradient boosting left on every core ran
            # 20x slower than on one on a busy 2-core machine.
            with threadpool_limits(limits=self.n_jobs if self.n_jobs > 0 else None):
                fitted = [self.fit_predict(family, hp, train, valid, t) for t in range(len(problem.targets))]
            fold_models.append([pipe for pipe, _ in fitted])
            for t, (_, prediction) in enumerate(fitted):
                total = sums[t]
                if total is None:
                    total = sums[t] = np.zeros((len(problem.X), *prediction.shape[1:]))
                total[valid] += prediction
            counts[valid] += 1
            if trial is not None and len(self.folds) > 1:
                seen = np.flatnonzero(counts)
                trial.report(self._score(_means(sums, counts, seen), seen), step=k)
                if not default and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {k + 1}")
        oof = _means(sums, counts, self.valid_rows)
        return self._score(oof, self.valid_rows), oof, fold_models, time.monotonic() - started

    def _score(self, predictions: list[np.ndarray], rows: np.ndarray) -> float:
        truths = [y[rows] for y in self.problem.Y]
        weight = None if self.problem.weight is None else self.problem.weight[rows]
        return scoring.score(self.metric, truths, predictions, weight)

    # ------------------------------------------------------------------------------------------------ study

    def optimize(self, resume: bool) -> list[Outcome]:
        """Run the study until ``settings.trials`` trials exist in it or the time budget is spent."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        started = time.monotonic()
        settings = self.settings
        self.deadline = started + search_seconds(settings.time_limit)
        study = self._study()
        if resume:
            self._load_checkpoints(study)
        done_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        remaining = settings.trials - len(study.get_trials(deepcopy=False, states=done_states))
        if remaining > 0:
            stop = optuna.study.MaxTrialsCallback(settings.trials, states=done_states)
            study.optimize(
                self._objective,
                n_trials=remaining,
                timeout=max(1.0, self.deadline - time.monotonic()),
                callbacks=[stop],
            )
        if not self.outcomes:
            raise TrainforgeError(
                f"no trial finished within search.timeout={settings.time_limit:g}s; raise search.timeout"
            )
        return self.outcomes

    def _study(self):
        import optuna

        settings = self.settings
        shared = settings.storage is not None
        url = settings.storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"
        storage = self.storage = open_storage(url)
        direction = "maximize" if self.greater else "minimize"
        pruner = {
            "median": optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials, n_warmup_steps=0),
            "successive_halving": optuna.pruners.SuccessiveHalvingPruner(),
            "none": optuna.pruners.NopPruner(),
        }[settings.pruner]
        with sqlite_lock(url):  # one worker creates the study and enqueues its first trials (see sqlite_lock)
            study = optuna.create_study(
                storage=storage,
                study_name=settings.study_name,
                direction=direction,
                load_if_exists=True,
                pruner=pruner,
            )
            if not study.trials:
                first = models.first_trials(self.families, self.target, settings.space, len(self.problem.X))
                for params, user_attrs in first:
                    study.enqueue_trial(params, user_attrs=user_attrs)
        ask = study.ask

        def ask_alone(*args, **kwargs):  # no two workers take the same enqueued trial
            with sqlite_lock(url):
                return ask(*args, **kwargs)

        study.ask = ask_alone
        if study.direction.name.lower() != direction:
            raise TrainforgeError(
                f"study {settings.study_name!r} at {url} was created to {study.direction.name.lower()}, but "
                f"search.metric {self.metric} must {direction}; use another search.study_name"
            )
        # Workers joining one study must not replay the same random start-up samples; a private study stays
        # reproducible from training.seed and the trials it already holds.
        seed = self.seed + len(study.trials) + (os.getpid() if shared else 0)
        study.sampler = (
            optuna.samplers.RandomSampler(seed=seed)
            if settings.sampler == "random"
            else optuna.samplers.TPESampler(seed=seed)
        )
        return study

    def _objective(self, trial) -> float:
        family = trial.suggest_categorical("family", tuple(self.families))
        default = bool(trial.user_attrs.get("default"))
        if default:
            hp = dict(trial.user_attrs.get("variant", {}))
        else:
            hp = models.suggest(trial, family, len(self.problem.X), self.target, self.settings.space)
        try:
            value, oof, fold_models, seconds = self.evaluate(family, hp, trial, default)
        except Exception as exc:
            # Recorded, then re-raised: a failing family stops the run (rule 9), with the trial named.
            self.events.write(
                "trial", number=trial.number, family=family, params=hp, state=type(exc).__name__, error=str(exc)
            )
            raise
        outcome = Outcome(trial.number, family, hp, value, seconds, oof, fold_models, default)
        self.outcomes.append(outcome)
        self._save_checkpoint(outcome)
        best = max if self.greater else min
        self.events.write(
            "trial",
            number=trial.number,
            family=family,
            params=hp,
            default=default,
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
            if outcome.number in complete and outcome.__dict__.get("sorted_rows", False):
                self.outcomes.append(outcome)
        self.events.write("resumed", trials=len(self.outcomes), from_dir=str(self.run_dir / "checkpoints"))


def _means(sums: list, counts: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Per target, the mean prediction of each of ``rows`` over the folds that predicted it."""
    out = []
    for total in sums:
        values = total[rows]
        out.append(values / (counts[rows] if values.ndim == 1 else counts[rows, None]))
    return out
