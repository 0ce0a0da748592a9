"""The documentation builds with only the ``docs`` extra installed, as the README says.

autodoc imports every module the pages document; one that imports a package of the ``test``
extra (pytest, above all) builds in CI's full venv and fails in a reader's. This imports each of
them the way docs/conf.py sets Django up, with the test extra's packages made unimportable.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The test extra's packages that neither Django, requests nor the docs extra bring.
TEST_ONLY = (
    "pytest", "_pytest", "pytest_django", "responses", "hypothesis", "environ", "psycopg",
    "redis", "trustme", "playwright", "django_tasks", "django_tasks_db",
)  # fmt: skip
_DIRECTIVE = re.compile(r"^\.\. auto(?:class|module|function|exception|data):: (\S+)", re.M)
_ROLE = re.compile(r":(?:class|func|mod|exc|meth|attr):`~?(django_sendflare[\w.]*)`")

BLOCK_AND_IMPORT = """
import importlib, importlib.abc, sys
blocked = set(sys.argv[1].split(","))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the docs extra)")
        return None

sys.meta_path.insert(0, Blocker())
exec(compile(open("docs/conf.py").read(), "docs/conf.py", "exec"), {"__file__": "docs/conf.py"})
failed = []
for target in sys.argv[2:]:
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:cut]))
            break
        except ModuleNotFoundError as error:
            if error.name and error.name.split(".")[0] in blocked or "docs extra" in str(error):
                failed.append(f"{target}: {error}")
                break
print("\\n".join(failed))
"""


def documented_targets() -> list[str]:
    targets: set[str] = set()
    for page in (ROOT / "docs").rglob("*.rst"):
        text = page.read_text()
        targets.update(_DIRECTIVE.findall(text))
        targets.update(_ROLE.findall(text))
    return sorted(t for t in targets if t.startswith("django_sendflare"))


def test_every_documented_module_imports_without_the_test_extra() -> None:
    targets = documented_targets()
    assert "django_sendflare.sandbox.handle.SandboxHandle" in targets
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_AND_IMPORT, ",".join(TEST_ONLY), *targets],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == ""
