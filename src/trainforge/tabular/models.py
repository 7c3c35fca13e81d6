"""Model families: which sub-tasks each serves, its preprocessing style, its search space and its estimator.

Search-space names are prefixed by the family (``xgboost.max_depth``), so one Optuna study can mix families.
Ranges follow the tuned defaults of AutoGluon and FLAML, narrowed where a trial must fit in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """One model family: the sub-tasks it serves and how its inputs are prepared."""

    name: str
    kinds: tuple[str, ...]  # "classification", "regression"
    style: str  # preprocessing style, see features.build_preprocessor
    weights: bool = True  # accepts sample weights in fit


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("lightgbm", ("classification", "regression"), "nan_trees"),
        Family("xgboost", ("classification", "regression"), "nan_trees"),
        Family("hist_gradient_boosting", ("classification", "regression"), "native"),
        Family("extra_trees", ("classification", "regression"), "trees"),
        Family("random_forest", ("classification", "regression"), "trees"),
        Family("logistic_regression", ("classification",), "linear"),
        Family("ridge", ("regression",), "linear"),
        Family("lasso", ("regression",), "linear"),
        Family("elastic_net", ("regression",), "linear"),
        Family("linear_svm", ("classification", "regression"), "linear"),
        Family("knn", ("classification", "regression"), "linear", weights=False),
    )
}
MODEL_CHOICES = ("auto", *FAMILIES)


def families_for(kind: str, model: str, restrict: list[str] | None, weighted: bool) -> list[str]:
    """Families a search may pick from: one named family, or every family serving ``kind`` (``auto``)."""
    if model != "auto":
        return [model]
    names = [n for n, f in FAMILIES.items() if kind in f.kinds and (restrict is None or n in restrict)]
    return [n for n in names if FAMILIES[n].weights or not weighted]


# Known-good starting points, tried first in a new study (AutoGluon and FLAML also start from a portfolio):
# with a small budget they are most of the result, and they give TPE a good region to refine.
# Cheapest first: the first finished trial is exempt from the time limit, so it must be quick.
PORTFOLIO: tuple[tuple[str, dict[str, Any]], ...] = (
    ("logistic_regression", {"C": 1.0}),
    ("ridge", {"alpha": 1.0}),
    (
        "lightgbm",
        {
            "n_estimators": 300,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 10,
            "subsample": 0.9,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        },
    ),
    ("extra_trees", {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1}),
    (
        "xgboost",
        {
            "n_estimators": 300,
            "learning_rate": 0.05,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 0.9,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
        },
    ),
    (
        "hist_gradient_boosting",
        {
            "max_iter": 200,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 0.001,
        },
    ),
    ("random_forest", {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1}),
)


def portfolio(families: list[str]) -> list[dict[str, Any]]:
    """Starting trials (Optuna ``enqueue_trial`` parameters) for the families being searched."""
    return [
        {"family": name, **{f"{name}.{k}": v for k, v in params.items()}}
        for name, params in PORTFOLIO
        if name in families
    ]


def suggest(trial, family: str, kind: str, n_rows: int) -> dict[str, Any]:
    """Sample the hyper-parameters of ``family`` for this trial (names without the family prefix)."""

    def f(name: str, low: float, high: float, log: bool = False) -> float:
        return trial.suggest_float(f"{family}.{name}", low, high, log=log)

    def i(name: str, low: int, high: int, log: bool = False) -> int:
        return trial.suggest_int(f"{family}.{name}", low, high, log=log)

    def c(name: str, choices: tuple):
        return trial.suggest_categorical(f"{family}.{name}", choices)

    if family == "lightgbm":
        return {
            "n_estimators": i("n_estimators", 50, 1000, log=True),
            "learning_rate": f("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": i("num_leaves", 4, 128, log=True),
            "min_child_samples": i("min_child_samples", 2, 50, log=True),
            "subsample": f("subsample", 0.5, 1.0),
            "colsample_bytree": f("colsample_bytree", 0.4, 1.0),
            "reg_lambda": f("reg_lambda", 1e-3, 10.0, log=True),
        }
    if family == "xgboost":
        return {
            "n_estimators": i("n_estimators", 50, 1000, log=True),
            "learning_rate": f("learning_rate", 0.01, 0.3, log=True),
            "max_depth": i("max_depth", 2, 10),
            "min_child_weight": f("min_child_weight", 0.5, 20.0, log=True),
            "subsample": f("subsample", 0.5, 1.0),
            "colsample_bytree": f("colsample_bytree", 0.4, 1.0),
            "reg_lambda": f("reg_lambda", 1e-3, 10.0, log=True),
        }
    if family == "hist_gradient_boosting":
        return {
            "max_iter": i("max_iter", 50, 600, log=True),
            "learning_rate": f("learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": i("max_leaf_nodes", 4, 64, log=True),
            "min_samples_leaf": i("min_samples_leaf", 2, 50, log=True),
            "l2_regularization": f("l2_regularization", 1e-4, 10.0, log=True),
        }
    if family in ("random_forest", "extra_trees"):
        return {
            "n_estimators": i("n_estimators", 100, 400, log=True),
            "max_features": c("max_features", ("sqrt", "0.5", "1.0")),
            "min_samples_leaf": i("min_samples_leaf", 1, 10, log=True),
        }
    if family == "logistic_regression":
        return {"C": f("C", 1e-3, 100.0, log=True)}
    if family in ("ridge", "lasso"):
        return {"alpha": f("alpha", 1e-4, 100.0, log=True)}
    if family == "elastic_net":
        return {"alpha": f("alpha", 1e-4, 100.0, log=True), "l1_ratio": f("l1_ratio", 0.05, 0.95)}
    if family == "linear_svm":
        return {"C": f("C", 1e-3, 100.0, log=True)}
    if family == "knn":
        return {
            "n_neighbors": i("n_neighbors", 3, min(50, max(3, n_rows // 4)), log=True),
            "weights": c("weights", ("uniform", "distance")),
        }
    raise KeyError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


def make_estimator(family: str, kind: str, params: dict[str, Any], seed: int, n_jobs: int, categorical: list[bool]):
    """A fresh, unfitted estimator of ``family`` with ``params`` (as returned by ``suggest``)."""
    classify = kind == "classification"
    if family == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classify else lightgbm.LGBMRegressor
        return cls(**params, subsample_freq=1, random_state=seed, n_jobs=n_jobs, verbose=-1)
    if family == "xgboost":
        import xgboost

        cls = xgboost.XGBClassifier if classify else xgboost.XGBRegressor
        return cls(**params, tree_method="hist", random_state=seed, n_jobs=n_jobs)
    from sklearn import ensemble, linear_model, neighbors, svm

    if family == "hist_gradient_boosting":
        cls = ensemble.HistGradientBoostingClassifier if classify else ensemble.HistGradientBoostingRegressor
        return cls(
            **params,
            categorical_features=categorical if any(categorical) else None,
            early_stopping=False,
            random_state=seed,
        )
    if family in ("random_forest", "extra_trees"):
        name = ("RandomForest" if family == "random_forest" else "ExtraTrees") + (
            "Classifier" if classify else "Regressor"
        )
        features = params["max_features"] if params["max_features"] == "sqrt" else float(params["max_features"])
        return getattr(ensemble, name)(**{**params, "max_features": features}, random_state=seed, n_jobs=n_jobs)
    if family == "logistic_regression":
        return linear_model.LogisticRegression(**params, max_iter=2000)
    if family == "ridge":
        return linear_model.Ridge(**params)
    if family == "lasso":
        return linear_model.Lasso(**params, max_iter=5000)
    if family == "elastic_net":
        return linear_model.ElasticNet(**params, max_iter=5000)
    if family == "linear_svm":
        if classify:
            from sklearn.calibration import CalibratedClassifierCV

            # LinearSVC has no probabilities; sigmoid calibration on internal folds supplies them.
            return CalibratedClassifierCV(svm.LinearSVC(**params, max_iter=5000), cv=3)
        return svm.LinearSVR(**params, max_iter=5000)
    if family == "knn":
        cls = neighbors.KNeighborsClassifier if classify else neighbors.KNeighborsRegressor
        return cls(**params, n_jobs=n_jobs)
    raise KeyError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


def trial_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's own parameters (``family.name`` keys) without the prefix."""
    prefix = family + "."
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}
