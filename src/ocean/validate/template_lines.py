"""Lines of a rendered Jinja template, told in the template's own numbering.

The checks read the *rendered* Alertmanager and Prometheus configs (what the runtime
writes), but a finding must name the line an operator edits: the template's. With the
environment of ``ocean.render`` (trim_blocks, lstrip_blocks) a line holding only a block
tag (``{% if … %}``) renders to nothing and a false branch drops its lines, while every
other line renders to exactly one line. So the rendered lines are the template's in
order, some skipped: each rendered line is matched to the next template line whose
shape (``{{ … }}`` standing for any text, ``{% raw %}`` tags removed) fits it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

from ocean.validate import yaml_nodes

# An expression or a comment: it renders to any text (a comment to none).
_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{#.*?#\}")
_RAW_TAG = re.compile(r"\{%-?\s*(?:end)?raw\s*-?%\}")
# A line of block tags only (one or more): trim_blocks/lstrip_blocks render it to nothing.
_BLOCK_ONLY = re.compile(r"^\s*(\{%.*?%\}\s*)+$")


def _shape(template_line: str) -> re.Pattern[str] | None:
    """A regex a rendered line of ``template_line`` matches; None for a tag-only line."""
    if _BLOCK_ONLY.match(template_line) and not _RAW_TAG.fullmatch(template_line.strip()):
        return None
    text = _RAW_TAG.sub("", template_line)
    parts = _EXPRESSION.split(text)
    return re.compile(".*?".join(re.escape(p) for p in parts) + r"\s*", re.DOTALL)


class TemplateLines:
    """Maps 1-based rendered line numbers to 1-based template line numbers."""

    def __init__(self, template_text: str, rendered_text: str) -> None:
        shapes = [_shape(line) for line in template_text.splitlines()]
        self._map: dict[int, int] = {}
        position = 0
        for number, line in enumerate(rendered_text.splitlines(), 1):
            for index in range(position, len(shapes)):
                shape = shapes[index]
                if shape is not None and shape.fullmatch(line):
                    self._map[number] = index + 1
                    position = index + 1
                    break

    def line(self, rendered_line: int | None) -> int | None:
        if rendered_line is None:
            return None
        return self._map.get(rendered_line)

    def line_or_rendered(self, rendered_line: int | None) -> int | None:
        """The template's line, else the rendered one (a loop's second pass has no
        template line of its own, and the rendered number is closer than none)."""
        return self.line(rendered_line) or rendered_line


def compose(text: str) -> yaml.Node | None:
    """``text``'s YAML node tree (marks included); None when it does not parse."""
    try:
        return yaml_nodes.compose(text)
    except yaml.YAMLError:
        return None


def node_line(text: str | yaml.Node | None, path: Sequence[str | int]) -> int | None:
    """The 1-based line of the YAML node reached by ``path`` (mapping keys, sequence
    indexes) in ``text`` (or its node tree, from ``compose``): the key's line for a
    mapping entry, the item's for a list entry; the deepest line reached when the path
    stops early; None if unparseable."""
    node = compose(text) if isinstance(text, str) else text
    if node is None:
        return None
    line = 1
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key, value in node.value:
                if key.value == step:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if not 0 <= step < len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line
