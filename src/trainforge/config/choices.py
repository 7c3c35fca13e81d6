"""Every closed choice list in the config. The only place these literals live."""

from typing import Literal

Precision = Literal["auto", "fp32", "fp16", "bf16"]
EvalStrategy = Literal["epoch", "steps", "no"]
Scheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
]
Optimizer = Literal["adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop"]
ReportTo = Literal["tensorboard", "none"]
DataFormat = Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "conll", "disk", "hub"]
TabularModel = Literal[
    "auto",
    "lightgbm",
    "xgboost",
    "hist_gradient_boosting",
    "extra_trees",
    "random_forest",
    "logistic_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "linear_svm",
    "knn",
]
TabularClassificationMetric = Literal["log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc"]
TabularRegressionMetric = Literal["rmse", "mae", "r2", "mape"]
NumericalImputer = Literal["median", "mean", "most_frequent"]
CategoricalImputer = Literal["constant", "most_frequent"]
NumericScaler = Literal["standard", "robust", "minmax", "maxabs", "normal"]
