"""One pipeline, used concurrently: nlp.pipe(n_process=2) gives exactly what n_process=1
gives, and two threads calling the same nlp at once get what one thread gets.
(tests/stress/test_concurrency.py does the same on hostile generated text.)"""
import threading

import pytest
import torch

from .test_heads import TEXTS, TRAIN, make_nlp, train


def predictions(docs):
    return [(doc.cats, [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]) for doc in docs]


@pytest.fixture(scope="module")
def joint(tiny_checkpoint, tiny_model_config):
    # One torch thread, as in nlp.pipe's forked workers: the same arithmetic, the same bits.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    nlp = make_nlp(tiny_model_config)
    train(nlp, tiny_checkpoint, TRAIN, n_iter=10)
    yield nlp
    torch.set_num_threads(threads)


def test_n_process_2_equals_n_process_1_for_the_bert_heads(joint):
    texts = TEXTS * 8
    single = predictions(joint.pipe(texts, batch_size=4))
    assert predictions(joint.pipe(texts, batch_size=4, n_process=2)) == single


def run_in_threads(nlp, texts, n_threads=2, batch_size=4):
    results = [None] * n_threads
    errors = []
    barrier = threading.Barrier(n_threads)

    def work(i):
        try:
            barrier.wait()
            results[i] = predictions(nlp.pipe(texts, batch_size=batch_size))
        except Exception as err:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_two_threads_get_what_one_thread_gets(joint):
    # The encoder has dropout: thinc's predict switched the torch module back to train mode
    # when one thread finished, under the other thread's forward pass.
    texts = TEXTS * 12
    sequential = predictions(joint.pipe(texts, batch_size=4))
    for _ in range(3):
        for result in run_in_threads(joint, texts):
            assert result == sequential
