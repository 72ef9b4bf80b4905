"""Entity tag strings: the IOB1, IOB2 (BIO), BILUO and IOBES schemes.

The one home of what a tag like "B-PER" means: its prefix and label, whether it is
valid, and the entities a sequence of tags marks. The data readers
(data/conll.py), `convert`, constrained decoding (decoding.py) and the HF bridge
(interop/hf_import.py) all read tags through these helpers.
"""
from typing import List, Optional, Sequence, Tuple

# First letter of an entity tag ("B-PER") -> the BILUO action it stands for.
# IOBES writes S- for a unit entity and E- for the last token of one.
TAG_ACTIONS = {"B": "B", "I": "I", "L": "L", "U": "U", "E": "L", "S": "U"}


def split_tag(tag: str) -> Tuple[str, str]:
    """The prefix and label of a tag: ("O", "") for O, ("B", "PER") for "B-PER".

    tag (str): The tag, "O" or a prefix letter, "-" and a label.
    RETURNS (Tuple[str, str]): The prefix letter and the label.
    """
    return ("O", "") if tag == "O" else (tag[0], tag[2:])


def is_valid_tag(tag: str) -> bool:
    """Whether a tag is O or an IOB / BILUO / IOBES tag with a label.

    tag (str): The tag, e.g. "B-PER".
    RETURNS (bool): Whether it is valid.
    """
    return tag == "O" or (len(tag) > 2 and tag[1] == "-" and tag[0] in TAG_ACTIONS)


def tags_to_spans(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Find the entities in a sentence's IOB1, IOB2, BILUO or IOBES tags, in
    one pass.

    An entity starts at B-, U- or S-, and at I-, L- or E- where it does not
    continue an entity of the same label (IOB1); it ends before O, at L-, U-,
    E- or S-, and before a tag that starts another entity.

    tags (Sequence[str]): The tags, each valid (see `is_valid_tag`).
    RETURNS (List[Tuple[int, int, str]]): (start, end, label) of each entity,
        in token offsets, end exclusive.
    """
    spans: List[Tuple[int, int, str]] = []
    start: Optional[int] = None
    label = ""
    for i, tag in enumerate(tags):
        if not is_valid_tag(tag):
            raise ValueError(f"Invalid NER tag {tag!r} at token {i}.")
        if tag == "O":
            if start is not None:
                spans.append((start, i, label))
                start = None
            continue
        action, tag_label = TAG_ACTIONS[tag[0]], tag[2:]
        continues = start is not None and action in ("I", "L") and tag_label == label
        if not continues:
            if start is not None:
                spans.append((start, i, label))
            start, label = i, tag_label
        if action in ("L", "U"):
            spans.append((start, i + 1, label))
            start = None
    if start is not None:
        spans.append((start, len(tags), label))
    return spans


def tags_to_biluo(tags: Sequence[str]) -> List[str]:
    """Convert IOB1, IOB2, BILUO or IOBES tags to BILUO tags.

    tags (Sequence[str]): The tags, each valid (see `is_valid_tag`).
    RETURNS (List[str]): The BILUO tags.
    """
    biluo = ["O"] * len(tags)
    for start, end, label in tags_to_spans(tags):
        biluo[start:end] = span_biluo(label, end - start)
    return biluo


def span_biluo(label: str, length: int) -> List[str]:
    """The BILUO tags of one entity of `length` tokens: U-, or B- I-... L-."""
    if length == 1:
        return [f"U-{label}"]
    return [f"B-{label}"] + [f"I-{label}"] * (length - 2) + [f"L-{label}"]
