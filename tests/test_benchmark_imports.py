"""Every name the benchmarks and the project's scripts import from the package exists: most of
their imports sit inside functions, so a moved function showed only when a long run reached
it (fit_config, moved to checkpoint/fit_config.py, broke two benchmarks that way)."""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("benchmarks", "scripts") if (ROOT / folder).is_dir()
                 for p in (ROOT / folder).rglob("*.py"))


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("spacy_bert_cls"):
            for alias in node.names:
                yield node.module, alias.name, node.lineno


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_package_names_a_script_imports_exist(path):
    missing = []
    for module, name, line in _imports(path):
        imported = importlib.import_module(module)
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{path.name}:{line}: {module}.{name}")
    assert not missing, missing
