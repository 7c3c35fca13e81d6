"""Translate a config written for AutoTrain Advanced (the reference) into trainforge's shape.

The reference's YAML has ``task``, ``base_model``, ``project_name``, ``log``, ``backend``, ``data.path``,
``data.train_split/valid_split/column_mapping``, ``params`` and ``hub``. Tasks declare their own column and
parameter names in ``TaskSpec.autotrain``; the shared training names live here. Anything we cannot map is an
error that names the key, never silently dropped.
"""

from __future__ import annotations

import sys
from typing import Any

from trainforge.errors import ConfigError

# Reference training parameter -> our "section.field".
TRAINING_PARAMS = {
    "lr": "training.learning_rate",
    "epochs": "training.num_train_epochs",
    "batch_size": "training.per_device_train_batch_size",
    "warmup_ratio": "training.warmup_ratio",
    "gradient_accumulation": "training.gradient_accumulation_steps",
    "optimizer": "training.optim",
    "scheduler": "training.lr_scheduler_type",
    "weight_decay": "training.weight_decay",
    "max_grad_norm": "training.max_grad_norm",
    "seed": "training.seed",
    "logging_steps": "training.logging_steps",
    "eval_strategy": "training.eval_strategy",
    "save_total_limit": "training.save_total_limit",
    "auto_find_batch_size": "training.auto_find_batch_size",
    "mixed_precision": "training.precision",
    "early_stopping_patience": "training.early_stopping_patience",
    "early_stopping_threshold": "training.early_stopping_threshold",
    "disable_gradient_checkpointing": "training.gradient_checkpointing",
}
_LOCAL_BACKENDS = {"local", "local-cli", "local-ui"}
_MARKERS = {"base_model", "project_name", "backend", "log"}


def is_autotrain_config(raw: dict) -> bool:
    """Whether ``raw`` is in the reference's shape rather than ours."""
    data = raw.get("data")
    return bool(_MARKERS & raw.keys()) or (isinstance(data, dict) and bool({"path", "column_mapping"} & data.keys()))


def translate(raw: dict, source: str | None = None) -> dict:
    """Map a reference config onto trainforge's sections (printing one note per lossy choice).

    Raises:
        ConfigError: For a task, backend, column or parameter that has no trainforge equivalent.
    """
    from trainforge.tasks import list_tasks
    from trainforge.tasks.spec import AUTOTRAIN_DROP

    problems: list[tuple[str, str]] = []
    task_value = raw.get("task")
    spec = next((s for s in list_tasks() if task_value == s.name or _picks(s, task_value, raw)), None)
    if spec is None or spec.autotrain is None:
        raise ConfigError([("task", f"{task_value!r} is not a reference task trainforge reads")], source)

    out: dict[str, Any] = {"task": spec.name, "model": {"name": raw.get("base_model")}, "training": {}, "params": {}}
    output: dict[str, Any] = {}
    if raw.get("project_name"):
        output["dir"] = str(raw["project_name"])
    if "log" in raw:
        output["report_to"] = ["tensorboard"] if raw["log"] == "tensorboard" else ["none"]
    out["output"] = output
    backend = raw.get("backend", "local")
    if backend not in _LOCAL_BACKENDS:
        problems.append(
            ("backend", f"{backend!r} runs on Hugging Face infrastructure; trainforge runs locally (use 'local')")
        )

    out["data"] = _translate_data(raw.get("data") or {}, spec, problems)
    for key in [k for k in out["data"]["columns"] if k.startswith("params.")]:  # a reference column that is a param
        value = out["data"]["columns"].pop(key)
        out["params"][key.removeprefix("params.")] = [value] if isinstance(value, str) else value
    hub = raw.get("hub") or {}
    params = dict(raw.get("params") or {})
    if (raw.get("data") or {}).get("chat_template") is not None:
        params.setdefault("chat_template", raw["data"]["chat_template"])
    for key in ("username", "token", "push_to_hub"):
        if key in params:
            hub.setdefault(key, params.pop(key))
    out["hub"] = _translate_hub(hub, raw.get("project_name"))

    for name, value in params.items():
        if name in TRAINING_PARAMS:
            section, field = TRAINING_PARAMS[name].split(".")
            out[section][field] = _convert(name, value)
        elif name in spec.autotrain.params:
            if spec.autotrain.values is not None:
                value = spec.autotrain.values(name, value)
            if value is not AUTOTRAIN_DROP:
                out["params"][spec.autotrain.params[name]] = value
        else:
            known = sorted(TRAINING_PARAMS) + sorted(spec.autotrain.params)
            problems.append(
                (
                    f"params.{name}",
                    f"not a reference parameter trainforge maps for {spec.name}; known: {', '.join(known)}",
                )
            )
    if problems:
        raise ConfigError(problems, source)
    print(f"note: read {source or 'config'} as an AutoTrain config for task {spec.name}", file=sys.stderr)
    return out


def _picks(spec, task_value: Any, raw: dict) -> bool:
    shape = spec.autotrain
    return bool(shape and task_value in shape.aliases and (shape.selector is None or shape.selector(raw)))


def _translate_data(data: dict, spec, problems: list[tuple[str, str]]) -> dict:
    out: dict[str, Any] = {"source": data.get("path"), "train_split": data.get("train_split") or "train"}
    if data.get("valid_split"):
        out["eval_split"] = data["valid_split"]
    else:
        # The reference holds out 20% (seeded, stratified for classification) when no validation split is named.
        out["eval_fraction"] = 0.2
    columns = {}
    for ref_name, user_column in (data.get("column_mapping") or {}).items():
        if ref_name in spec.autotrain.columns:
            columns[spec.autotrain.columns[ref_name]] = user_column
        else:
            known = ", ".join(spec.autotrain.columns)
            problems.append((f"data.column_mapping.{ref_name}", f"not a column of {spec.name}; known: {known}"))
    out["columns"] = columns
    for key in set(data) - {"path", "train_split", "valid_split", "column_mapping", "chat_template"}:
        problems.append((f"data.{key}", "not a reference data key trainforge reads"))
    return out


def _translate_hub(hub: dict, project_name: Any) -> dict:
    out: dict[str, Any] = {"push": bool(hub.get("push_to_hub", False))}
    if hub.get("token"):
        out["token"] = hub["token"]
    if hub.get("username") and project_name:
        out["repo_id"] = f"{hub['username']}/{project_name}"
    return out


def _convert(name: str, value: Any) -> Any:
    """Reference values whose meaning differs from ours."""
    if name == "logging_steps" and value == -1:
        return None  # the reference's "-1 = automatic"
    if name == "mixed_precision":
        if value in ("fp16", "bf16"):
            print(
                f"note: mixed_precision {value} -> precision auto (mixed precision on a capable GPU, fp32 on CPU)",
                file=sys.stderr,
            )
        if value in (False, "no", "none"):  # the reference's explicit "no mixed precision" (a bare YAML `no` is false)
            return "fp32"
        return "auto" if value in (None, "fp16", "bf16") else value
    if name == "disable_gradient_checkpointing":
        return not value
    if name == "optimizer" and isinstance(value, str) and ("8bit" in value or value.startswith("paged_")):
        print(
            f"note: optimizer {value} (bitsandbytes) -> adamw_torch; "
            "trainforge does not offer bitsandbytes optimizers",
            file=sys.stderr,
        )
        return "adamw_torch"
    return value
