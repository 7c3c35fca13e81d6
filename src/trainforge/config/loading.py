"""YAML (or dict) in, validated ``RunConfig`` out: env interpolation, dotted overrides, AutoTrain translation.

Also writes the resolved config back out, with every default filled in and secrets removed.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from trainforge.config.schema import RunConfig, parse_config
from trainforge.config.yaml_text import parse_yaml
from trainforge.errors import ConfigError

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(
    config: RunConfig | dict | str | os.PathLike,
    overrides: list[str] | tuple[str, ...] = (),
    interpolate: bool = True,
) -> RunConfig:
    """Build a validated config from a path, a YAML string's parsed dict, or an existing config.

    Args:
        config: A ``RunConfig``, a dict in trainforge's or AutoTrain's shape, or a path to a YAML file.
        overrides: ``dotted.key=value`` strings applied before validation (values parsed as YAML).
        interpolate: Replace ``${VAR}`` with the environment's values. The web app turns this off: a config
            that arrives over the network must never read the server's environment.

    Returns:
        The validated config.

    Raises:
        ConfigError: Unreadable file, bad override, unset environment variable, or invalid content.
    """
    if isinstance(config, RunConfig):
        if not overrides:
            return config
        config = dump_resolved(config)
    source = None
    if isinstance(config, str | os.PathLike):
        source = str(config)
        raw = read_yaml(Path(config))
    else:
        raw = _plain(config)
    from trainforge.config.autotrain import is_autotrain_config, translate

    problems: list[tuple[str, str]] = []
    for override in overrides:
        apply_override(raw, override, problems)
    if overrides:  # a bad value may come from the command line, not the file (the values are not echoed: secrets)
        count = len(overrides)
        source = f"{source or 'the config'} with {count} override{'s' if count != 1 else ''}"
    _drop_literal_hub_token(raw)
    if interpolate:
        unset_hub: list[tuple[str, str]] = []
        raw = _interpolate(raw, "", problems, unset_hub)
        _drop_unset_hub_values(raw, unset_hub, problems)
    if problems:
        if is_autotrain_config(raw):  # an unsupported task is the first thing to say, not an unset variable
            try:
                translate(raw, source)
            except ConfigError as exc:
                problems = exc.problems + problems
        raise ConfigError(problems, source)
    if is_autotrain_config(raw):
        raw = translate(raw, source)
    else:
        _relocate_training_aliases(raw)
    return parse_config(raw, source)


def _plain(value: Any) -> Any:
    """A copy of a config given as Python objects, with paths as strings (``model.name=Path(...)`` is common)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def read_yaml(path: Path) -> dict:
    """Parse a YAML config file into a dict, with errors that name the file and line."""
    if path.is_dir():
        try:
            configs = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml"))
        except OSError:
            configs = []
        holds = f"; it holds {', '.join(configs[:5])}{' ...' if len(configs) > 5 else ''}" if configs else ""
        message = f"{path} is a folder, not a config file: give the path of a YAML config file{holds}"
        raise ConfigError([("", message + " (trainforge init TASK writes one)")])
    if path.exists() and not path.is_file():
        raise ConfigError([("", f"{path} is not a regular file: give the path of a YAML config file")])
    if not path.is_file():
        raise ConfigError([("", f"config file not found: {path}")])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        raise ConfigError([("", message)], str(path)) from None
    raw = parse_yaml(text, str(path))
    if raw is None:
        raise ConfigError([("", "the file is empty; start from `trainforge init TASK`")], str(path))
    if not isinstance(raw, dict):
        raise ConfigError([("", "the top level must be a mapping (task:, model:, data: ...)")], str(path))
    return raw


def apply_override(raw: dict, override: str, problems: list[tuple[str, str]]) -> None:
    """Set ``a.b.c=value`` in ``raw``; the value is parsed as YAML (numbers, booleans, lists)."""
    key, sep, text = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        problems.append((key or override, f"override {override!r} must look like section.key=value"))
        return
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append((key, f"cannot set a key below {part!r}, which holds a value, not a section"))
            return
        node = child
    node[parts[-1]] = value


def _interpolate(value: Any, key: str, problems: list[tuple[str, str]], unset_hub: list[tuple[str, str]]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string, reporting unset variables by key.

    An unset variable in a ``hub.*`` field is not an error yet: its key goes to ``unset_hub`` and the caller
    decides (the value is only needed when the run pushes).
    """
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{key}.{k}" if key else str(k), problems, unset_hub) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{key}[{i}]", problems, unset_hub) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        if key.startswith("hub."):
            unset_hub.append((key, name))
        else:
            problems.append(
                (key, f"environment variable {name} is not set (export it, or write ${{{name}:-default}})")
            )
        return ""

    return _ENV.sub(substitute, value)


# The one spelling of hub.token that is read: a reference to an environment variable, resolved at load.
_TOKEN_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-)?\}$")  # ${HF_TOKEN}, ${HF_TOKEN:-}


def _drop_literal_hub_token(raw: dict) -> None:
    """Ignore (with a note) a Hub token written into the config itself rather than as a ``${VAR}`` reference.

    The token is read only from the environment (``HF_TOKEN``, or the variable ``hub.token: ${VAR}`` names) or the
    Hugging Face login cache. A literal token in a config file is a secret on disk that travels with the file (the
    reference's ``training_params.json`` kept it in clear); old configs holding one still load, without it. The
    value is never printed. Checked in trainforge's ``hub`` and the reference's ``hub``/``params`` places.
    """
    for section in ("hub", "params"):
        node = raw.get(section)
        if not isinstance(node, dict) or node.get("token") in (None, ""):
            continue
        if isinstance(node["token"], str) and _TOKEN_REFERENCE.match(node["token"].strip()):
            continue
        del node["token"]
        print(
            f"note: {section}.token holds a token written into the config, which trainforge does not read: the Hub "
            "token comes only from the environment (HF_TOKEN, or hub.token: ${YOUR_VARIABLE}) or `hf auth login`. "
            "Delete it from the config: anyone who can read the file can use it",
            file=sys.stderr,
        )


def _drop_unset_hub_values(raw: dict, unset_hub: list[tuple[str, str]], problems: list[tuple[str, str]]) -> None:
    """Hub fields whose variable is unset: read as absent (as the reference does) unless the run pushes.

    Every AutoTrain example config carries ``token: ${HF_TOKEN}`` even with ``push_to_hub: false``; failing
    there would stop configs that never use the value.
    """
    if not unset_hub:
        return
    hub = raw.get("hub")
    if not isinstance(hub, dict):
        hub = {}
    pushes = bool(hub.get("push") or hub.get("push_to_hub") or raw.get("push_to_hub"))
    if pushes:
        problems.extend(
            (key, f"${{{name}}} is not set, and the run pushes to the Hub: export it") for key, name in unset_hub
        )
        return
    for key, _ in unset_hub:
        hub.pop(key.removeprefix("hub."), None)
    shown = ", ".join(f"{key} (${{{name}}})" for key, name in unset_hub)
    print(f"note: {shown} unset; not needed because the run does not push to the Hub", file=sys.stderr)


def _relocate_training_aliases(raw: dict) -> None:
    """Accept the reference's short names under ``params`` (``params.epochs=2``, ``params.lora_r=8``), with a note.

    Only names that are not the task's own params move (to ``training.*`` or ``peft.*``); everything else is
    validated where it stands. Run folders written before the ``peft:`` section existed hold their LoRA settings as
    ``params.peft``/``params.lora_*``: they load through this too.
    """
    from trainforge.config.autotrain import TRAINING_PARAMS
    from trainforge.tasks import get_task, task_names

    params = raw.get("params")
    if not isinstance(params, dict) or raw.get("task") not in task_names():
        return
    if isinstance(raw.get("peft"), bool):
        raw["peft"] = {"enabled": raw["peft"]}
    own = get_task(raw["task"]).params.model_fields
    for name in [n for n in params if n in TRAINING_PARAMS and n not in own]:
        target = TRAINING_PARAMS[name]
        section, field_name = target.split(".")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):  # the section's own error is reported, the param left in place
            continue
        if field_name in raw[section] and raw[section][field_name] != params[name]:
            raise ConfigError(
                [
                    (
                        f"params.{name}",
                        f"sets {target} too, which the config sets to {raw[section][field_name]!r}: keep one "
                        f"(params.{name} is the older name)",
                    )
                ]
            )
        raw[section][field_name] = params.pop(name)
        print(f"note: params.{name} is read as {target}", file=sys.stderr)


def dump_resolved(config: RunConfig) -> dict:
    """The config as a plain dict with every default filled in and secrets removed."""
    data = config.model_dump(mode="json", by_alias=True, exclude={"hub": {"token"}})
    data["params"] = config.params.model_dump(mode="json")
    return data


def write_resolved(config: RunConfig, path: Path) -> None:
    """Write ``config.resolved.yaml``: reruns the same job with ``trainforge train`` (token excluded)."""
    header = "# Resolved by trainforge: every default filled in, secrets removed.\n"
    path.write_text(header + yaml.safe_dump(dump_resolved(config), sort_keys=False), encoding="utf-8")
