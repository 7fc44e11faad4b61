"""Imports live at module level; a function-local import must say why it is lazy.

The only accepted reason is start-up time of a CLI subcommand (``novamind --help`` imports
every command module) or an optional extra. The reason is a one-line ``# lazy: <why>``
comment on the import's line, or on the line just above it; one comment above a run of
consecutive import statements covers the whole run.
"""

from __future__ import annotations

import ast
import io
import re
import shutil
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("novamind", "schemas", "connectors", "workers")
LAZY = re.compile(r"#\s*lazy:\s*\S")


def unmarked_local_imports(source: str) -> list[int]:
    """Line numbers of the function-local imports in ``source`` that give no ``# lazy:`` reason."""
    tree = ast.parse(source)
    reasons = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and LAZY.match(token.string)
    }
    unmarked: list[int] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            for body in _statement_lists(node):
                unmarked += _unmarked_in(body, reasons)
    return sorted(set(unmarked))  # a nested function's imports are seen from each enclosing one


def _statement_lists(node: ast.AST) -> list[list[ast.stmt]]:
    """The statement lists directly held by ``node`` (body, else, finally, handler bodies...)."""
    return [
        value
        for _, value in ast.iter_fields(node)
        if isinstance(value, list) and value and all(isinstance(v, ast.stmt) for v in value)
    ]


def _unmarked_in(body: list[ast.stmt], reasons: set[int]) -> list[int]:
    unmarked = []
    covered = False  # by a reason above the current run of consecutive imports
    previous: ast.stmt | None = None
    for statement in body:
        if not isinstance(statement, ast.Import | ast.ImportFrom):
            previous = None
            continue
        if not isinstance(previous, ast.Import | ast.ImportFrom):  # the first import of a run
            covered = statement.lineno - 1 in reasons
        own = any(line in reasons for line in range(statement.lineno, (statement.end_lineno or 0) + 1))
        if not (covered or own):
            unmarked.append(statement.lineno)
        previous = statement
    return unmarked


def _unmarked_in_tree(root: Path) -> list[str]:
    """``path:line`` of every unmarked function-local import under ``root``'s packages."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            found += [f"{relative}:{line}" for line in unmarked_local_imports(path.read_text())]
    return found


def test_every_function_local_import_says_why_it_is_lazy() -> None:
    assert _unmarked_in_tree(ROOT) == [], (
        "import at module level, or keep the import lazy with a one-line '# lazy: <why>' comment"
    )


def test_an_unmarked_local_import_planted_in_a_copy_fails(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    planted = tmp_path / "novamind/app/commands/worker.py"
    planted.write_text(planted.read_text() + "\n\ndef planted() -> None:\n    import json\n")
    line = len(planted.read_text().splitlines())
    marked = tmp_path / "workers/app.py"  # says why it is lazy: not reported
    marked.write_text(marked.read_text() + "\n\ndef planted() -> None:\n    import json  # lazy: a reason\n")

    assert _unmarked_in_tree(tmp_path) == [f"novamind/app/commands/worker.py:{line}"]


def test_the_checker_on_source() -> None:
    source = """
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import json


def unmarked() -> None:
    import json  # flagged
    from pathlib import Path  # flagged: a comment, but no reason


def marked_above() -> None:
    # lazy: a heavy module that only this command needs
    import json
    from pathlib import (
        Path,
    )

    x = 1
    import sys  # flagged: after another statement, a new run needs its own reason


def marked_inline() -> None:
    import json  # lazy: a heavy module
    import sys  # flagged


async def nested() -> None:
    def inner() -> None:
        import json  # flagged

    class Local:
        def method(self) -> None:
            try:
                # lazy: an optional extra
                import json
            except ImportError:
                import sys  # flagged


def no_reason_given() -> None:
    # lazy:
    import json  # flagged


class Methods:
    def method(self) -> None:
        # lazy:the reason may follow the colon directly
        import json
        import sys

    def other(self) -> None:
        from json import (  # flagged
            dumps,
        )
"""
    flagged = [n for n, line in enumerate(source.splitlines(), 1) if "# flagged" in line]
    assert len(flagged) == 8
    assert unmarked_local_imports(source) == flagged
