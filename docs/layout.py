"""Write docs/layout.md: every module of spacy_bert_cls with the first line of its docstring.

    python docs/layout.py            # rewrite docs/layout.md
    python docs/layout.py --check    # exit 1 if docs/layout.md is not what it would write
"""
import ast
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PACKAGE = DOCS.parent / "spacy_bert_cls"
HEADER = ("# Layout: every module of the package\n\n"
          "Written by `python docs/layout.py` from the first line of each module's docstring; "
          "`tests/test_readme.py` checks that it is up to date.\n\n")


def first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf8"))) or ""
    return doc.strip().split("\n")[0].strip()


def tree(folder: Path, depth: int = 1) -> list:
    lines = []
    for path in sorted(folder.iterdir(), key=lambda p: (p.is_dir(), p.name)):
        if path.is_dir() and (path / "__init__.py").exists():
            lines.append(f"{'  ' * depth}{path.name}/  {first_line(path / '__init__.py')}".rstrip())
            lines.extend(tree(path, depth + 1))
        elif path.suffix == ".py" and path.name != "__init__.py":
            lines.append(f"{'  ' * depth}{path.name:<22} {first_line(path)}".rstrip())
    return lines


def layout() -> str:
    return HEADER + "```text\n" + "\n".join(["spacy_bert_cls/"] + tree(PACKAGE)) + "\n```\n"


if __name__ == "__main__":
    target = DOCS / "layout.md"
    if "--check" in sys.argv:
        sys.exit(0 if target.read_text(encoding="utf8") == layout() else 1)
    target.write_text(layout(), encoding="utf8")
