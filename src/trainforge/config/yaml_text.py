"""Parse YAML text strictly: duplicate keys are errors, and aliases cannot expand a small text into a huge one.

PyYAML's ``safe_load`` keeps the last of two equal keys (a second ``training:`` section silently replaces the
first) and shares aliased nodes, so ~300 bytes of nested aliases become millions of values once the result is
walked or serialised (the "billion laughs" pattern). Both are refused here with a message naming the lines.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from trainforge.errors import ConfigError

# A config has a few hundred values; a dataset-sized YAML is still far below this.
MAX_EXPANDED_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys, naming both lines."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: PyYAML's own error applies below
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} at lines {first} and {line}: keep one", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: Node, sizes: dict[int, int]) -> int:
    """Nodes in the tree once every alias is expanded; computed once per distinct node."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, SequenceNode):
        total = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, MappingNode):
        total = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        total = 1
    sizes[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
    return sizes[id(node)]


def parse_yaml(text: str, source: str | None = None) -> Any:
    """Parse one YAML document strictly.

    Args:
        text: The YAML text.
        source: File name (or another label) for messages.

    Returns:
        The parsed value (None for an empty document).

    Raises:
        ConfigError: Invalid YAML, a duplicate key (both line numbers), or aliases expanding beyond
            ``MAX_EXPANDED_NODES`` values.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            message = f"the YAML expands to more than {MAX_EXPANDED_NODES:,} values through aliases (&/*)"
            raise ConfigError([("", message + "; write the values out")], source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([("", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}")], source) from None
    finally:
        loader.dispose()
