"""The README's fenced commands run as written: each `spacy-bert-cls` command parses with its
real options, each config exists and every `--section.key` override names a setting it has,
and each `spacy project run` names a real workflow and real vars. (Running them needs the
placeholder files; the workflow test runs the project itself.)"""
import re
import shlex
from pathlib import Path

import pytest
import srsly
import typer
from thinc.api import Config

from spacy_bert_cls.cli import app

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    """(block number, command words) of every command line in the README's bash blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf8")
    found = []
    for number, block in enumerate(re.findall(r"```bash\n(.*?)```", text, flags=re.S)):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            for part in line.split("&&"):
                words = shlex.split(part.replace("[", "").replace("]", "").replace("|", " "))
                if words:
                    found.append((number, words))
    return found


COMMANDS = readme_commands()


def _overrides(words):
    return [(w[2:], words[i + 1] if i + 1 < len(words) else None) for i, w in enumerate(words)
            if w.startswith("--") and "." in w]


def _check_config_keys(config_path: Path, words):
    config = Config().from_disk(ROOT / config_path, interpolate=False)
    for key, _ in _overrides(words):
        node = config
        *sections, last = key.split(".")
        for section in sections:
            assert section in node, f"{config_path} has no section [{'.'.join(sections)}] for --{key}"
            node = node[section]
        # spaCy adds new keys to sections it does not validate (paths); elsewhere the key must exist
        assert last in node or sections == ["paths"], f"{config_path} has no setting --{key}"


def test_the_readme_has_commands():
    programs = {words[0] if words[0] != "python" else " ".join(words[:3]) for _, words in COMMANDS}
    assert {"spacy-bert-cls", "python -m spacy"} <= programs, programs


@pytest.mark.parametrize("words", [w for _, w in COMMANDS], ids=[" ".join(w)[:60] for _, w in COMMANDS])
def test_readme_command(words):
    if words[0] == "torchrun":
        words = ["spacy-bert-cls"] + words[words.index("spacy_bert_cls") + 1:]
    if words[0] == "spacy-bert-cls":
        group = typer.main.get_command(app)
        command = group.get_command(None, words[1])
        assert command is not None, f"no command {words[1]}"
        command.make_context(words[1], list(words[2:]))  # raises on an unknown option or argument
        if words[1] == "pretrain":
            _check_config_keys(Path(words[2]), words)
    elif words[:3] == ["python", "-m", "spacy"] and words[3] in ("train", "assemble"):
        _check_config_keys(Path(words[4]), words)
    elif words[:5] == ["python", "-m", "spacy", "project", "run"]:
        project = srsly.read_yaml(ROOT / "project.yml")
        assert words[5] in project["workflows"], words[5]
        for key, _ in _overrides(words):
            assert key.startswith("vars.") and key[5:] in project["vars"], f"project.yml has no var {key}"
    else:
        assert words[0] in ("python3", ".", "pip", "python"), f"a command the test does not know: {words}"


def test_layout_lists_every_module():
    """docs/layout.md is what docs/layout.py writes from the package as it is."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "docs" / "layout.py"), "--check"])
    assert result.returncode == 0, "docs/layout.md is out of date: run python docs/layout.py"


def test_readme_is_a_users_document():
    lines = (ROOT / "README.md").read_text(encoding="utf8").splitlines()
    assert len(lines) <= 300, len(lines)
    setup = lines.index("## Set-up: two commands")
    assert setup < 25 and all(not line.startswith("## ") for line in lines[1:setup])
