"""The composed JSON Schema of one task's config: shared sections plus the task's own ``params`` model.

Editors and the web UI's forms read it; every default, choice list, help text and tier comes from the pydantic
fields in ``config/sections.py`` and the task's Params model, never from a table of their own.
"""

from __future__ import annotations

from typing import Any

from trainforge.config.template import SECTIONS, applies


def task_schema(spec) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config for ``spec``, with task-specific defaults filled in.

    Each property keeps pydantic's ``description`` and ``default`` plus the field's ``tier`` ("basic" or
    "advanced"). Training defaults the task overrides (``spec.training_defaults``) and the run directory
    (``runs/<task>``) replace the shared defaults, as ``trainforge init`` does.
    """
    properties: dict[str, Any] = {
        "task": {"const": spec.name, "default": spec.name, "description": spec.summary, "type": "string"}
    }
    defs: dict[str, Any] = {}
    required = ["task"]
    for section, model in (*SECTIONS, ("params", spec.params)):
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        schema["properties"] = {n: p for n, p in schema.get("properties", {}).items() if applies(spec, section, n)}
        for name, prop in schema.get("properties", {}).items():
            if section == "training" and name in spec.training_defaults:
                prop["default"] = spec.training_defaults[name]
            if section == "output" and name == "dir":
                prop["default"] = f"runs/{spec.name}"
        if section == "data":
            schema["properties"]["columns"] = _columns_schema(spec, schema["properties"]["columns"])
        properties[section] = schema
        if schema.get("required"):
            required.append(section)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"trainforge config: {spec.name}",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required,
        **({"$defs": defs} if defs else {}),
    }


def form_fields(spec) -> list[dict[str, Any]]:
    """The schema flattened to one entry per leaf field, in declaration order, for form generators.

    Each entry: ``key`` (dotted), ``section``, ``name``, ``type`` (string/integer/number/boolean/array/object),
    ``enum`` (choices or None), ``items_enum`` (choices of list items), ``nullable``, ``required``, ``default``,
    ``tier``, ``help``, and the numeric bounds pydantic exports (``minimum``, ``exclusiveMinimum``, ...).
    """
    schema = task_schema(spec)
    fields = []
    for section, section_schema in schema["properties"].items():
        if section == "task":
            continue
        required = set(section_schema.get("required", []))
        for name, prop in section_schema.get("properties", {}).items():
            fields.append(_flatten(section, name, prop, name in required))
    return fields


def _flatten(section: str, name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    options = prop.get("anyOf", [prop])
    concrete = [o for o in options if o.get("type") != "null"]
    nullable = len(concrete) < len(options)
    main = concrete[0] if concrete else {}
    entry = {
        "key": f"{section}.{name}",
        "section": section,
        "name": name,
        "type": main.get("type", "string"),
        "enum": main.get("enum"),
        "items_enum": main.get("items", {}).get("enum"),
        "nullable": nullable,
        "required": required,
        "default": prop.get("default"),
        "tier": prop.get("tier", "advanced"),
        "help": prop.get("description", ""),
        "secret": main.get("format") == "password",
    }
    for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if bound in main:
            entry[bound] = main[bound]
    return entry


def _columns_schema(spec, prop: dict[str, Any]) -> dict[str, Any]:
    """``data.columns`` as an object whose keys are exactly the task's logical columns."""
    return {
        **prop,
        "additionalProperties": False,
        "properties": {
            c.name: {
                "type": "string",
                "description": c.help,
                "default": c.source_default,
                "required_column": c.required,
            }
            for c in spec.columns
            if not c.rest  # a "rest" column takes every unmapped column; it is never mapped
        },
    }
