"""amtool's reason for refusing a config, verbatim, and the template line it is about.

``amtool check-config FILE`` prints, for a bad file::

    Checking 'FILE'  FAILED: not a valid duration string: "five minutes"
    <continuation lines of a YAML error: "  line 3: cannot unmarshal …">
    amtool: error: failed to validate 1 file(s)

The reason is on the ``Checking`` line after ``FAILED:`` (and on the lines after it);
the last line says nothing about the file. Where the reason names a line (YAML errors)
it is the rendered file's, mapped to the template's; where it quotes a value
(``undefined receiver "emial"``), the first rendered line holding it is taken.
"""

from __future__ import annotations

import re

from ocean.validate.template_lines import TemplateLines

_LINE = re.compile(r"\bline (\d+)\b")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)+)"')
_FAILED = "FAILED:"


def amtool_reason(output: str) -> str:
    """amtool's reason (one line), '' when the output holds none."""
    reason: list[str] = []
    collecting = False
    for raw in output.splitlines():
        line = raw.strip()
        if not collecting:
            if _FAILED in line:
                collecting = True
                reason.append(line.split(_FAILED, 1)[1].strip())
            continue
        if line.startswith("amtool: error:") or line.startswith("Checking "):
            break
        if line:
            reason.append(line)
    return " ".join(part for part in reason if part)


def reason_line(reason: str, rendered_text: str, lines: TemplateLines) -> int | None:
    """The template line ``reason`` is about, None when it cannot tell."""
    found = _LINE.search(reason)
    if found:
        return lines.line(int(found.group(1)))
    rendered = rendered_text.splitlines()
    for quoted in _QUOTED.findall(reason):
        value = quoted.replace('\\"', '"')
        # Best first: the value as a whole YAML scalar, then quoted anywhere (a matcher),
        # then (long enough not to be a coincidence) as part of a line.
        scalar = re.compile(r"(?:^|[:-])\s*['\"]?" + re.escape(value) + r"['\"]?\s*(?:#.*)?$")
        tests = [
            scalar.search,
            lambda text, v=value: f'"{v}"' in text or f"'{v}'" in text,
            lambda text, v=value: len(v) >= 4 and v in text,
        ]
        for test in tests:
            for number, text in enumerate(rendered, 1):
                if test(text):
                    return lines.line(number)
    return None
