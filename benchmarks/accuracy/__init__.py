"""The accuracy benchmark (README.md and CONTRACT.md here): prepare, run_spacy, run_hf and
score, run as `python -m benchmarks.accuracy.NAME` from the repository root, or all of
them by run_all.sh."""
