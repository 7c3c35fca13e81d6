"""The root config and its two-phase validation.

Phase 1 validates ``task`` and the shared sections; phase 2 validates ``params`` against the task's own Params
model and ``data.columns`` against the task's logical columns. Problems from both phases are gathered and
raised together as one ``ConfigError`` with dotted key paths and "did you mean" hints.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainforge.config.sections import (
    ComputeSection,
    DataSection,
    HubSection,
    ModelSection,
    OutputSection,
    PeftSection,
    SearchSection,
    TrainingSection,
)
from trainforge.errors import ConfigError

# Names users bring from other tools, mapped to ours, so the hint is right even when spelling is far off.
SYNONYMS = {
    "valid_split": "eval_split",
    "validation_split": "eval_split",
    "valid_fraction": "eval_fraction",
    "validation_fraction": "eval_fraction",
    "epochs": "num_train_epochs",
    "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "gradient_accumulation": "gradient_accumulation_steps",
    "scheduler": "lr_scheduler_type",
    "optimizer": "optim",
    "mixed_precision": "precision",
    "path": "source",
    "column_mapping": "columns",
    "max_seq_length": "max_length",
    "base_model": "model.name",
    "project_name": "output.dir",
    "lora_r": "peft.r",
    "lora_alpha": "peft.alpha",
    "lora_dropout": "peft.dropout",
    "use_peft": "peft.enabled",
}


class RunConfig(BaseModel):
    """One fully validated training run. Immutable: derived values live in the run's results, not here."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False)

    task: str = Field(description="Task id, e.g. text_classification (see `trainforge tasks`).")
    model: ModelSection
    data: DataSection
    training: TrainingSection = Field(default_factory=TrainingSection)
    params: Any = Field(default_factory=dict, description="Task-specific parameters (see `trainforge tasks TASK`).")
    peft: PeftSection = Field(default_factory=PeftSection)
    search: SearchSection = Field(default_factory=SearchSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
    output: OutputSection = Field(default_factory=OutputSection)
    hub: HubSection = Field(default_factory=HubSection)


def parse_config(raw: Any, source: str | None = None) -> RunConfig:
    """Validate a plain dict into a ``RunConfig`` whose ``params`` is the task's Params instance.

    Args:
        raw: The config as loaded from YAML (after env interpolation and overrides).
        source: Where it came from, for error messages.

    Returns:
        The validated config.

    Raises:
        ConfigError: Listing every problem found, by dotted key path.
    """
    from trainforge.tasks import get_task, task_names

    if not isinstance(raw, dict):
        raise ConfigError([("", f"the config must be a mapping of keys to values, got {type(raw).__name__}")], source)
    raw = dict(raw)
    problems: list[tuple[str, str]] = []
    spec = None
    task = raw.get("task")
    if task is None:
        problems.append(("task", f"required; one of: {', '.join(task_names())}"))
    elif not isinstance(task, str) or task not in task_names():
        problems.append(
            ("task", f"unknown task {task!r}{_hint(str(task), task_names())}; known: {', '.join(task_names())}")
        )
    else:
        spec = get_task(task)
        _apply_task_defaults(raw, spec)
        if spec.relocate_params is not None and isinstance(raw.get("params"), dict):
            problems += spec.relocate_params(raw)

    raw_params = raw.pop("params", None) or {}
    config = None
    try:
        config = RunConfig.model_validate({**raw, "params": {}})
    except ValidationError as exc:
        problems += [p for p in _problems(exc, RunConfig) if not (p[0] == "task" and spec is None)]

    params = None
    if spec is not None:
        if not isinstance(raw_params, dict):
            problems.append(("params", not_a_mapping("params", raw_params, list(spec.params.model_fields))))
        else:
            try:
                params = spec.params.model_validate(raw_params)
            except ValidationError as exc:
                problems += [(f"params.{k}" if k else "params", m) for k, m in _problems(exc, spec.params)]
        problems += _column_problems(raw, spec)

    if problems:
        raise ConfigError(problems, source)
    assert spec is not None and config is not None and params is not None  # each missing one added a problem
    config = config.model_copy(update={"params": params})
    ignored = _ignored_fields(config, spec)
    if ignored:
        raise ConfigError(ignored, source)
    search_problems = _search_space_problems(config, spec)
    if search_problems:
        raise ConfigError(search_problems, source)
    from trainforge.config.compute import compute_problems

    compute = compute_problems(config)
    if compute:
        raise ConfigError(compute, source)
    from trainforge.models.peft import check_peft

    peft_problems = check_peft(config)
    if peft_problems:
        raise ConfigError(peft_problems, source)
    if spec.check_config is not None:
        spec_problems = spec.check_config(config)
        if spec_problems:
            raise ConfigError(spec_problems, source)
    return config


def _ignored_fields(config: RunConfig, spec) -> list[tuple[str, str]]:
    """Fields of shared sections that the task does not read, set to something other than their default."""
    problems = []
    for section_name in type(config).model_fields:
        used = spec.fields_applying(section_name)
        if used is None:
            continue
        section = getattr(config, section_name)
        default = type(section).model_construct()
        why = spec.why_not_applying(section_name)
        for name, info in type(section).model_fields.items():
            if name in used or info.is_required() or getattr(section, name) == getattr(default, name):
                continue
            problems.append(
                (
                    f"{section_name}.{name}",
                    f"does not apply to task {spec.name}{f' ({why})' if why else ''}; "
                    f"remove it. What applies in {section_name}: {', '.join(sorted(used)) or 'nothing'}",
                )
            )
    return problems


SEARCHABLE_SECTIONS = ("training", "peft", "params", "model")


def _search_space_problems(config: RunConfig, spec) -> list[tuple[str, str]]:
    """Each searched key names a field, and the values that bound its range pass validation like user input.

    A trial's sampled config is validated again when it is made; checking the bounds here makes a range that
    leaves the valid values fail at ``validate``, not in the middle of a study.
    """
    from trainforge.config.loading import dump_resolved

    problems: list[tuple[str, str]] = []
    search = config.search
    if search.trials and not spec.own_search:
        if not search.space:
            problems.append(("search.space", "search.trials > 0 needs a space: the config keys to search and ranges"))
        if not (config.data.eval_split or config.data.eval_fraction):
            problems.append(("search.trials", "a search compares trials on evaluation metrics: give an eval split"))
    if search.storage:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(search.storage).get_dialect()
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            problems.append(("search.storage", f"not a usable database URL ({exc}); e.g. sqlite:///study.db"))
    lora_keys = [k for k in search.space if k.startswith("peft.") and k != "peft.enabled"]
    if lora_keys and not config.peft.enabled and "peft.enabled" not in search.space:
        problems.append(
            (
                f"search.space.{lora_keys[0]}",
                "searches a LoRA setting while peft.enabled is false: it would do nothing",
            )
        )
    if search.metric and search.metric.startswith("test_"):
        problems.append(
            ("search.metric", f"{search.metric!r} would choose by the test split; search on an eval_* metric")
        )
    if spec.own_search:  # the task's check_config reads its space
        return problems
    for key, dimension in search.space.items():
        where = f"search.space.{key}"
        section, _, name = key.partition(".")
        if key == "training.seed":
            problems.append(
                (where, "the seed also makes the eval hold-out, which a search keeps fixed: not searchable")
            )
            continue
        model: type[BaseModel] | None = None
        if section in SEARCHABLE_SECTIONS:
            model = spec.params if section == "params" else type(getattr(config, section))
        if model is None or not name or "." in name or name not in model.model_fields:
            fields = list(model.model_fields) if model is not None else []
            problems.append(
                (
                    where,
                    f"not a searchable key{_hint(name, fields)}: use section.field with a section among "
                    f"{', '.join(SEARCHABLE_SECTIONS)}",
                )
            )
            continue
        field = model.model_fields[name]
        if dimension.choice is None and dimension.integer is None and field.annotation in (int, int | None):
            problems.append((where, f"{key} is a whole number: search it with int: [low, high] or choice: [...]"))
            continue
        for value in dimension.extremes():
            raw = dump_resolved(config)
            raw.pop("search")
            raw[section][name] = value
            try:
                parse_config(raw)
            except ConfigError as exc:
                reasons = "; ".join(f"{k}: {m}" if k else m for k, m in exc.problems)
                problems.append((where, f"the value {value!r} is not valid ({reasons})"))
    return problems


def _apply_task_defaults(raw: dict, spec) -> None:
    """Fill task-specific defaults the user did not set (e.g. an LLM's learning rate, the run directory)."""
    training = raw.get("training")
    if isinstance(training, dict) or training is None:
        raw["training"] = {**spec.training_defaults, **(training or {})}
    if raw.get("model") is None and spec.default_model is not None:
        raw["model"] = {"name": spec.default_model}
    output = raw.get("output")
    if output is None or (isinstance(output, dict) and "dir" not in output):
        raw["output"] = {**(output or {}), "dir": f"runs/{spec.name}"}


def _column_problems(raw: dict, spec) -> list[tuple[str, str]]:
    data = raw.get("data")
    columns = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(columns, dict):
        return []
    known = [c.name for c in spec.columns]
    problems = [
        (
            f"data.columns.{key}",
            f"not a column of task {spec.name}{_hint(key, known)}; its columns: {', '.join(known)}",
        )
        for key in columns
        if key not in known
    ]
    # Two logical columns read from one column of the data (text and label: review) train on nonsense, such as every
    # text its own class; no task reads one column twice. Names are compared as the reader trims them; a key that is
    # no column of the task is reported above (with a "did you mean"), not here again.
    named: dict[str, list[str]] = {}
    for logical, user in columns.items():
        if logical in known and isinstance(user, str):
            named.setdefault(user.strip(), []).append(logical)
    for user, logicals in named.items():
        if len(logicals) > 1:
            both = "both" if len(logicals) == 2 else "all"
            problems.append(
                (
                    "data.columns",
                    f"{', '.join(logicals[:-1])} and {logicals[-1]} {both} map to {user!r}, but each logical column "
                    "reads a column of its own: map them to different columns of the data",
                )
            )
    return problems


def _problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            siblings = _field_names(root, loc[:-1])
            out.append((key, f"unknown key{_hint(loc[-1], siblings)}"))
        elif err["type"] == "missing":
            out.append((key, "required"))
        elif err["type"] in ("model_type", "dict_type"):
            fields = _section_fields(root, err.get("ctx", {}).get("class_name", ""))
            out.append((key, not_a_mapping(key, err.get("input"), fields)))
        else:
            message = err["msg"].removeprefix("Value error, ")
            if (
                "input" in err
                and err["type"] not in ("model_type", "dict_type")
                and not isinstance(err["input"], dict)
            ):
                message += f" (got {err['input']!r})"
            out.append((key, message))
    return out


# What a value that should have been a mapping is, in the words of a YAML file (never the value: it can be a secret).
_KINDS: list[tuple[type | tuple[type, ...], str]] = [
    (bool, "true/false"),
    ((int, float), "a number"),
    (str, "text"),
    (list, "a list"),
]


def not_a_mapping(key: str, value: Any, fields: list[str]) -> str:
    """The message for a section (or mapping) written as a single value, e.g. ``training: 5`` or ``model: bert``.

    Names what was written (a number, text, a list) and the shape to write, with the section's keys when known;
    never the value itself, which may hold a secret read from the environment.
    """
    what = "empty" if value is None else next((w for t, w in _KINDS if isinstance(value, t)), type(value).__name__)
    # A search.space key is dotted itself (search.space.training.learning_rate): name it whole.
    name = key.split(".space.", 1)[1] if ".space." in key else key.rsplit(".", 1)[-1]
    if not fields:
        return f"must be a mapping of keys to values, not {what}: write it as {name}: {{KEY: VALUE, ...}}"
    shown = ", ".join(fields[:8]) + (", ..." if len(fields) > 8 else "")
    return f"is a section of keys, not {what}: write it as {name}: {{{fields[0]}: ...}} (its keys: {shown})"


def _section_fields(root: type[BaseModel], class_name: str) -> list[str]:
    """The keys (aliases as written in YAML) of the section class ``class_name`` found below ``root``."""
    todo, seen = [root], {root}
    while todo:
        model = todo.pop()
        if model.__name__ == class_name:
            return [field.alias or name for name, field in model.model_fields.items()]
        for field in model.model_fields.values():
            for kind in _types_in(field.annotation):
                if isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in seen:
                    seen.add(kind)
                    todo.append(kind)
    return []


def _types_in(annotation: Any) -> list[Any]:
    """``annotation`` and every type nested in it (``dict[str, X] | None`` -> dict, str, X, None)."""
    import typing

    return [annotation, *(t for arg in typing.get_args(annotation) for t in _types_in(arg))]


def _field_names(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Names of the fields at ``loc`` below ``model`` (for "did you mean" hints)."""
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _hint(name: str, candidates: list[str]) -> str:
    if name in SYNONYMS:
        target = SYNONYMS[name]
        if target.split(".")[-1] in candidates or "." in target:
            return f"; did you mean {target!r}?"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
