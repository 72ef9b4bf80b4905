"""The benchmarks: scripts run as modules from the repository root, e.g.

    python -m benchmarks.speed_cpu --help
    python -m benchmarks.accuracy.run_spacy --help

(the root is then on the path: the scripts import each other as `benchmarks.…` and the
package as `spacy_bert_cls`, installed or not). What they share with the tests (the tiny
checkpoint, the code that hides optional packages) is spacy_bert_cls.testing. README.md
here says what each script measures.
"""
