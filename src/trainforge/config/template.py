"""Commented example configs generated from the schema (``trainforge init``) and field tables (docs, ``tasks``)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

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

SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("model", ModelSection),
    ("data", DataSection),
    ("training", TrainingSection),
    ("peft", PeftSection),
    ("search", SearchSection),
    ("compute", ComputeSection),
    ("output", OutputSection),
    ("hub", HubSection),
)


def applies(spec, section: str, name: str) -> bool:
    """Whether the task reads ``section.name`` (``TaskSpec.applies``); only fields that apply are offered."""
    used = spec.fields_applying(section)
    return used is None or name in used


def field_rows(spec) -> list[tuple[str, str, str, str]]:
    """``(dotted key, tier, default, help)`` for every field a config of this task can hold."""
    rows = []
    for section, model in (*SECTIONS, ("params", spec.params)):
        for name, field in model.model_fields.items():
            if not applies(spec, section, name):
                continue
            default = "required" if field.is_required() else _scalar(field.get_default(call_default_factory=True))
            if section == "training" and name in spec.training_defaults:
                default = _scalar(spec.training_defaults[name])
            if section == "output" and name == "dir":
                default = f"runs/{spec.name}"
            tier = (
                (field.json_schema_extra or {}).get("tier", "advanced")
                if isinstance(field.json_schema_extra, dict)
                else "advanced"
            )
            rows.append((f"{section}.{name}", tier, default, field.description or ""))
    return rows


def render_template(spec) -> str:
    """A commented YAML config: basic fields set, advanced ones shown commented out with their defaults."""
    lines = [
        f"# trainforge config for {spec.name}: {spec.summary}",
        "# Run it:    trainforge train THIS.yaml",
        "# Override:  trainforge train THIS.yaml training.num_train_epochs=1",
        "# Fields:    trainforge tasks " + spec.name,
        "",
        f"task: {spec.name}",
    ]
    for section, model in (*SECTIONS, ("params", spec.params)):
        if not any(applies(spec, section, name) for name in model.model_fields):
            continue  # a section the task does not read at all (tabular has no peft:)
        lines.append(f"{section}:")
        example = spec.example.get(section, {})
        for name, field in model.model_fields.items():
            if not applies(spec, section, name):
                continue
            value = example.get(name, spec.training_defaults.get(name) if section == "training" else None)
            if value is None and not field.is_required():
                value = field.get_default(call_default_factory=True)
            if section == "output" and name == "dir":
                value = f"runs/{spec.name}"
            tier = field.json_schema_extra.get("tier") if isinstance(field.json_schema_extra, dict) else "advanced"
            active = tier == "basic" or name in example
            if field.description:
                lines.append(f"  # {field.description}")
            if name == "columns" and section == "data":
                value = value or {c.name: c.source_default for c in spec.columns if c.required}
                lines.append("  # Logical columns: " + "; ".join(f"{c.name} = {c.help}" for c in spec.columns))
            lines.append(("  " if active else "  # ") + f"{name}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if hasattr(value, "get_secret_value"):
        value = "${HF_TOKEN}"
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
