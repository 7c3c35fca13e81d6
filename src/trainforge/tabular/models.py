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


# Order in which the families' default trials run: the boosters first (quick, and the models a default is most
# often compared with), then the cheap linear models, then the slower forests and neighbours. A short budget that
# stops the defaults midway has then seen the ones that matter most.
DEFAULT_ORDER = (
    "lightgbm",
    "xgboost",
    "logistic_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "hist_gradient_boosting",
    "extra_trees",
    "random_forest",
    "linear_svm",
    "knn",
)


def first_trials(families: list[str], target, overrides: dict[str, Any], n_rows: int) -> list[tuple[dict, dict]]:
    """The trials a new study starts with, as ``(params, user_attrs)`` for Optuna's ``enqueue_trial``.

    First every family's library defaults (``user_attrs['default']``; with a count or skewed target, also the
    booster defaults with a Poisson loss or a log1p target), so that the final choice never loses to a default model
    it could have picked; then the portfolio's known-good points, leaving out those outside a user's own range.
    """
    ordered = [f for f in DEFAULT_ORDER if f in families] + [f for f in families if f not in DEFAULT_ORDER]
    out: list[tuple[dict, dict]] = []
    for family in ordered:
        for variant in default_variants(family, target):
            out.append(({"family": family}, {"default": True, "variant": variant}))
    for family, params in PORTFOLIO:
        if family in families and all(_inside(overrides.get(f"{family}.{k}"), v) for k, v in params.items()):
            prefixed = {f"{family}.{k}": v for k, v in params.items()}
            for name in objective_choices(family, target)[:1]:  # the portfolio point fits the squared error
                prefixed[f"{family}.objective"] = name
            if target is not None and len(target.transforms) > 1:
                prefixed[f"{family}.target_transform"] = "none"
            out.append(({"family": family, **prefixed}, {}))
    return out


def _inside(dim, value) -> bool:
    """Whether a user's ``SearchDimension`` (None: no override) can draw ``value``."""
    if dim is None:
        return True
    if dim.choice is not None:
        return value in dim.choice
    low, high = dim.loguniform or dim.uniform or dim.integer
    return low <= value <= high


@dataclass(frozen=True)
class Dim:
    """One built-in search dimension of a family, and the values its estimator accepts (for users' own ranges).

    ``valid`` bounds (inclusive) what a user's ``search.space`` range may reach; ``choices`` lists a categorical
    dimension's values, which are also the only values a user's ``choice`` may hold.
    """

    kind: str  # "float" | "int" | "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    valid: tuple[float, float] = (0.0, float("inf"))
    choices: tuple = ()


_UNIT = (1e-6, 1.0)  # fractions of rows or columns, learning rates
_POSITIVE = (1e-12, 1e12)
_NONNEGATIVE = (0.0, 1e12)
_BOOSTER_COMMON = {
    "n_estimators": Dim("int", 50, 1000, log=True, valid=(1, 100_000)),
    "learning_rate": Dim("float", 0.01, 0.3, log=True, valid=_UNIT),
    "subsample": Dim("float", 0.5, 1.0, valid=_UNIT),
    "colsample_bytree": Dim("float", 0.4, 1.0, valid=_UNIT),
    "reg_lambda": Dim("float", 1e-3, 10.0, log=True, valid=_NONNEGATIVE),
}
_FOREST = {
    "n_estimators": Dim("int", 100, 400, log=True, valid=(1, 100_000)),
    "max_features": Dim("choice", choices=("sqrt", "0.5", "1.0")),
    "min_samples_leaf": Dim("int", 1, 10, log=True, valid=(1, 1e9)),
}
# Built-in search spaces: ranges follow AutoGluon's and FLAML's tuned defaults, narrowed where a trial must fit in
# seconds. Every library default lies inside its range, so a family's default trial is a point of its space.
SPACE: dict[str, dict[str, Dim]] = {
    "lightgbm": {
        **_BOOSTER_COMMON,
        "num_leaves": Dim("int", 4, 128, log=True, valid=(2, 131_072)),
        "min_child_samples": Dim("int", 2, 50, log=True, valid=(1, 1e9)),
    },
    "xgboost": {
        **_BOOSTER_COMMON,
        "max_depth": Dim("int", 2, 10, valid=(1, 30)),
        "min_child_weight": Dim("float", 0.5, 20.0, log=True, valid=_NONNEGATIVE),
    },
    "hist_gradient_boosting": {
        "max_iter": Dim("int", 50, 600, log=True, valid=(1, 100_000)),
        "learning_rate": Dim("float", 0.01, 0.3, log=True, valid=_UNIT),
        "max_leaf_nodes": Dim("int", 4, 64, log=True, valid=(2, 1e9)),
        "min_samples_leaf": Dim("int", 2, 50, log=True, valid=(1, 1e9)),
        "l2_regularization": Dim("float", 1e-4, 10.0, log=True, valid=_NONNEGATIVE),
    },
    "random_forest": _FOREST,
    "extra_trees": _FOREST,
    "logistic_regression": {"C": Dim("float", 1e-3, 100.0, log=True, valid=_POSITIVE)},
    "ridge": {"alpha": Dim("float", 1e-4, 100.0, log=True, valid=_NONNEGATIVE)},
    "lasso": {"alpha": Dim("float", 1e-4, 100.0, log=True, valid=_NONNEGATIVE)},
    "elastic_net": {
        "alpha": Dim("float", 1e-4, 100.0, log=True, valid=_NONNEGATIVE),
        "l1_ratio": Dim("float", 0.05, 0.95, valid=(0.0, 1.0)),
    },
    "linear_svm": {"C": Dim("float", 1e-3, 100.0, log=True, valid=_POSITIVE)},
    "knn": {
        "n_neighbors": Dim("int", 3, 50, log=True, valid=(1, 1e9)),
        "weights": Dim("choice", choices=("uniform", "distance")),
    },
}
# Loss functions a booster can fit for a regression target (see ``settings.target_rule``), in each library's name.
OBJECTIVES = {
    "xgboost": {"squared_error": "reg:squarederror", "poisson": "count:poisson", "tweedie": "reg:tweedie"},
    "lightgbm": {"squared_error": "regression", "poisson": "poisson", "tweedie": "tweedie"},
    "hist_gradient_boosting": {"squared_error": "squared_error", "poisson": "poisson"},
}


def space_of(family: str, n_rows: int) -> dict[str, Dim]:
    """The built-in dimensions of ``family``; k-NN's neighbours are capped by the rows (a quarter of them)."""
    space = dict(SPACE[family])
    if family == "knn":
        space["n_neighbors"] = Dim("int", 3, min(50, max(4, n_rows // 4)), log=True, valid=(1, 1e9))
    return space


def sample(trial, key: str, dim) -> Any:
    """Draw ``key`` from a built-in ``Dim`` or a user's ``SearchDimension`` (``search.space``)."""
    if isinstance(dim, Dim):
        if dim.kind == "choice":
            return trial.suggest_categorical(key, dim.choices)
        if dim.kind == "int":
            return trial.suggest_int(key, int(dim.low), int(dim.high), log=dim.log)
        return trial.suggest_float(key, dim.low, dim.high, log=dim.log)
    if dim.choice is not None:
        return trial.suggest_categorical(key, tuple(dim.choice))
    if dim.integer is not None:
        return trial.suggest_int(key, *dim.integer)
    low, high = dim.loguniform or dim.uniform
    return trial.suggest_float(key, low, high, log=dim.loguniform is not None)


def suggest(trial, family: str, n_rows: int, target, overrides: dict[str, Any]) -> dict[str, Any]:
    """Sample the hyper-parameters of ``family`` for this trial (names without the family prefix).

    Args:
        trial: The Optuna trial; parameter names are ``family.name``.
        family: The model family drawn for this trial.
        n_rows: Training rows (bounds k-NN's neighbours).
        target: The regression target's candidate objectives and transforms (``settings.TargetRule``), or None.
        overrides: The user's ``search.space`` (``family.name`` -> ``SearchDimension``), replacing built-in ranges.
    """
    hp = {
        name: sample(trial, f"{family}.{name}", overrides.get(f"{family}.{name}", dim))
        for name, dim in space_of(family, n_rows).items()
    }
    if target is None:
        return hp
    objectives = objective_choices(family, target)
    if objectives:
        hp["objective"] = trial.suggest_categorical(f"{family}.objective", objectives)
        if hp["objective"] == "tweedie":
            # 1 < p < 2: compound Poisson-gamma, zeros and positive amounts (xgboost's and LightGBM's range).
            hp["tweedie_variance_power"] = trial.suggest_float(f"{family}.tweedie_variance_power", 1.1, 1.9)
    if len(target.transforms) > 1 and hp.get("objective", "squared_error") == "squared_error":
        hp["target_transform"] = trial.suggest_categorical(f"{family}.target_transform", target.transforms)
    return hp


def objective_choices(family: str, target) -> tuple[str, ...]:
    """The losses ``family`` may fit for this target: none to choose unless the rule found more than squared error."""
    if family not in OBJECTIVES or target is None or len(target.objectives) < 2:
        return ()
    return tuple(o for o in target.objectives if o in OBJECTIVES[family])


def default_variants(family: str, target) -> list[dict[str, Any]]:
    """The library-default configurations tried for ``family``: plain, then with the target's own loss/transform.

    A Poisson default is added for count targets and a log1p-target default for skewed ones (boosters only: they
    are where a loss matters most and cost least).
    """
    variants: list[dict[str, Any]] = [{}]
    if target is None or family not in ("lightgbm", "xgboost"):
        return variants
    if "poisson" in objective_choices(family, target):
        variants.append({"objective": "poisson"})
    if "log1p" in target.transforms:
        variants.append({"target_transform": "log1p"})
    return variants


def make_estimator(family: str, kind: str, params: dict[str, Any], seed: int, n_jobs: int, categorical: list[bool]):
    """A fresh, unfitted estimator of ``family`` with ``params`` (as returned by ``suggest``; ``{}``: its defaults).

    ``params`` holds no ``target_transform`` (the search wraps the pipeline for it); ``objective`` is one of
    ``OBJECTIVES[family]``'s keys.
    """
    classify = kind == "classification"
    params = dict(params)
    if "objective" in params:  # a regression loss, named once for every family (see OBJECTIVES)
        params["loss" if family == "hist_gradient_boosting" else "objective"] = OBJECTIVES[family][
            params.pop("objective")
        ]
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
        if "max_features" in params and params["max_features"] not in ("sqrt", "log2"):
            params["max_features"] = float(params["max_features"])
        return getattr(ensemble, name)(**params, random_state=seed, n_jobs=n_jobs)
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
