"""Training and evaluation data: the readers that train straight from raw data files.

`spacy-bert-cls.Corpus.v1` and `spacy-bert-cls.MergedCorpus.v1` (registered through the
`spacy_readers` entry points in setup.py, not with a decorator) read three kinds of
files, so that

    python -m spacy train CONFIG --paths.train FILE --paths.dev FILE

needs no `spacy convert` step first:

- `.spacy` (DocBin) files or folders of them, through spaCy's own `Corpus`;
- `.jsonl` text classification, one `{"text": ..., "label": ...}` (exclusive
  classes) or `{"text": ..., "labels": [...]}` (multi-label) object a line;
- CoNLL / IOB NER files, one `token ... tag` line a token and a blank line
  after each sentence (IOB1, IOB2, BILUO and IOBES tags).

Every malformed line raises `spacy_bert_cls.errors.DataError`, which names the
file and the 1-based line: nothing is skipped silently.

A config block that uses it:

    [corpora.train]
    @readers = "spacy-bert-cls.Corpus.v1"
    path = ${paths.train}
    format = "auto"
    limit = 0
    max_length = 0
    labels = null

The modules, one concern each:

- `readers`: `spacy-bert-cls.Corpus.v1` (`BertClsCorpus`), one file a reader;
- `merged`: `spacy-bert-cls.MergedCorpus.v1`, several files interleaved and balanced;
- `formats`: which format a path is read as (`resolve_format`);
- `lines`: bounded, checked UTF-8 reading of a data file, line by line;
- `jsonl`: text classification JSONL records and their labels;
- `conll`: CoNLL / IOB NER sentences and the examples made of them.

The tag schemes' string helpers (`tags_to_spans`, ...) live in `spacy_bert_cls.tags`.
(The package is `data`, not `corpus`: the repository's top-level `corpus/` folder
holds the demo data, not code.)
"""
