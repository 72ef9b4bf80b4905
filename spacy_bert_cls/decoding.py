"""Tag schemes, constrained decoding and entity confidences for token classification.

Pure numpy. The tagger gives each token a distribution over tags; decoding picks the
most probable tag sequence among the *valid* ones (Viterbi with the scheme's allowed
transitions), so every entity it returns is a well-formed span, whatever the scores.
An entity's confidence is the probability, under the same model restricted to valid
sequences, that exactly this span carries exactly this label (forward-backward).
"""
from typing import List, Optional, Sequence, Tuple

import numpy

from .tags import split_tag

SCHEMES = ("BILUO", "BIO")
NEG_INF = -numpy.inf


def log_softmax(logits: numpy.ndarray) -> numpy.ndarray:
    """log softmax over the last axis, in float64 (an empty array is returned as it is)."""
    logits = logits.astype("float64")
    if not logits.size:
        return logits
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=-1, keepdims=True))


class TagScheme:
    """The tags of a scheme over a label set, and which tag may follow which."""

    def __init__(self, labels: Sequence[str], scheme: str = "BILUO") -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.scheme = scheme
        self.labels = list(labels)
        prefixes = "BILU" if scheme == "BILUO" else "BI"
        self.tags = ["O"] + [f"{p}-{label}" for label in self.labels for p in prefixes]
        self.index = {tag: i for i, tag in enumerate(self.tags)}
        n = len(self.tags)
        self.allowed = numpy.zeros((n, n), dtype=bool)  # allowed[previous, next]
        self.start = numpy.zeros(n, dtype=bool)
        self.end = numpy.zeros(n, dtype=bool)
        for j, tag in enumerate(self.tags):
            prefix, label = split_tag(tag)
            opens = prefix in ("O", "B", "U")  # may follow anything that closes
            self.start[j] = opens
            self.end[j] = prefix in ("O", "L", "U") if scheme == "BILUO" else True
            for i, prev in enumerate(self.tags):
                prev_prefix, prev_label = split_tag(prev)
                inside = prev_prefix in ("B", "I")
                if scheme == "BILUO":
                    if inside:
                        self.allowed[i, j] = prefix in ("I", "L") and label == prev_label
                    else:
                        self.allowed[i, j] = opens
                else:
                    self.allowed[i, j] = prefix != "I" or (inside and label == prev_label)
        self.outside = numpy.array([split_tag(t)[0] == "O" for t in self.tags])
        # For reading spans off tag-id arrays (path_spans): each tag's label (-1 for O),
        # whether it may continue the entity before it, leaves its entity open, or closes it.
        prefixes_of = [split_tag(t)[0] for t in self.tags]
        self.label_ids = numpy.array([self.labels.index(split_tag(t)[1]) if t != "O" else -1 for t in self.tags])
        self.continuing = numpy.array([p in ("I", "L") for p in prefixes_of])
        self.leaves_open = numpy.array([p in ("B", "I") for p in prefixes_of])
        self.closing = numpy.array([p in ("L", "U") for p in prefixes_of])

    def tag_ids(self, biluo_tags: Sequence[Optional[str]]) -> numpy.ndarray:
        """Gold BILUO tags (spaCy's get_aligned_ner) as ids; -1 where missing ('-', None)."""
        ids = numpy.full(len(biluo_tags), -1, dtype="int64")
        for i, tag in enumerate(biluo_tags):
            if tag is None or tag == "-" or tag == "":
                continue
            if self.scheme == "BIO" and tag != "O":
                prefix, label = split_tag(tag)
                tag = ("B-" if prefix in ("B", "U") else "I-") + label
            ids[i] = self.index.get(tag, -1)
        return ids


def _transition_matrix(scheme: TagScheme) -> numpy.ndarray:
    return numpy.where(scheme.allowed, 0.0, NEG_INF)


def _constrained(log_probs, scheme, force_outside):
    lp = numpy.asarray(log_probs, dtype="float64")
    if force_outside is not None and force_outside.any():
        lp = lp.copy()
        lp[force_outside] = numpy.where(scheme.outside, 0.0, NEG_INF)
    return lp


def _logsumexp(x: numpy.ndarray, axis: int) -> numpy.ndarray:
    peak = x.max(axis=axis, keepdims=True)
    peak = numpy.where(numpy.isfinite(peak), peak, 0.0)
    with numpy.errstate(divide="ignore"):
        return numpy.log(numpy.exp(x - peak).sum(axis=axis)) + numpy.squeeze(peak, axis=axis)


def _confidences(spans, alpha, beta, lp, log_z, scheme: TagScheme) -> List[Tuple[int, int, str, float]]:
    """Each span with the probability that exactly it carries its label (see decode_batch)."""
    n = lp.shape[0]
    results = []
    for start, end, label in spans:
        if scheme.scheme == "BILUO":
            if end - start == 1:
                u = scheme.index[f"U-{label}"]
                log_p = alpha[start, u] + beta[start, u]
            else:
                b, i, last = (scheme.index[f"{p}-{label}"] for p in "BIL")
                log_p = alpha[start, b] + lp[start + 1:end - 1, i].sum() + lp[end - 1, last] + beta[end - 1, last]
        else:
            b, i = scheme.index[f"B-{label}"], scheme.index[f"I-{label}"]
            log_p = alpha[start, b] + lp[start + 1:end, i].sum()
            if end < n:
                # The span ends here: the next tag may follow B-/I- of this label but is
                # not I- of it.
                nxt = scheme.allowed[b] & (numpy.arange(len(scheme.tags)) != i)
                log_p += _logsumexp((lp[end] + beta[end])[nxt], axis=0)
        confidence = float(numpy.exp(log_p - log_z)) if numpy.isfinite(log_z) else 0.0
        results.append((start, end, label, min(max(confidence, 0.0), 1.0)))
    return results


def decode_batch(
    log_probs: Sequence[numpy.ndarray], scheme: TagScheme, force_outside: Optional[Sequence[numpy.ndarray]] = None,
    group_size: int = 64,
) -> List[List[Tuple[int, int, str, float]]]:
    """Entities of each doc's most probable valid tag sequence, each with its confidence.

    The Viterbi and forward-backward recursions run over docs of similar length together
    (one numpy step per token position for a group, instead of one per token of every doc).

    log_probs (Sequence[ndarray[n_tokens, n_tags]]): per doc, per-token log probabilities.
    force_outside (Sequence[ndarray[n_tokens], bool]): per doc, tokens that must be O (whitespace).
    RETURNS (List[List[(start, end, label, confidence)]]): per doc, token spans, end exclusive;
        confidence in [0, 1]: the probability that exactly this span has this label.
    """
    n_docs = len(log_probs)
    results: List[List[Tuple[int, int, str, float]]] = [[] for _ in range(n_docs)]
    lengths = numpy.asarray([lp.shape[0] for lp in log_probs], dtype="int64")
    order = [i for i in numpy.argsort(lengths, kind="stable") if lengths[i] > 0]
    start = 0
    while start < len(order):
        # A group: up to group_size docs, none more than twice as long as the first.
        end = start + 1
        while end < len(order) and end - start < group_size and lengths[order[end]] <= 2 * lengths[order[start]]:
            end += 1
        group = order[start:end]
        start = end
        lp = [_constrained(log_probs[i], scheme, None if force_outside is None else force_outside[i]) for i in group]
        for i, entities in zip(group, _decode_group(lp, scheme)):
            results[i] = entities
    return results


def _decode_group(lps: List[numpy.ndarray], scheme: TagScheme) -> List[List[Tuple[int, int, str, float]]]:
    n = numpy.asarray([lp.shape[0] for lp in lps])
    n_docs, steps, n_tags = len(lps), int(n.max()), len(scheme.tags)
    lp = numpy.full((n_docs, steps, n_tags), NEG_INF)
    for b, doc_lp in enumerate(lps):
        lp[b, :n[b]] = doc_lp
    # The score of a sequence is a sum over its tokens, so where each token's most probable
    # tag already makes a valid sequence, that sequence is the most probable valid one:
    # Viterbi runs only for the other docs (few, for a trained model).
    paths = lp.argmax(axis=2)
    redo = numpy.flatnonzero(~_valid_paths(paths, n, scheme))
    if redo.size:
        longest = int(n[redo].max())
        paths[redo, :longest] = _viterbi(lp[redo, :longest], n[redo], scheme)
    spans = path_spans(paths, n, scheme)
    wanted = [b for b in range(n_docs) if spans[b]]
    if not wanted:
        return [[] for _ in range(n_docs)]
    # Forward-backward over the docs that have entities.
    lp, n = lp[wanted], n[wanted]
    alpha_beta = _scaled_forward_backward(lp, n, scheme)
    alpha, beta = alpha_beta if alpha_beta is not None else _log_forward_backward(lp, n, scheme)
    rows = numpy.arange(len(wanted))
    log_z = _logsumexp(alpha[rows, n - 1] + beta[rows, n - 1], axis=1).tolist()
    results: List[List[Tuple[int, int, str, float]]] = [[] for _ in range(len(spans))]
    for k, b in enumerate(wanted):
        m = int(n[k])
        results[b] = _confidences(spans[b], alpha[k, :m], beta[k, :m], lp[k, :m], log_z[k], scheme)
    return results


def _valid_paths(paths: numpy.ndarray, n: numpy.ndarray, scheme: TagScheme) -> numpy.ndarray:
    """Whether each doc's tags (paths [doc, step], the first n[doc] read; n >= 1) are a
    valid sequence of the scheme. RETURNS ndarray[doc], bool."""
    past_end = numpy.arange(paths.shape[1])[1:] >= n[:, None]
    steps_ok = (scheme.allowed[paths[:, :-1], paths[:, 1:]] | past_end).all(axis=1)
    return scheme.start[paths[:, 0]] & steps_ok & scheme.end[paths[numpy.arange(len(n)), n - 1]]


def _viterbi(lp: numpy.ndarray, n: numpy.ndarray, scheme: TagScheme) -> numpy.ndarray:
    """The most probable valid tag sequence of each doc (lp [doc, step, tag], -inf past
    each doc's n[doc] tokens). RETURNS ndarray[doc, step], int64 (past a doc's end: unread).

    Past a doc's end the recursion runs on over -inf scores, unread: each doc's best path
    is read back from its own last step, through back-pointers set to the identity past
    its end."""
    n_docs, steps, n_tags = lp.shape
    trans = _transition_matrix(scheme)
    score = numpy.empty((n_docs, steps, n_tags))
    back = numpy.empty((n_docs, steps, n_tags), dtype="int64")
    score[:, 0] = numpy.where(scheme.start, lp[:, 0], NEG_INF)
    for t in range(1, steps):
        candidates = score[:, t - 1, :, None] + trans  # [doc, previous, next]
        back[:, t] = candidates.argmax(axis=1)
        numpy.add(candidates.max(axis=1), lp[:, t], out=score[:, t])
    back[numpy.arange(steps) >= n[:, None]] = numpy.arange(n_tags)
    rows = numpy.arange(n_docs)
    paths = numpy.empty((n_docs, steps), dtype="int64")
    paths[:, -1] = numpy.where(scheme.end, score[rows, n - 1], NEG_INF).argmax(axis=1)
    for t in range(steps - 1, 0, -1):
        paths[:, t - 1] = back[rows, t, paths[:, t]]
    return paths


def path_spans(paths: numpy.ndarray, n: numpy.ndarray, scheme: TagScheme) -> List[List[Tuple[int, int, str]]]:
    """tags_to_spans of each doc's tags, read off the tag ids on arrays (the tag strings of
    every token, built and parsed one by one, took 15% of the decoding).

    paths (ndarray[doc, step], int): tag ids; the first n[doc] of each row are read.
    RETURNS: per doc, (start, end, label) of each entity, end exclusive.
    """
    steps = paths.shape[1]
    label = numpy.where(numpy.arange(steps) < n[:, None], scheme.label_ids[paths], -1)
    # joins: the token continues the entity of the token before (same label, that one open).
    joins = numpy.zeros(paths.shape, dtype=bool)
    joins[:, 1:] = (scheme.continuing[paths[:, 1:]] & scheme.leaves_open[paths[:, :-1]]
                    & (label[:, 1:] == label[:, :-1]) & (label[:, 1:] >= 0))
    entity = label >= 0
    next_joins = numpy.zeros(paths.shape, dtype=bool)
    next_joins[:, :-1] = joins[:, 1:]
    docs, starts = numpy.nonzero(entity & ~joins)
    _, lasts = numpy.nonzero(entity & (scheme.closing[paths] | ~next_joins))
    spans: List[List[Tuple[int, int, str]]] = [[] for _ in range(paths.shape[0])]
    names = scheme.labels
    for b, start, last, label_id in zip(docs.tolist(), starts.tolist(), lasts.tolist(),
                                        label[docs, starts].tolist()):
        spans[b].append((start, last + 1, names[label_id]))
    return spans


def _scaled_forward_backward(lp: numpy.ndarray, n: numpy.ndarray,
                             scheme: TagScheme) -> Optional[Tuple[numpy.ndarray, numpy.ndarray]]:
    """The log forward and backward scores of each doc ([doc, step, tag]; past a doc's end
    they are not meaningful, and unread) from the recursions in probability space, rescaled
    to sum 1 at every step (Rabiner's scaling): a [doc, tag] x [tag, tag] product a step where
    the log-space recursion takes an exp and a log of [doc, tag, tag]. None where a step's
    mass underflows (a sequence forced through tags the model gives less than about 1e-200),
    for the log-space recursion."""
    steps = lp.shape[1]
    allowed = scheme.allowed.astype("float64")
    live = numpy.arange(steps) < n[:, None]  # [doc, step]
    alpha, beta = numpy.empty(lp.shape), numpy.empty(lp.shape)
    alpha_sum, beta_sum = numpy.empty(live.shape), numpy.empty(live.shape)
    with numpy.errstate(under="ignore", divide="ignore", invalid="ignore"):
        p = numpy.exp(lp)
        for t in range(steps):
            a = p[:, 0] * scheme.start if t == 0 else (alpha[:, t - 1] @ allowed) * p[:, t]
            alpha_sum[:, t] = numpy.where(live[:, t], a.sum(axis=1), 1.0)
            numpy.divide(a, alpha_sum[:, t, None], out=alpha[:, t])
        for t in range(steps - 1, -1, -1):
            b = (p[:, t + 1] * beta[:, t + 1]) @ allowed.T if t < steps - 1 else numpy.zeros(p.shape[::2])
            b[n - 1 == t] = scheme.end
            beta_sum[:, t] = numpy.where(live[:, t], b.sum(axis=1), 1.0)
            numpy.divide(b, beta_sum[:, t, None], out=beta[:, t])
        if not ((alpha_sum >= 1e-200).all() and (beta_sum >= 1e-200).all()):  # (NaN after a 0 too)
            return None
        log_alpha = numpy.log(alpha) + numpy.cumsum(numpy.log(alpha_sum), axis=1)[:, :, None]
        log_beta = numpy.log(beta) + numpy.cumsum(numpy.log(beta_sum)[:, ::-1], axis=1)[:, ::-1, None]
    return log_alpha, log_beta


def _log_forward_backward(lp: numpy.ndarray, n: numpy.ndarray, scheme: TagScheme) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The same scores from the recursions in log space (slower, exact where the scaled ones
    underflow)."""
    steps = lp.shape[1]
    trans = _transition_matrix(scheme)
    alpha = numpy.full(lp.shape, NEG_INF)
    beta = numpy.full(lp.shape, NEG_INF)
    alpha[:, 0] = numpy.where(scheme.start, lp[:, 0], NEG_INF)
    for t in range(1, steps):
        alpha[:, t] = _logsumexp(alpha[:, t - 1, :, None] + trans, axis=1) + lp[:, t]
    end_scores = numpy.where(scheme.end, 0.0, NEG_INF)
    for t in range(steps - 1, -1, -1):
        last = (t == n - 1)[:, None]
        if t < steps - 1:
            inner = _logsumexp(trans + (lp[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
            beta[:, t] = numpy.where(last, end_scores, numpy.where((t < n - 1)[:, None], inner, NEG_INF))
        else:
            beta[:, t] = numpy.where(last, end_scores, NEG_INF)
    return alpha, beta


def hf_tag_names(scheme: TagScheme) -> List[str]:
    """The scheme's tags as HF's token-classification pipeline reads them: BILUO's U- and
    L- become B- and I- (the same entities, since a U- or L- closes its entity anyway)."""
    names = []
    for tag in scheme.tags:
        prefix, label = split_tag(tag)
        names.append("O" if prefix == "O" else ("B-" if prefix in ("B", "U") else "I-") + label)
    return names


def first_piece_entities(
    log_probs: numpy.ndarray, tag_names: Sequence[str], starts_word: numpy.ndarray,
    skip: Optional[numpy.ndarray] = None,
) -> List[Tuple[int, int, str, float]]:
    """Entities by HF's rule (TokenClassificationPipeline, aggregation_strategy="first").

    Each word takes the most probable tag of its first token, with that probability as its
    score; adjacent words then join while their tag's type stays the same and the next one
    is not a B- (get_tag / group_entities: a tag without a B-/I- prefix counts as I- of
    itself); a group's score is the mean of its words' scores; groups of type O are dropped.

    log_probs (ndarray[n_tokens, n_tags]): per-token log probabilities.
    tag_names (Sequence[str]): the HF names of the tags (see hf_tag_names).
    starts_word (ndarray[n_tokens], bool): False for a token that continues the word of
        the token before it (it then follows that word's tag, as HF's sub-word pieces do).
    skip (ndarray[n_tokens], bool): tokens that are no word at all (whitespace).
    RETURNS (List[(start, end, label, score)]): token spans, end exclusive.
    """
    words: List[List] = []  # [first token, last token, tag name, score]
    for i in range(log_probs.shape[0]):
        if skip is not None and skip[i]:
            continue
        if words and not starts_word[i]:
            words[-1][1] = i
            continue
        best = int(numpy.argmax(log_probs[i]))
        words.append([i, i, tag_names[best], float(numpy.exp(log_probs[i, best]))])
    groups: List[List] = []  # [first token, last token, type, label, word scores]
    for first, last, name, score in words:
        bi, kind = _hf_tag(name)
        if groups and kind == groups[-1][2] and bi != "B":
            groups[-1][1] = last
            groups[-1][4].append(score)
        else:
            # The group's label is its first word's tag without the prefix (entity_group).
            groups.append([first, last, kind, name.split("-", 1)[-1], [score]])
    return [(first, last + 1, label, float(numpy.mean(scores)))
            for first, last, _, label, scores in groups if label != "O"]


def _hf_tag(name: str) -> Tuple[str, str]:
    # TokenClassificationPipeline.get_tag
    if name.startswith(("B-", "I-")):
        return name[0], name[2:]
    return "I", name
