"""The ``TrainerLike`` adapter the driver runs for tabular tasks: search, ensemble, evaluate, save."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from trainforge.errors import DataError
from trainforge.tasks.spec import LabelInfo, Prepared

if TYPE_CHECKING:
    from trainforge.tabular.search import Outcome, Search


class TabularTrainer:
    """The ``TrainerLike`` adapter: ``train`` searches and ensembles, ``evaluate`` scores the eval rows."""

    def __init__(self, config, prepared: Prepared, labels: LabelInfo, run_dir: Path, events):
        from trainforge.tabular.models import families_for

        self.config, self.prepared, self.run_dir, self.events = config, prepared, run_dir, events
        self.problem = prepared.train
        params = config.params
        self.families = families_for(
            self.problem.kind, config.model.name, params.families, self.problem.weight is not None
        )
        if not self.families:
            raise DataError("no model family is left to search: k-NN cannot use sample weights; widen params.families")
        self.model: Any = None  # the assembled scikit-learn estimator, once trained
        self.search: Search | None = None
        self.selection: list[tuple[Outcome, float]] | None = None

    def train(self, resume_from_checkpoint: str | None = None):
        """Search, select the ensemble and assemble the final estimator."""
        from trainforge.tabular.search import Search, assemble

        started = time.monotonic()
        params = self.config.params
        self.events.write(
            "train_started", families=self.families, num_trials=params.num_trials, time_limit=params.time_limit
        )
        self.search = search = Search(
            self.problem, params, self.config.training.seed, params.n_jobs, self.families, self.run_dir, self.events
        )
        search.optimize(resume=resume_from_checkpoint is not None)
        self.selection = selection = search.select()
        self.model = assemble(self.problem, selection)
        value = search.ensemble_score(selection)
        members = {f"trial{o.number}_{o.family}": round(w, 4) for o, w in selection}
        self.events.write("ensemble", metric=params.metric, score=value, members=members)
        runtime = time.monotonic() - started
        return SimpleNamespace(metrics={"train_runtime": runtime, f"train_validation_{params.metric}": value})

    def evaluate(self, eval_dataset=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Every metric of the sub-task on ``eval_dataset`` ``(X, Y, weight)`` (default: the eval rows), weighted.

        Keys carry ``metric_key_prefix`` as ``Trainer.evaluate``'s do (``eval_*``; ``test_*`` for the test split).
        """
        from trainforge.tabular import scoring
        from trainforge.tabular.search import predict_encoded

        rows = self.prepared.eval if eval_dataset is None else eval_dataset
        if rows is None:
            raise RuntimeError("the tabular trainer has no evaluation rows to score")
        X, Y, weight = rows
        metrics = scoring.report(
            self.problem.kind, self.problem.targets, Y, predict_encoded(self.model, self.problem, X), weight
        )
        if eval_dataset is None:
            self.events.write("eval", step=len(self._trained()[0].outcomes), metrics=metrics)
        return {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}

    def save_model(self, output_dir: str | None = None) -> None:
        """``model.joblib``, ``leaderboard.csv``, ``feature_importances.csv`` and the importance plot."""
        import joblib

        from trainforge.tabular import report
        from trainforge.tabular.search import assemble

        search, selection = self._trained()
        folder = Path(output_dir or self.run_dir)
        joblib.dump(self.model, folder / "model.joblib")
        report.write_leaderboard(folder, search, selection)
        heaviest = max(selection, key=lambda pair: pair[1])[0]
        representative = assemble(self.problem, [(dataclasses.replace(heaviest, models=heaviest.models[:1]), 1.0)])
        report.write_importances(folder, representative, search, self.prepared.eval, self.config.training.seed)

    def _trained(self) -> tuple[Search, list[tuple[Outcome, float]]]:
        """The search and the selected ensemble; raises when ``train`` has not run."""
        if self.search is None or self.selection is None:
            raise RuntimeError("the tabular trainer has not trained yet: train runs first")
        return self.search, self.selection
