"""The ``TrainerLike`` adapter the driver runs for tabular tasks: search, choose the final model, evaluate, save."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from trainforge.errors import DataError
from trainforge.tasks.spec import LabelInfo, Prepared

if TYPE_CHECKING:
    from trainforge.tabular.ensemble import Final
    from trainforge.tabular.search import Search


class TabularTrainer:
    """The ``TrainerLike`` adapter: ``train`` searches and picks the final model, ``evaluate`` scores rows."""

    def __init__(self, config, prepared: Prepared, labels: LabelInfo, run_dir: Path, events):
        from trainforge.tabular.models import families_for
        from trainforge.tabular.settings import resolve, target_rule

        self.config, self.prepared, self.run_dir, self.events = config, prepared, run_dir, events
        self.problem = prepared.train
        params = config.params
        self.families = families_for(
            self.problem.kind, config.model.name, params.families, self.problem.weight is not None
        )
        if not self.families:
            raise DataError("no model family is left to search: k-NN cannot use sample weights; widen params.families")
        self.settings = resolve(config, len(self.problem.X), len(self.problem.plan.features))
        self.target = target_rule(self.problem.kind, self.problem.Y)
        self.model: Any = None  # the assembled scikit-learn estimator, once trained
        self.search: Search | None = None
        self.final: Final | None = None
        self.candidates: list[Final] = []

    def train(self, resume_from_checkpoint: str | None = None):
        """Search, choose the final model (best trial, greedy ensemble or stack) and assemble it."""
        from trainforge.tabular.ensemble import assemble, choose
        from trainforge.tabular.search import Search

        started = time.monotonic()
        settings = self.settings
        self.events.write(
            "train_started",
            families=self.families,
            search=settings.describe(),
            trials=settings.trials,
            time_limit=settings.time_limit,
            folds=settings.folds,
            repeats=settings.repeats,
            ensemble=settings.ensemble,
            target=None if self.target is None else self.target.why,
        )
        self.search = search = Search(
            self.problem,
            settings,
            self.config.params,
            self.config.training.seed,
            self.config.params.n_jobs,
            self.families,
            self.run_dir,
            self.events,
            self.target,
        )
        search.optimize(resume=resume_from_checkpoint is not None)
        with self._threads():
            self.final, self.candidates = final, candidates = choose(search)
            self.model = assemble(self.problem, final)
        members = {f"trial{o.number}_{o.family}": round(w, 4) for o, w in final.members}
        self.events.write(
            "ensemble",
            how=final.how,
            metric=settings.metric,
            score=final.score,
            members=members,
            candidates={c.how: c.score for c in candidates},
        )
        runtime = time.monotonic() - started
        return SimpleNamespace(metrics={"train_runtime": runtime, f"train_validation_{settings.metric}": final.score})

    def evaluate(self, eval_dataset=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Every metric of the sub-task on ``eval_dataset`` ``(X, Y, weight)`` (default: the eval rows), weighted.

        Keys carry ``metric_key_prefix`` as ``Trainer.evaluate``'s do (``eval_*``; ``test_*`` for the test split).
        """
        from trainforge.tabular import scoring
        from trainforge.tabular.ensemble import predict_encoded

        rows = self.prepared.eval if eval_dataset is None else eval_dataset
        if rows is None:
            raise RuntimeError("the tabular trainer has no evaluation rows to score")
        X, Y, weight = rows
        with self._threads():
            predictions = predict_encoded(self.model, self.problem, X)
        metrics = scoring.report(self.problem.kind, self.problem.targets, Y, predictions, weight)
        if eval_dataset is None:
            self.events.write("eval", step=len(self._trained()[0].outcomes), metrics=metrics)
        return {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}

    def save_model(self, output_dir: str | None = None) -> None:
        """``model.joblib``, ``leaderboard.csv``, ``feature_importances.csv`` and the importance plot."""
        import joblib

        from trainforge.tabular import report
        from trainforge.tabular.ensemble import Final, assemble

        search, final = self._trained()
        folder = Path(output_dir or self.run_dir)
        joblib.dump(self.model, folder / "model.joblib")
        report.write_leaderboard(folder, search, final, self.candidates)
        heaviest = max(final.members, key=lambda pair: pair[1])[0]
        one_fold = dataclasses.replace(heaviest, models=heaviest.models[:1])
        single = Final("best_trial", [(one_fold, 1.0)], heaviest.score)
        representative = assemble(self.problem, single)
        # 5% of the budget (at least 2 s): with the search's 85% and ensembling, the run keeps to search.timeout.
        seconds = max(2.0, 0.05 * self.settings.time_limit)
        report.write_importances(
            folder, representative, search, self.prepared.eval, self.config.training.seed, seconds
        )

    def _threads(self):
        """OpenMP/BLAS threads capped at ``params.n_jobs``, as during the search.

        Histogram gradient boosting on every core of a busy machine predicts many times slower than on one.
        """
        from threadpoolctl import threadpool_limits

        n_jobs = self.config.params.n_jobs
        return threadpool_limits(limits=n_jobs if n_jobs > 0 else None)

    def _trained(self) -> tuple[Search, Final]:
        """The search and the chosen final model; raises when ``train`` has not run."""
        if self.search is None or self.final is None:
            raise RuntimeError("the tabular trainer has not trained yet: train runs first")
        return self.search, self.final
