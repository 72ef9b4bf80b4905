"""Where a training step's host time goes: cProfile, py-spy samples and torch.profiler, by group.

benchmarks/host_overhead.py's --profile calls `profile` in its training child. Three views of
the same steps, in one text report:

  py-spy (when its binary is found: --py-spy PATH or on PATH) samples the stack 250 times a
      second without hooking any call, so its shares are the step's own; each sample counts
      for the group of its innermost Python frame (a C call for its Python caller).
  cProfile counts every call. spaCy's Cython is compiled with profiling hooks, which cProfile
      then pays for every Token made: it inflates spaCy's per-token code many times over (the
      report times those spaCy calls unprofiled beside it).
  torch.profiler: torch's own operators, by self CPU time.
"""
import cProfile
import os
import pstats
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
RATE = 250

# A function's group: the first whose patterns one is in its "file:function" (py-spy names a
# method Class.method, cProfile just method: the patterns hold for both).
GROUPS = [
    ("optimizer", ("thinc/optimizers.py", "spacy_bert_cls/schedules.py", "spacy_bert_cls/models/adam.py",
                   "torch/optim/", "finish_update",
                   "clip_gradient", "clip_encoder_gradient", "clip_stashed", "torch/nn/utils/clip_grad",
                   "numpy_ops.pyx:adam")),
    ("losses", ("get_loss", "_truths", "thinc/loss.py", "_log_softmax")),
    ("decoding", ("spacy_bert_cls/decoding.py", "spacy_bert_cls/tags.py")),
    ("our pieces/alignment", ("spacy_bert_cls/models/pieces.py", "spacy_bert_cls/tokenization/")),
    ("windows", ("spacy_bert_cls/windows.py", "spacy_bert_cls/pytorch/windowed.py", "spacy_bert_cls/pytorch/packing.py",
                 "plan_for", "bucket_tensors")),
    ("listeners", ("spacy_bert_cls/models/listener.py", "spacy_bert_cls/models/output", "pipeline/bert.py")),
    ("our encoder (module code, thinc glue)", ("spacy_bert_cls/pytorch/", "spacy_bert_cls/models/encoder.py",
                                              "spacy_bert_cls/models/transformer.py")),
    ("heads", ("spacy_bert_cls/models/heads.py", "spacy_bert_cls/pipeline/")),
    ("spaCy Example/alignment", ("spacy/training/", "spacy.training", "spacy/tokens/", "spacy.tokens")),
    ("spaCy other (Language.update, ...)", ("spacy/",)),
    ("thinc ops", ("thinc/backends/", "thinc.backends")),
    ("thinc layers/shims", ("thinc/",)),
    ("torch (autograd, nn modules, functional)", ("torch/", "torch.")),
    ("numpy", ("numpy",)),
]


def group_of_label(label: str) -> str:
    label = label.replace(os.sep, "/")
    for name, patterns in GROUPS:
        if any(p in label for p in patterns):
            return name
    return "Python and other"


def profile(step: Callable, batches: List, out: Path, words: int, seconds: float, py_spy: Optional[str]) -> Dict:
    """Run the batches under each profiler in turn; write the report to `out`. seconds: the
    same batches' unprofiled time."""
    import torch

    per_step = 1000 * seconds / len(batches)
    parts = [f"{len(batches)} nlp.update steps of 32 examples, {words:,} words; unprofiled {seconds:.2f} s "
             f"({per_step:.1f} ms a step, {words / seconds:,.0f} words/s)."]
    result: Dict = {}
    if py_spy:
        samples, wall = sample(step, batches, py_spy, out.with_suffix(".pyspy.txt"))
        result["sampled_groups"] = sampled_groups(samples)
        parts += [f"py-spy, {RATE} samples/s, {sum(samples.values())} samples over {wall:.2f} s:",
                  table("Share of the samples by group (innermost Python frame):", result["sampled_groups"]),
                  sampled_top(samples)]
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for batch in batches:
        step(batch)
    profiler.disable()
    profiled = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    result["cprofile_groups"] = {k: v / profiled for k, v in group_times(stats).items()}
    direct = spacy_calls(batches)
    parts += [f"cProfile: {profiled:.2f} s ({1000 * profiled / len(batches):.1f} ms a step).",
              "Unprofiled, the spaCy calls our step makes (ms a step, share of the unprofiled step):\n" + "\n".join(
                  f"- {name}: {1000 * secs / len(batches):.2f} ms ({secs / seconds:.1%})" for name, secs in direct.items()),
              table("cProfile self time by group (a built-in counts for its heaviest caller's group):",
                    result["cprofile_groups"]),
              top_table(stats, "cumulative", profiled), top_table(stats, "tottime", profiled)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(batch)
    parts.append("torch.profiler, same steps, by self CPU time:\n"
                 + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    out.write_text("\n\n".join(parts) + "\n", encoding="utf8")
    result.update(profiled_seconds=profiled, spacy_calls=direct, report=str(out))
    return result


# ---------------------------------------------------------------- py-spy

def sample(step: Callable, batches: List, py_spy: str, raw: Path) -> Tuple[Counter, float]:
    """py-spy on this process while it runs the batches: {stack: samples} of the steps."""
    cmd = [py_spy, "record", "--pid", str(os.getpid()), "--rate", str(RATE), "--format", "raw", "--full-filenames",
           "-o", str(raw)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)  # attach (idle samples of the sleep are not recorded)
    t0 = time.perf_counter()
    for batch in batches:
        step(batch)
    wall = time.perf_counter() - t0
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    samples: Counter = Counter()
    for line in raw.read_text(encoding="utf8").splitlines():
        stack, _, count = line.rpartition(" ")
        if "step (" in stack:
            samples[stack] += int(count)
    return samples, wall


def _frames(stack: str) -> List[str]:
    """py-spy's 'func (file:line)' frames inside the step, outermost first, as 'file:func'."""
    frames = []
    for frame in stack.split(";"):
        match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
        frames.append(f"{match.group(2)}:{match.group(1)}" if match else frame)
    inside = [i for i, frame in enumerate(frames) if frame.endswith(".step")]
    return frames[inside[0] + 1:] if inside and inside[0] + 1 < len(frames) else frames


def sampled_groups(samples: Counter) -> Dict[str, float]:
    total = sum(samples.values()) or 1
    groups: Counter = Counter()
    for stack, count in samples.items():
        groups[group_of_label(_frames(stack)[-1])] += count
    return {name: count / total for name, count in groups.most_common()}


def sampled_top(samples: Counter, n: int = 40) -> str:
    total = sum(samples.values()) or 1
    inclusive: Counter = Counter()
    for stack, count in samples.items():
        for label in set(_frames(stack)):
            inclusive[label] += count
    rows = [f"Top {n} functions by share of the samples with them on the stack:", "| function | share | group |",
            "|---|---|---|"]
    rows += [f"| {_short(label)} | {count / total:.1%} | {group_of_label(label)} |"
             for label, count in inclusive.most_common(n)]
    return "\n".join(rows)


# ---------------------------------------------------------------- cProfile

def spacy_calls(batches) -> Dict[str, float]:
    """Seconds, unprofiled, over all batches, of the per-doc spaCy calls in our step."""
    from spacy_bert_cls.models.listener import BertListener

    copies = [[eg.copy() for eg in batch] for batch in batches]  # as Language.update's, no alignment cached
    calls = {"Example.copy() of every example (Language.update does it, for any pipeline)":
                 lambda i: [eg.copy() for eg in batches[i]],
             "doc.text of every doc (pieces)": lambda i: [eg.predicted.text for eg in batches[i]],
             "Example.get_aligned_ner() of every copied example (bert_ner's loss)":
                 lambda i: [eg.get_aligned_ner() for eg in copies[i]],
             "BertListener.get_batch_id, once (the bert component and each listener call it)":
                 lambda i: BertListener.get_batch_id([eg.predicted for eg in batches[i]])}
    seconds = {}
    for name, call in calls.items():
        t0 = time.perf_counter()
        for i in range(len(batches)):
            call(i)
        seconds[name] = time.perf_counter() - t0
    return seconds


def _label(key: Tuple[str, int, str]) -> str:
    filename, _, name = key
    return f"{filename}:{name}" if filename != "~" else name


def _short(label: str) -> str:
    return label.replace(str(REPO) + "/", "").split("site-packages/")[-1]


def group_of(key, stats_table, depth: int = 0) -> str:
    """The group of a cProfile entry; a built-in (not torch's or numpy's) takes its heaviest caller's."""
    label = _label(key)
    if key[0] == "~" and "torch" not in label and "numpy" not in label and depth < 3:
        callers = stats_table[key][4]
        if callers:
            heaviest = max(callers, key=lambda c: callers[c][3])
            return group_of(heaviest, stats_table, depth + 1)
    return group_of_label(label)


def group_times(stats: pstats.Stats) -> Dict[str, float]:
    """Self seconds by group (they add up to the profiled time)."""
    totals: Counter = Counter()
    for key, (_, _, tottime, _, _) in stats.stats.items():
        totals[group_of(key, stats.stats)] += tottime
    return dict(totals.most_common())


def table(title: str, shares: Dict[str, float]) -> str:
    rows = [title, "| group | share |", "|---|---|"]
    rows += [f"| {name} | {share:.1%} |" for name, share in shares.items()]
    return "\n".join(rows)


def top_table(stats: pstats.Stats, sort: str, profiled: float, n: int = 40) -> str:
    index = 3 if sort == "cumulative" else 2
    items = sorted(stats.stats.items(), key=lambda kv: -kv[1][index])[:n]
    rows = [f"cProfile, top {n} by {sort} time:", "| function | calls | self s | cumulative s | share (cum.) | group |",
            "|---|---|---|---|---|---|"]
    for key, (_, calls, tottime, cumtime, _) in items:
        rows.append(f"| {_short(_label(key))}:{key[1]} | {calls} | {tottime:.3f} | {cumtime:.3f} "
                    f"| {cumtime / profiled:.1%} | {group_of(key, stats.stats)} |")
    return "\n".join(rows)
