"""The documentation site: it builds with ``mkdocs build --strict``, its API pages come from the
docstrings, its troubleshooting page names every error the package raises, and the code on its
guide pages runs."""

from __future__ import annotations

import ast
import html
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "torchrl_grasp"
# A message is named by its first literal piece of at least this many characters.
MIN_PHRASE = 12

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="mkdocs and mkdocstrings[python] are not installed: pip install -e '.[docs]'",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings_handlers") is None
    ):
        pytest.skip("mkdocs and mkdocstrings[python] are not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return out


def page_text(path: Path) -> str:
    """The visible text of a built page, whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def collapse(text: str) -> str:
    return " ".join(text.split())


@needs_mkdocs
def test_api_page_carries_the_docstrings(site):
    from torchrl_grasp import GradientPlanner, GRASPPlanner, TransitionModelEnv

    planners = page_text(site / "api" / "planners" / "index.html")
    summary = inspect.getdoc(GRASPPlanner).split("\n")[0]
    assert summary in planners
    assert "Adam learning rate of the virtual states" in planners  # from the Keyword Args
    assert inspect.getdoc(GradientPlanner).split("\n")[0] in planners
    # Sphinx roles are rendered as code, not left raw.
    assert ":class:" not in planners and ":math:" not in planners and ".. math::" not in planners
    # The math is marked for MathJax (inline and display), not shown as code.
    raw = (site / "api" / "planners" / "index.html").read_text()
    assert '<div class="arithmatex">' in raw and '<span class="arithmatex">' in raw
    assert "\\operatorname{mean}_d" in raw and 'class="language-latex"' not in raw
    assert "mathjax" in raw.lower()
    models = page_text(site / "api" / "world-models" / "index.html")
    assert collapse(inspect.getdoc(TransitionModelEnv).split("\n\n")[1].split(";")[0]) in models


@needs_mkdocs
def test_every_page_and_figure_is_built(site):
    for page in [
        "quickstart",
        "concepts",
        "world-models",
        "tuning",
        "examples",
        "benchmarks",
        "troubleshooting",
    ]:
        assert (site / page / "index.html").exists(), page
    assert (site / "figures" / "concepts.png").exists()
    assert 'src="../figures/concepts.png"' in (site / "concepts" / "index.html").read_text()
    # The scripts and the griffe extension beside the pages are not published.
    assert not list(site.rglob("*.py"))


def raised_messages() -> list[tuple[str, str]]:
    """``(where, phrase)`` for each ``raise ...Error(message)`` and ``warnings.warn(message)`` of the package.

    The phrase is the message's leading literal text up to its first placeholder when that is at
    least ``MIN_PHRASE`` characters long, else its first literal piece that is (messages that
    start with a name, such as ``f"{name} must be a positive int"``).
    """
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                call = node.exc
                name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
                if not name.endswith("Error"):
                    continue
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "warnings.warn":
                call = node
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert call.args, f"{where}: an error without a message"
            found.append((where, _phrase(call.args[0], where)))
    return found


def _phrase(message: ast.expr, where: str) -> str:
    if isinstance(message, ast.Constant) and isinstance(message.value, str):
        pieces = [message.value]
    elif isinstance(message, ast.JoinedStr):
        pieces = [part.value for part in message.values if isinstance(part, ast.Constant)]
    else:
        raise AssertionError(f"{where}: the message is not a string literal, so the docs test cannot read it")
    pieces = [collapse(piece) for piece in pieces]
    phrase = next((piece for piece in pieces if len(piece) >= MIN_PHRASE), None)
    assert phrase is not None, f"{where}: the message has no literal text of {MIN_PHRASE}+ characters"
    return phrase


def test_the_message_parser_reads_prefixes():
    messages = dict(raised_messages())
    assert len(messages) > 50
    phrases = set(messages.values())
    assert "The input tensordict lacks the state keys" in phrases  # a leading literal
    assert "must be a positive int, got" in phrases  # f"{name} must be a positive int, got {value!r}."


def test_troubleshooting_names_every_error_message():
    page = collapse((DOCS / "troubleshooting.md").read_text())
    missing = [f"{where}: {phrase!r}" for where, phrase in raised_messages() if phrase not in page]
    assert not missing, "docs/troubleshooting.md does not name these messages:\n" + "\n".join(missing)


@pytest.mark.parametrize("page", ["index.md", "quickstart.md", "world-models.md", "your-env.md"])
def test_code_on_the_guide_pages_runs(page, tmp_path, monkeypatch):
    """Every ``python`` block of the page, run in order in one namespace, as a reader would paste them."""
    import torch

    if page == "your-env.md":
        pytest.importorskip("gymnasium_robotics", reason="pip install -e '.[robotics]'")
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path))  # a page that trains a model keeps it out of the user's cache

    blocks = re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(), flags=re.S | re.M)
    assert blocks
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespace: dict = {}
        for index, block in enumerate(blocks):
            exec(compile(block, f"{page} block {index + 1}", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
