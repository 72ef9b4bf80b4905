"""No code from data: the package never unpickles, never calls torch.load without
weights_only=True, never eval/exec's anything; bandit runs clean (bandit.yaml and the
`# nosec` comments say why each exception is safe)."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "spacy_bert_cls"
UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("dill", "load"),
              ("dill", "loads"), ("cloudpickle", "load"), ("cloudpickle", "loads"), ("marshal", "load"),
              ("marshal", "loads"), ("shelve", "open"), ("joblib", "load")}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def unsafe_calls(source: str, filename: str = "<string>") -> List[str]:
    """What in `source` could run code from data, as 'file:line: what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        parts = tuple(name.rsplit(".", 1)) if "." in name else ("", name)
        where = f"{filename}:{node.lineno}"
        if parts in UNPICKLERS:
            found.append(f"{where}: {name}")
        elif name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__"):
            found.append(f"{where}: {name}")
        elif name.endswith("torch.load"):
            value = _keyword(node, "weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                found.append(f"{where}: torch.load without weights_only=True")
        elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load") and name != "yaml.safe_load":
            loader = _keyword(node, "Loader")
            if name != "yaml.load" or not (loader is not None and "Safe" in _dotted(loader)):
                found.append(f"{where}: {name} without SafeLoader")
        elif name.endswith("numpy.load") or name == "np.load":
            value = _keyword(node, "allow_pickle")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                found.append(f"{where}: numpy.load with allow_pickle")
        elif parts[0].endswith("subprocess") or name in ("os.system", "os.popen"):
            shell = _keyword(node, "shell")
            if name in ("os.system", "os.popen") or (isinstance(shell, ast.Constant) and shell.value):
                found.append(f"{where}: {name} through a shell")
    return found


def test_the_scanner_finds_what_it_looks_for():
    planted = """
import pickle, torch, yaml, subprocess, os
pickle.loads(b"")
torch.load("x")
torch.load("x", weights_only=False)
eval("1")
exec("x = 1")
yaml.load("a")
subprocess.run("ls", shell=True)
os.system("ls")
torch.load("x", weights_only=True)
yaml.load("a", Loader=yaml.SafeLoader)
subprocess.run(["ls"])
"""
    found = unsafe_calls(planted)
    assert [int(f.split(":")[1]) for f in found] == list(range(3, 11)), found  # not the safe ones after


def test_the_package_runs_no_code_from_data():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += unsafe_calls(path.read_text(encoding="utf8"), str(path.relative_to(ROOT)))
    assert found == []


def test_bandit_runs_clean():
    bandit = shutil.which("bandit", path=str(Path(sys.executable).parent)) or shutil.which("bandit")
    if bandit is None:
        pytest.skip("bandit is not installed (it is in the test extra: pip install -e '.[test]')")
    result = subprocess.run([bandit, "-q", "-c", str(ROOT / "bandit.yaml"), "-r", str(PACKAGE),
                             "-f", "custom", "--msg-template", "{relpath}:{line} {test_id} {msg}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr  # a malformed `# nosec` comment
