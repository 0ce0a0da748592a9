"""House rule: the sandbox is an independent implementation of the API.

It must not import the library's code (it would agree with the library's bugs), and the
standalone server must run without Django.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import django_sendflare.sandbox

SANDBOX = Path(django_sendflare.sandbox.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import: resolve it against the sandbox package.
                base = "django_sendflare.sandbox" if node.level == 1 else "django_sendflare"
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def test_no_sandbox_module_imports_the_library() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in SANDBOX.glob("*.py")
        for name in imported_modules(path)
        if name.startswith("django_sendflare") and not name.startswith("django_sendflare.sandbox")
    }
    assert offenders == set()


def test_the_standalone_server_imports_no_django() -> None:
    code = (
        "import sys, django_sendflare.sandbox.cli, django_sendflare.sandbox.server; "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
