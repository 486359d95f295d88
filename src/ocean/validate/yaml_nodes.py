"""Reading a YAML node tree (``yaml.compose``) without trusting its shape.

Checks that walk nodes instead of parsed dicts keep every value's line, and a document
of any shape (a list where a mapping belongs, a null entry, a number where a list
belongs) reads as "absent" here instead of raising AttributeError in the check.
"""

from __future__ import annotations

import yaml

# libyaml's loader when PyYAML has it: 5–10× less CPU than the pure-Python one, and
# validate reads every YAML file several times (rules, compose, environments …).
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str) -> yaml.Node | None:
    """The node tree of a YAML document (lines kept), parsed by libyaml where present."""
    return yaml.compose(text, Loader=LOADER)


def load(text: str) -> object:
    """``yaml.safe_load`` by libyaml where present."""
    return yaml.load(text, Loader=LOADER)  # nosec B506  # LOADER is CSafeLoader or SafeLoader


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"))


def get(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of ``key`` in a mapping node; None if absent or no mapping."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value
    return None


def value(node: yaml.Node | None, *keys: str) -> yaml.Node | None:
    for key in keys:
        found = get(node, key)
        if found is None:
            return None
        node = found[1]
    return node


def text(node: yaml.Node | None) -> str | None:
    """A scalar's text (None for anything else, null included)."""
    if isinstance(node, yaml.ScalarNode) and not is_null(node):
        return str(node.value)
    return None


def entries(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []
