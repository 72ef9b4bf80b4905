"""The host-overhead benchmark's documents workload (benchmarks/host_overhead.py): bc5cdr's
sentences joined 9 at a time, with their entities. (Its timings are the benchmark's, never
asserted here.)"""
import spacy

from benchmarks.host_overhead import DOCUMENTS, document_examples, workload_examples


def test_documents_join_nine_sentences_with_their_entities(datasets_dir):
    nlp = spacy.blank("en")
    examples = document_examples(nlp, datasets_dir)
    path, per_doc, n_docs = DOCUMENTS
    assert len(examples) == n_docs
    lines = (datasets_dir / path).read_text(encoding="utf8").split("\n\n")
    first = [line.split("\t")[0] for sentence in lines[:per_doc] for line in sentence.splitlines()]
    doc = examples[0].reference
    assert [t.text for t in doc] == first == [t.text for t in examples[0].predicted]
    assert not examples[0].predicted.ents
    labels = {ent.label_ for eg in examples for ent in eg.reference.ents}
    assert labels == {"Chemical", "Disease"}
    assert sum(len(eg.reference) for eg in examples) / n_docs > 150  # documents, not sentences


def test_documents_workload_keeps_the_texts_with_cats(datasets_dir):
    nlp = spacy.blank("en")
    sentences = workload_examples(nlp, datasets_dir, "sentences")
    documents = workload_examples(nlp, datasets_dir, "documents")
    cats = [eg.reference.text for eg in sentences if eg.reference.cats]
    assert cats and cats == [eg.reference.text for eg in documents if eg.reference.cats]
    assert len(documents) == len(cats) + DOCUMENTS[2]
