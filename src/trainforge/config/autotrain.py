"""Translate a config written for AutoTrain Advanced (the reference) into trainforge's shape.

The reference's YAML has ``task``, ``base_model``, ``project_name``, ``log``, ``backend``, ``data.path``,
``data.train_split/valid_split/column_mapping``, ``params`` and ``hub``. Tasks declare their own column and
parameter names in ``TaskSpec.autotrain``; the shared training names live here.

Nothing is dropped silently. Every key is either translated, or read as trainforge's own (a dotted override such
as ``training.max_steps=1`` adds a ``training`` section; trainforge's own names are accepted inside ``data``,
``hub`` and ``params`` too, and win over translated values with a note), or accepted with a note (a parameter the
reference knows that trainforge does not use, an older reference name, a reference setting trainforge cannot honour
and the reference itself ignores or falls back from), or an error naming the key with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import PurePath
from typing import Any

from trainforge.config.schema import not_a_mapping
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
    # LoRA settings: the reference's LLM and seq2seq params; one shared peft: section here, for every task.
    "peft": "peft.enabled",
    "lora_r": "peft.r",
    "lora_alpha": "peft.alpha",
    "lora_dropout": "peft.dropout",
    "target_modules": "peft.target_modules",
    "merge_adapter": "peft.merge_adapter",
    "quantization": "peft.quantization",
}
_LOCAL_BACKENDS = {"local", "local-cli", "local-ui"}
# The reference's hosted backends (src/autotrain/backends/base.py: Spaces, Endpoints, NGC/DGX, NVCF).
_REMOTE_BACKEND_PREFIXES = ("spaces-", "ep-", "dgx-", "ngc-", "nvcf-")
_MARKERS = {"base_model", "project_name", "backend", "log"}

# The top-level keys the reference's parser reads (src/autotrain/parser.py), and those inside data/hub.
REFERENCE_KEYS = ("task", "base_model", "project_name", "log", "backend", "data", "params", "hub")
REFERENCE_DATA_KEYS = ("path", "train_split", "valid_split", "chat_template", "column_mapping")
REFERENCE_HUB_KEYS = ("username", "token", "push_to_hub")
# trainforge's own sections, accepted beside the reference's keys and merged over the translation.
OUR_SECTIONS = ("model", "training", "peft", "output")

# Every `task:` value the reference's parser accepts: one trainforge does not read is "not supported yet".
REFERENCE_TASKS = (
    "llm",
    "llm-sft",
    "llm-orpo",
    "llm-generic",
    "llm-dpo",
    "llm-reward",
    "image_binary_classification",
    "image-binary-classification",
    "image_classification",
    "image-classification",
    "seq2seq",
    "tabular",
    "text_binary_classification",
    "text-binary-classification",
    "text_classification",
    "text-classification",
    "text_single_column_regression",
    "text-single-column-regression",
    "text_regression",
    "text-regression",
    "token_classification",
    "token-classification",
    "image_object_detection",
    "image-object-detection",
    "object_detection",
    "object-detection",
    "st",
    "st:pair",
    "st:pair_class",
    "st:pair_score",
    "st:triplet",
    "st:qa",
    "sentence-transformers:pair",
    "sentence-transformers:pair_class",
    "sentence-transformers:pair_score",
    "sentence-transformers:triplet",
    "sentence-transformers:qa",
    "image_single_column_regression",
    "image-single-column-regression",
    "image_regression",
    "image-regression",
    "image-scoring",
    "vlm:captioning",
    "vlm:vqa",
    "extractive_question_answering",
    "ext_qa",
    "ext-qa",
    "extractive-qa",
)

# Fields of the reference's params classes (src/autotrain/trainers/*/params.py), by the task family that reads
# them: a name here that trainforge does not map is accepted with a note (the reference would use it; we cannot).
_REFERENCE_SHARED = frozenset(
    {"model", "project_name", "data_path", "train_split", "valid_split", "username", "token", "push_to_hub", "seed"}
)
_REFERENCE_TRAINER = frozenset(TRAINING_PARAMS) | {"log"}
_REFERENCE_FIELDS = {
    "llm": _REFERENCE_SHARED
    | _REFERENCE_TRAINER
    | {
        "add_eos_token",
        "block_size",
        "model_max_length",
        "padding",
        "trainer",
        "use_flash_attention_2",
        "chat_template",
        "quantization",
        "target_modules",
        "merge_adapter",
        "peft",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "model_ref",
        "dpo_beta",
        "max_prompt_length",
        "max_completion_length",
        "prompt_text_column",
        "text_column",
        "rejected_text_column",
        "unsloth",
        "distributed_backend",
    },
    "text": _REFERENCE_SHARED | _REFERENCE_TRAINER | {"max_seq_length", "text_column", "target_column"},
    "seq2seq": _REFERENCE_SHARED
    | _REFERENCE_TRAINER
    | {"max_seq_length", "max_target_length", "text_column", "target_column"},
    "tabular": _REFERENCE_SHARED
    | {
        "id_column",
        "target_columns",
        "categorical_columns",
        "numerical_columns",
        "task",
        "num_trials",
        "time_limit",
        "categorical_imputer",
        "numerical_imputer",
        "numeric_scaler",
    },
}
_FAMILY = {
    "llm_sft": "llm",
    "llm_generic": "llm",
    "llm_dpo": "llm",
    "llm_orpo": "llm",
    "llm_reward": "llm",
    "text_classification": "text",
    "text_regression": "text",
    "tabular_classification": "tabular",
    "tabular_regression": "tabular",
    "extractive_qa": "text",
    "seq2seq": "seq2seq",
}
# Reference params that stand for its top-level settings (its parser lets `params` override everything else).
_TOP_LEVEL_PARAMS = {
    "model": (None, "base_model"),
    "project_name": (None, "project_name"),
    "log": (None, "log"),
    "data_path": ("data", "path"),
    "train_split": ("data", "train_split"),
    "valid_split": ("data", "valid_split"),
}
_SKIP = object()  # a legacy switch that is off: it sets nothing
# Older reference param names (renamed since): read as the current name (and value), with a note.
_LEGACY = {
    "evaluation_strategy": ("eval_strategy", None),
    "use_peft": ("peft", None),
    "train_batch_size": ("batch_size", None),
    "fp16": ("mixed_precision", lambda on: "fp16" if on else "no"),
    "use_int4": ("quantization", lambda on: "int4" if on else _SKIP),
    "use_int8": ("quantization", lambda on: "int8" if on else _SKIP),
}
# Older reference names with no current meaning in trainforge: accepted with a note saying why nothing changes.
_LEGACY_UNUSED = {
    "save_strategy": "trainforge saves a checkpoint at each evaluation",
}


def is_autotrain_config(raw: dict) -> bool:
    """Whether ``raw`` is in the reference's shape rather than ours."""
    data = raw.get("data")
    return bool(_MARKERS & raw.keys()) or (isinstance(data, dict) and bool({"path", "column_mapping"} & data.keys()))


def translate(raw: dict, source: str | None = None) -> dict:
    """Map a reference config onto trainforge's sections (printing one note per lossy or lenient choice).

    Args:
        raw: The config in the reference's shape, after environment interpolation and dotted overrides.
        source: Where it came from, for messages.

    Returns:
        The config in trainforge's shape (validated afterwards by ``parse_config``).

    Raises:
        ConfigError: For a task, backend, key, column or parameter that has no trainforge equivalent, every
            problem listed with its dotted key.
    """
    problems: list[tuple[str, str]] = []
    for key in raw:
        if key not in REFERENCE_KEYS and key not in OUR_SECTIONS:
            problems.append((str(key), f"unknown key{_hint(str(key), [*REFERENCE_KEYS, *OUR_SECTIONS])}"))
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        problems.append(("params", not_a_mapping("params", params, [])))
        params = {}
    spec = _pick_spec(raw.get("task"), params, problems, source)
    raw, params = _fold_top_level_params(raw, dict(params), spec)

    t = _Translation(spec, problems)
    out = t.out
    if raw.get("base_model") is not None:
        out["model"]["name"] = raw["base_model"]
    elif not (isinstance(raw.get("model"), dict) and raw["model"].get("name")):
        problems.append(("base_model", "required: a Hub model id or a local folder saved with save_pretrained"))
    if raw.get("project_name"):
        out["output"]["dir"] = str(raw["project_name"])
    if "log" in raw:
        out["output"]["report_to"] = _report_to(raw["log"])
    backend = raw.get("backend", "local")
    if isinstance(backend, str) and backend.startswith(_REMOTE_BACKEND_PREFIXES):
        # The reference's examples name the hardware they were written for (e.g. llama3-8b-orpo-space.yml): the
        # config itself is valid, so it runs here, on this machine, instead of being refused.
        _note(f"backend {backend!r} names the reference's hosted hardware; trainforge trains locally on this machine")
    elif not isinstance(backend, str) or backend not in _LOCAL_BACKENDS:
        problems.append(
            (
                "backend",
                f"{backend!r} is not a reference backend; use 'local' (hosted ones such as 'spaces-a10g-large' are "
                "accepted and run locally)",
            )
        )

    data = raw.get("data") or {}
    if not isinstance(data, dict):
        problems.append(("data", not_a_mapping("data", data, [])))
        data = {}
    if data.get("path") is None and data.get("source") is None:
        problems.append(("data.path", "required: a data file or folder, or a Hub dataset id"))
    out["data"] = _translate_data(data, spec, problems)
    for key in [k for k in out["data"]["columns"] if k.startswith("params.")]:  # a reference column that is a param
        value = out["data"]["columns"].pop(key)
        t.set("params", key.removeprefix("params."), [value] if isinstance(value, str) else value, "data")
    if data.get("chat_template") is not None:
        if "chat_template" in spec.autotrain.params:
            params.setdefault("chat_template", data["chat_template"])
        else:
            _note(f"data.chat_template: the reference reads it for LLM tasks only; ignored for {spec.name}")

    hub = raw.get("hub") or {}
    if not isinstance(hub, dict):
        problems.append(("hub", not_a_mapping("hub", hub, [])))
        hub = {}
    hub = dict(hub)
    for key in REFERENCE_HUB_KEYS:
        if key in params:
            hub.setdefault(key, params.pop(key))
    out["hub"] = _translate_hub(hub, raw.get("project_name"), problems)

    t.params(params)
    t.lenient_peft_options()
    for section in OUR_SECTIONS:
        if section in raw:
            t.merge_section(section, raw[section])
    if problems:
        raise ConfigError(problems, source)
    _note(f"read {source or 'config'} as an AutoTrain config for task {spec.name}")
    return out


# ---------------------------------------------------------------------------------------------------- task


def _pick_spec(task_value: Any, params: dict, problems: list[tuple[str, str]], source: str | None):
    """The task spec the reference's ``task:`` (and, for ``llm``, ``params.trainer``) names.

    Raises:
        ConfigError: Unknown or not-yet-supported task (with the problems found so far).
    """
    from trainforge.tasks import list_tasks

    specs = [s for s in list_tasks() if s.autotrain is not None]
    chosen = task_value
    if task_value == "llm":  # the reference takes the trainer from params.trainer (default: its generic trainer)
        trainer = params.get("trainer") or "default"
        chosen = "llm-generic" if trainer in ("default", "generic") else f"llm-{trainer}"
    raw_like = {"params": params}
    spec = next((s for s in specs if chosen == s.name or _picks(s, chosen, raw_like)), None)
    if spec is not None:
        return spec
    supported = ", ".join(dict.fromkeys(_reference_alias(s) for s in specs))
    ours = [alias for s in specs if s.autotrain is not None for alias in s.autotrain.aliases] + [s.name for s in specs]
    if task_value is None:
        message = f"required; supported tasks: {supported}"
    elif task_value == "llm":
        raise ConfigError(
            [
                *problems,
                (
                    "params.trainer",
                    f"{params.get('trainer')!r}: the reference's LLM trainers are sft, dpo, orpo, reward and default",
                ),
            ],
            source,
        )
    elif task_value in REFERENCE_TASKS or chosen in REFERENCE_TASKS:
        message = (
            f"{task_value!r} is not a reference task trainforge reads: not supported yet; supported tasks: {supported}"
        )
    else:
        close = difflib.get_close_matches(str(task_value), list(dict.fromkeys(ours + list(REFERENCE_TASKS))), 1, 0.6)
        hint = ""
        if close:
            hint = f"; did you mean {close[0]!r}?" + ("" if close[0] in ours else " (not supported yet)")
        message = f"unknown task {task_value!r}{hint}; supported tasks: {supported}"
    raise ConfigError([*problems, ("task", message)], source)


def _reference_alias(spec) -> str:
    """The spelling of ``spec``'s task in the reference's own configs (its hyphenated alias where it has one)."""
    aliases = [a for a in spec.autotrain.aliases if a in REFERENCE_TASKS] or list(spec.autotrain.aliases)
    return next((a for a in aliases if "-" in a), aliases[0])


def _picks(spec, task_value: Any, raw: dict) -> bool:
    shape = spec.autotrain
    return bool(shape and task_value in shape.aliases and (shape.selector is None or shape.selector(raw)))


def _fold_top_level_params(raw: dict, params: dict, spec) -> tuple[dict, dict]:
    """Move params that stand for top-level settings or columns to where the reference reads them.

    The reference's parser updates its settings with ``params`` last, so ``params.model`` or
    ``params.text_column`` override ``base_model`` and ``data.column_mapping``.
    """
    raw = dict(raw)
    data = dict(raw.get("data") or {}) if isinstance(raw.get("data"), dict | None) else raw.get("data")
    for name in [n for n in params if n in _TOP_LEVEL_PARAMS]:
        section, key = _TOP_LEVEL_PARAMS[name]
        if section is None:
            raw[key] = params.pop(name)
        elif isinstance(data, dict):
            data[key] = params.pop(name)
    for name in [n for n in params if n in spec.autotrain.columns]:
        if isinstance(data, dict):
            data["column_mapping"] = {**(data.get("column_mapping") or {}), name: params.pop(name)}
    if data is not None:
        raw["data"] = data
    return raw, params


# ---------------------------------------------------------------------------------------------------- params


class _Translation:
    """The config being built, with where each value came from (to say which one an override replaced)."""

    def __init__(self, spec, problems: list[tuple[str, str]]):
        self.spec = spec
        self.problems = problems
        self.out: dict[str, Any] = {
            "task": spec.name,
            "model": {},
            "training": {},
            "peft": {},
            "params": {},
            "output": {},
        }
        self.origin: dict[str, str] = {}

    def set(self, section: str, field: str, value: Any, source: str) -> None:
        """Set ``section.field``; a value from another source that it replaces is named in a note."""
        key = f"{section}.{field}"
        target = self.out[section]
        if key in self.origin and self.origin[key] != source and target.get(field) != value:
            _note(f"{source} {value!r} replaces {target.get(field)!r} (from {self.origin[key]}) for {key}")
        target[field] = value
        self.origin[key] = source

    def params(self, params: dict) -> None:
        """Route every ``params`` entry: reference names first, then trainforge's own names (which win)."""
        from trainforge.config.sections import TrainingSection

        spec = self.spec
        own = spec.params.model_fields
        deferred = []
        for name, value in params.items():
            source = f"params.{name}"
            if name in _LEGACY:
                name, convert = _LEGACY[name]
                value = value if convert is None else convert(value)
                if value is _SKIP:
                    _note(f"{source} is off: an older reference switch that sets nothing")
                    continue
                _note(f"{source} is the reference's older name of {name}; read as {name}: {value!r}")
            if name in _LEGACY_UNUSED:
                _note(f"{source}: an older reference parameter; ignored ({_LEGACY_UNUSED[name]})")
            elif name in TRAINING_PARAMS:
                section, field = TRAINING_PARAMS[name].split(".")
                self.set(section, field, _convert(name, value), source)
            elif name == "unsloth" and name in spec.autotrain.params:
                if value:
                    # The reference itself falls back to plain transformers when unsloth is missing or unsuitable.
                    _note(f"{source}: trainforge trains without unsloth, as the reference does when it is missing")
            elif name in spec.autotrain.params:
                self._task_param(name, value, source)
            elif name in own or name in TrainingSection.model_fields:
                deferred.append((name, value, source))
            elif name in _REFERENCE_FIELDS.get(_FAMILY.get(spec.name, ""), ()):
                _note(f"{source}: a reference parameter trainforge does not use for {spec.name}; ignored")
            else:
                self.problems.append((source, self._unknown(name)))
        for name, value, source in deferred:
            if name in own:
                self.set("params", name, value, source)
            else:
                _note(f"{source} is read as training.{name}")
                self.set("training", name, value, source)

    def _task_param(self, name: str, value: Any, source: str) -> None:
        from trainforge.tasks.spec import AUTOTRAIN_DROP

        shape = self.spec.autotrain
        try:
            if shape.values is not None:
                value = shape.values(name, value)
        except ConfigError as exc:  # the task's converter names its own key; collect it with the others
            self.problems.extend(exc.problems)
            return
        if value is not AUTOTRAIN_DROP:
            self.set("params", shape.params[name], value, source)

    def _unknown(self, name: str) -> str:
        from trainforge.config.sections import TrainingSection

        spec = self.spec
        known = sorted(TRAINING_PARAMS) + sorted(spec.autotrain.params)
        candidates = known + list(spec.params.model_fields) + list(TrainingSection.model_fields)
        return f"not a reference parameter trainforge maps for {spec.name}{_hint(name, candidates)}; known: " + (
            ", ".join(known)
        )

    def lenient_peft_options(self) -> None:
        """LoRA-only options without ``peft``: the reference trains every weight and ignores them; so do we."""
        peft = self.out["peft"]
        if peft.get("enabled"):
            return
        if peft.get("merge_adapter"):
            _note("params.merge_adapter without peft: a full fine-tune is already a full model; merge_adapter ignored")
            peft.pop("merge_adapter")
        if peft.get("quantization"):
            _note(
                f"params.quantization {peft['quantization']} without peft: the reference quantizes only for LoRA; "
                "ignored"
            )
            peft.pop("quantization")

    def merge_section(self, section: str, values: Any) -> None:
        """Merge a trainforge-shaped section (``training:``, ``model:``, ``output:``) over the translation."""
        if not isinstance(values, dict):
            self.problems.append((section, not_a_mapping(section, values, [])))
            return
        for field, value in values.items():
            self.set(section, str(field), value, f"{section}.{field}")


def _report_to(log: Any) -> list[str]:
    if log == "tensorboard":
        return ["tensorboard"]
    if log not in (None, "none", False):
        _note(f"log {log!r}: trainforge records events.jsonl and tensorboard only; logging to {log} is off")
    return ["none"]


# ---------------------------------------------------------------------------------------------------- data, hub


def _translate_data(data: dict, spec, problems: list[tuple[str, str]]) -> dict:
    from trainforge.config.sections import DataSection

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
            known = list(spec.autotrain.columns)
            problems.append(
                (
                    f"data.column_mapping.{ref_name}",
                    f"not a column of {spec.name}{_hint(ref_name, known)}; known: {', '.join(known)}",
                )
            )
    out["columns"] = columns
    ours = {}
    for key, value in data.items():
        if key in REFERENCE_DATA_KEYS:
            continue
        if key in DataSection.model_fields:
            ours[key] = value
        else:
            candidates = [*REFERENCE_DATA_KEYS, *DataSection.model_fields]
            problems.append((f"data.{key}", f"not a reference data key trainforge reads{_hint(str(key), candidates)}"))
    if isinstance(ours.get("columns"), dict):
        ours["columns"] = {**columns, **ours["columns"]}
    if "eval_split" in ours or "eval_fraction" in ours:  # the user's own evaluation policy replaces the translated one
        for key in ("eval_split", "eval_fraction"):
            if key not in ours:
                out.pop(key, None)
    for key, value in ours.items():
        if key in out and out[key] != value and key != "columns":
            _note(f"data.{key} {value!r} replaces {out[key]!r} (from the reference's data keys)")
        out[key] = value
    return out


def _translate_hub(hub: dict, project_name: Any, problems: list[tuple[str, str]]) -> dict:
    from trainforge.config.sections import HubSection

    out: dict[str, Any] = {"push": bool(hub.get("push_to_hub", False))}
    if hub.get("token"):
        out["token"] = hub["token"]
    if hub.get("username") and project_name:
        # project_name is also the output folder (a path, e.g. runs/my-model): the repository takes its last part.
        out["repo_id"] = f"{hub['username']}/{PurePath(str(project_name)).name}"
    for key, value in hub.items():
        if key in REFERENCE_HUB_KEYS:
            continue
        if key in HubSection.model_fields:
            out[key] = value
        else:
            candidates = [*REFERENCE_HUB_KEYS, *HubSection.model_fields]
            problems.append((f"hub.{key}", f"not a reference hub key trainforge reads{_hint(str(key), candidates)}"))
    return out


# ---------------------------------------------------------------------------------------------------- values


def _convert(name: str, value: Any) -> Any:
    """Reference values whose meaning differs from ours."""
    if name == "logging_steps" and value == -1:
        return None  # the reference's "-1 = automatic"
    if name == "mixed_precision":
        if value in ("fp16", "bf16"):
            _note(f"mixed_precision {value} -> precision auto (mixed precision on a capable GPU, fp32 on CPU)")
        if value in (False, "no", "none"):  # the reference's explicit "no mixed precision" (a bare YAML `no` is false)
            return "fp32"
        return "auto" if value in (None, "fp16", "bf16") else value
    if name == "disable_gradient_checkpointing":
        return not value
    if name == "quantization":
        return _quantization(value)
    if name == "optimizer" and isinstance(value, str) and ("8bit" in value or value.startswith("paged_")):
        _note(f"optimizer {value} (bitsandbytes) -> adamw_torch; trainforge does not offer bitsandbytes optimizers")
        return "adamw_torch"
    return value


def _hint(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _quantization(value: Any) -> Any:
    """The reference's ``quantization`` value as ours; on a machine without CUDA, None with a note."""
    if value in (None, "none", "None"):
        return None
    import torch

    if torch.cuda.is_available():
        return value
    # The reference applies bitsandbytes quantization only on CUDA in practice; keep its config runnable on CPU.
    _note(f"params.quantization {value} needs a CUDA GPU; none here, so LoRA trains on the unquantized model")
    return None
