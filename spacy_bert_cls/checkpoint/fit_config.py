"""fit-config: a training config made to fit a checkpoint, its text kept as the user wrote it.

thinc's Config writes a config back without its comments and in its own layout, so the
changed settings are written into the config's text instead, each on its own line; the
result is parsed back and must equal what thinc would have written, or the command writes
thinc's text and says that the comments were lost.
"""
import configparser
import re
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Union

from .hf import BEHAVIOUR_FIELDS, SHAPE_FIELDS, read_hf_config

_SECTION = re.compile(r"^\[([^\]]+)\]\s*([#;].*)?$")
_KEY = re.compile(r"^([^\s#;=:\[][^=:]*?)\s*[=:]")
_COMMENT = ("#", ";")


class FittedConfig(NamedTuple):
    """What fit_config did: the settings it changed, and whether the text kept its comments."""

    changed: List[str]
    comments_kept: bool


def fit_config(config_path: Union[str, Path], checkpoint: Union[str, Path], output: Union[str, Path],
               component: str = "bert") -> FittedConfig:
    """Write a copy of a training config whose `component` has `checkpoint`'s sizes and whose
    paths.bert is `checkpoint` (windows shortened to its positions if needed)."""
    from thinc.api import Config

    from ..outputs import check_apart, check_file_output
    from .io import atomic_path

    if not Path(config_path).is_file():
        raise OSError(f"{config_path}: no such config file")
    check_file_output(output, "--output")
    check_apart(output, [checkpoint], "--output")
    try:
        text = Path(config_path).read_bytes().decode("utf8")  # its own line ends (CRLF stays CRLF)
    except UnicodeDecodeError as err:
        raise ValueError(f"{config_path}: not UTF-8 text ({err.reason} at byte {err.start}): give a spaCy "
                         f"training config (.cfg)") from None
    try:
        config = Config().from_str(text, interpolate=False)
    except (configparser.Error, ValueError) as err:
        raise ValueError(f"{config_path}: not a config spaCy reads: {' '.join(str(err).split())}") from None
    section = f"components.{component}.model"
    try:
        model = config["components"][component]["model"]
    except KeyError:
        raise ValueError(f"{config_path}: no [{section}]") from None
    updates = _fitted(model, read_hf_config(checkpoint))
    changed = list(updates)
    model.update(updates)
    config.setdefault("paths", {})["bert"] = str(checkpoint)
    edited = set_values(text, {section: updates, "paths": {"bert": str(checkpoint)}})
    try:
        kept = Config().from_str(edited, interpolate=False) == config
    except (configparser.Error, ValueError):  # a layout set_values misread: thinc's text instead
        kept = False
    with atomic_path(Path(output)) as tmp:
        if kept:
            Path(tmp).write_bytes(edited.encode("utf8"))
        else:
            config.to_disk(tmp, interpolate=False)
    return FittedConfig(changed, kept)


def _fitted(model: Dict[str, Any], found) -> Dict[str, Any]:
    """The settings of a [components.*.model] block that differ from the checkpoint's."""
    updates = {name: getattr(found, name) for name in SHAPE_FIELDS + BEHAVIOUR_FIELDS
               if model.get(name) != getattr(found, name)}
    if model.get("window_size", 0) > found.max_position_embeddings:
        updates["window_size"] = found.max_position_embeddings
        updates["stride"] = min(model.get("stride", found.max_position_embeddings), found.max_position_embeddings - 2)
    return updates


def set_values(text: str, values: Dict[str, Dict[str, Any]]) -> str:
    """A config's `text` with values[section][key] set: on the key's own line where it has
    one (a value continued on indented lines replaced whole), or added at the end of its
    section, the section added at the end when missing. Comments and layout are kept."""
    from confection import try_dump_json

    newline = "\r\n" if "\r\n" in text else "\n"
    lines, out, section, skipping = text.splitlines(), [], None, False
    pending = {name: dict(keys) for name, keys in values.items()}

    def close(name):  # the section's keys not found in it, before the lines that lead on
        rest = [f"{key} = {try_dump_json(value)}" for key, value in pending.pop(name, {}).items()]
        at = len(out)
        while rest and at and (not out[at - 1].strip() or out[at - 1].lstrip().startswith(_COMMENT)):
            at -= 1
        out[at:at] = rest

    for line in lines:
        if skipping and line[:1].isspace() and line.strip() and not line.strip().startswith(_COMMENT):
            continue  # the replaced value's continuation lines (an indented comment is a comment)
        skipping = False
        header = _SECTION.match(line)
        if header:
            close(section)
            section = header.group(1).strip()
        key = _KEY.match(line) if section in pending and not header else None
        if key and key.group(1).strip() in pending[section]:
            name = key.group(1).strip()
            out.append(f"{name} = {try_dump_json(pending[section].pop(name))}")
            skipping = True
            continue
        out.append(line)
    close(section)
    for name in list(pending):
        if pending[name]:
            out.extend(["", f"[{name}]"])
            close(name)
    return newline.join(out).rstrip("\r\n") + newline
