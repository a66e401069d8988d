"""A griffe extension that lets the package's Sphinx-flavoured docstrings render as Markdown.

The docstrings are Google style (what mkdocstrings parses) but use a little reStructuredText:
cross-reference roles (``:class:`~torchrl_grasp.GRASPPlanner```), inline math (``:math:`T```) and
``.. math::`` blocks. This extension rewrites them before mkdocstrings renders the docstrings:

* a cross-reference role becomes inline code of its target (``~`` keeps the last name only, as
  Sphinx does);
* ``:math:`x``` becomes ``\\(x\\)`` and a ``.. math::`` block becomes ``\\[ ... \\]``, which
  ``pymdownx.arithmatex`` (mkdocs.yml) hands to MathJax; without JavaScript the LaTeX stays readable.

It changes only what the site shows, never the package.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc|const|ref|doc):`(~?)([^`]+)`")
MATH = re.compile(r":math:`([^`]+)`")


def _role(match: re.Match) -> str:
    short, target = match.groups()
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def convert(text: str) -> str:
    """The docstring ``text`` with roles and math blocks as Markdown.

    Examples:
        >>> convert("See :class:`~a.b.C` and :math:`T`.")
        'See `C` and \\\\(T\\\\).'
        >>> print(convert(".. math::\\n\\n    x = 1\\n\\nafter"))
        \\[
        x = 1
        \\]
        <BLANKLINE>
        after
    """
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.lstrip()
        if stripped.startswith(".. math::"):
            indent = line[: len(line) - len(stripped)]
            body = []
            index += 1
            while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > len(indent)):
                body.append(lines[index])
                index += 1
            while body and not body[-1].strip():
                body.pop()
            while body and not body[0].strip():
                body.pop(0)
            depth = min((_indent(b) for b in body if b.strip()), default=0)
            out.append(f"{indent}\\[")
            out.extend(indent + b[depth:] if b.strip() else "" for b in body)
            out.append(f"{indent}\\]")
            out.append("")
            continue
        out.append(MATH.sub(lambda match: "\\(" + match.group(1) + "\\)", ROLE.sub(_role, line)))
        index += 1
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class SphinxMarkup(griffe.Extension):
    """Rewrites every docstring with :func:`convert` as griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
