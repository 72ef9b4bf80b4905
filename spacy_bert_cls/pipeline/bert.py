"""The `bert` component: runs the encoder once and feeds every listener downstream."""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from ..models.encoder import clip_encoder_gradient, get_bert_shim
from ..models.listener import BertListener
from ..models.output_table import store_outputs
from ..models.output import BertGrad, BertOutput

DEFAULT_BERT_MODEL = """
[model]
@architectures = "spacy-bert-cls.BertTransformer.v1"
vocab_size = 30522
hidden_size = 384
num_hidden_layers = 6
num_attention_heads = 12
intermediate_size = 1536
max_position_embeddings = 512
window_size = 256
stride = 192
"""


@Language.factory(
    "bert",
    assigns=[],
    default_config={
        "model": Config().from_str(DEFAULT_BERT_MODEL)["model"],
        "frozen": False,
        "set_doc_tensor": False,
        "inference_dtype": "float32",
        "per_listener_optimizer": False,
    },
)
def make_bert(nlp: Language, name: str, model: Model, frozen: bool, set_doc_tensor: bool,
              inference_dtype: str, per_listener_optimizer: bool = False) -> "BertTransformer":
    """Create a `bert` component (factory "bert").

    model (Model[List[Doc], List[BertOutput]]): spacy-bert-cls.BertTransformer.v1.
    frozen (bool): keep the encoder's weights as they are in training; listeners
        downstream still train, on outputs computed without gradients (faster).
    set_doc_tensor (bool): also write mean-pooled token vectors to doc.tensor, as
        spaCy's tok2vec does (token.vector and doc.similarity then use them); off by
        default, so nothing big stays on the Doc after the pipeline.
    inference_dtype (str): what the encoder predicts in: "float32" (default), "int8"
        (linear layers in int8, calibrated by `spacy-bert-cls quantize`; without a
        calibration, quantized per channel from the weights alone) or "bfloat16" (autocast;
        fast only where the CPU has native bf16). Training always runs in fp32 (or
        `mixed_precision`): the setting applies to nlp(...), nlp.pipe and evaluation.
    per_listener_optimizer (bool): with several listening components (a joint pipeline),
        step the encoder with each component's gradient separately, each with its own
        optimizer state (Adam's moments) and its own global-norm clip, instead of one step
        with their sum. Under Adam a summed gradient moves the encoder the way of the larger
        loss gradient; stepped apart, each head moves it as far as it would alone (the
        listeners' grad_factor then makes no difference). Costs a backward pass per extra
        component and an optimizer state per component. Off: one summed step, as
        spacy-transformers.
    """
    return BertTransformer(nlp.vocab, model, name, frozen=frozen, set_doc_tensor=set_doc_tensor,
                           inference_dtype=inference_dtype, per_listener_optimizer=per_listener_optimizer)


class BertTransformer(TrainablePipe):
    """A BERT encoder shared by the listeners of downstream components."""

    def __init__(self, vocab: Vocab, model: Model, name: str = "bert", *,
                 frozen: bool = False, set_doc_tensor: bool = False, inference_dtype: str = "float32",
                 per_listener_optimizer: bool = False) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.listener_map: Dict[str, List[BertListener]] = {}
        self.cfg = {"frozen": frozen, "set_doc_tensor": set_doc_tensor,
                    "per_listener_optimizer": per_listener_optimizer}
        self.inference_dtype = inference_dtype

    @property
    def inference_dtype(self) -> str:
        """"float32", "int8" or "bfloat16": see make_bert. The factory setting (config.cfg)
        is where it is saved; setting it here changes this pipeline's predictions now."""
        return self._shim().windowed.inference_dtype

    @inference_dtype.setter
    def inference_dtype(self, value: str) -> None:
        self._shim().windowed.inference_dtype = value

    # Listener bookkeeping, as spaCy's Tok2Vec: Language._link_components calls these.
    @property
    def listeners(self) -> List[BertListener]:
        return [m for c in self.listening_components for m in self.listener_map[c]]

    @property
    def listening_components(self) -> List[str]:
        return list(self.listener_map.keys())

    def add_listener(self, listener: BertListener, component_name: str) -> None:
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)

    def remove_listener(self, listener: BertListener, component_name: str) -> bool:
        if listener in self.listener_map.get(component_name, []):
            self.listener_map[component_name].remove(listener)
            if not self.listener_map[component_name]:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        names = ("*", self.name)
        if isinstance(getattr(component, "model", None), Model):
            for node in component.model.walk():
                if isinstance(node, BertListener) and node.upstream_name in names:
                    self.add_listener(node, component.name)

    def predict(self, docs: Iterable[Doc]) -> List[BertOutput]:
        docs = list(docs)
        if not docs:
            return []
        return self.model.predict(docs)

    def set_annotations(self, docs: Sequence[Doc], outputs: List[BertOutput]) -> None:
        store_outputs(self.name, docs, outputs, self.listeners)
        if self.cfg["set_doc_tensor"]:
            for doc, output in zip(docs, outputs):
                doc.tensor = mean_token_vectors(self.model.ops, output)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Run the encoder on a batch and hand the outputs to the listeners.

        The last listener to backpropagate triggers the encoder's backward pass
        (and its weight update when `sgd` is given); the others add to its gradient.
        """
        if losses is None:
            losses = {}
        validate_examples(examples, "BertTransformer.update")
        docs = [eg.predicted for eg in examples]
        losses.setdefault(self.name, 0.0)
        if not docs:
            return losses
        if self.cfg["frozen"]:
            outputs = self.model.predict(docs)
            bp_outputs = None
        else:
            set_dropout_rate(self.model, drop)
            outputs, bp_outputs = self.model.begin_update(docs)
        d_outputs = [BertGrad() for _ in outputs]

        def add_loss(one_d_outputs: List[BertGrad]) -> None:
            for one in one_d_outputs:
                for part in (one.pieces, one.cls, one.pooled):
                    if part is not None:
                        losses[self.name] += float((part ** 2).sum())

        def accumulate_gradient(one_d_outputs: List[BertGrad]) -> List:
            for total, one in zip(d_outputs, one_d_outputs):
                total += one
            add_loss(one_d_outputs)
            return []

        def backprop(one_d_outputs: List[BertGrad]) -> List:
            accumulate_gradient(one_d_outputs)
            if bp_outputs is not None:
                bp_outputs(d_outputs)
                if sgd is not None:
                    self.finish_update(sgd)
            return []

        batch_id = BertListener.get_batch_id(docs)
        if bp_outputs is not None and self.cfg.get("per_listener_optimizer") and len(self.listening_components) > 1:
            self._receive_separately(batch_id, outputs, bp_outputs, add_loss=add_loss, sgd=sgd)
            return losses
        listeners = self.listeners
        for listener in listeners[:-1]:
            listener.receive(batch_id, outputs, accumulate_gradient)
        if listeners:
            listeners[-1].receive(batch_id, outputs, backprop)
        return losses

    def _receive_separately(self, batch_id: int, outputs: List[BertOutput], bp_outputs: Callable,
                            *, add_loss: Callable, sgd: Optional[Optimizer]) -> None:
        """per_listener_optimizer: each listener's gradient goes back through the encoder on
        its own (the graph kept until the last) and is stashed under its component's name;
        when every listener has sent one, finish_update steps each stash separately."""
        shim = self._shim()
        pending = {id(listener) for listener in self.listeners}

        def make_backprop(component: str, listener: BertListener) -> Callable:
            def backprop(one_d_outputs: List[BertGrad]) -> List:
                add_loss(one_d_outputs)
                pending.discard(id(listener))
                shim.retain_graph = bool(pending)
                try:
                    bp_outputs(one_d_outputs)
                finally:
                    shim.retain_graph = False
                shim.stash_gradient(component)
                if not pending and sgd is not None:
                    self.finish_update(sgd)
                return []
            return backprop

        for component in self.listening_components:
            for listener in self.listener_map[component]:
                listener.receive(batch_id, outputs, make_backprop(component, listener))

    def _shim(self):
        return get_bert_shim(self.model)

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the encoder's weights.

        The optimizer's `grad_clip` clips the encoder's gradient by its global norm, as
        torch's clip_grad_norm_ and HF's Trainer do for BERT (thinc on its own clips
        each parameter's gradient separately, which lets every one of the encoder's
        ~100 weight, bias and norm tensors keep a norm of up to grad_clip: fine-tuning
        then takes larger steps than BERT's recipe, and fits less well). After the
        global clip every parameter's norm is under grad_clip, so thinc's own clip
        changes nothing.
        """
        if self.cfg["frozen"]:
            return
        grad_clip = getattr(sgd, "grad_clip", None)
        if grad_clip:
            clip_encoder_gradient(self.model, float(grad_clip))
            shim = self._shim()
            if hasattr(shim, "clip_stashed"):  # per_listener_optimizer: each gradient on its own
                shim.clip_stashed(float(grad_clip))
        self.model.finish_update(sgd)

    def get_loss(self, examples, scores) -> None:
        pass

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        loader: Optional[Callable[[Model], Model]] = None,
    ) -> None:
        """Set the tokenizer and weights (from `loader`) and check the listeners.

        loader (Callable[[Model], Model]): usually spacy-bert-cls.HFLoader.v1 with
            path = ${paths.bert}, set in [initialize.components.<name>.loader].
        """
        validate_get_examples(get_examples, "BertTransformer.initialize")
        if loader is not None:
            self.model = loader(self.model)
        doc_sample = [eg.x for eg in islice(get_examples(), 10)]
        self.model.initialize(X=doc_sample)
        width = self.model.get_dim("nO")
        for component, listeners in self.listener_map.items():
            for listener in listeners:
                if listener.get_dim("nO") != width:
                    raise ValueError(
                        f"The listener of '{component}' has width {listener.get_dim('nO')} but "
                        f"'{self.name}' has hidden_size {width}: set the listener's width to "
                        f"${{components.{self.name}.model.hidden_size}}."
                    )

    def add_label(self, label):
        raise NotImplementedError


def mean_token_vectors(ops, output: BertOutput):
    """Mean of each token's pieces (zeros for tokens without pieces): [n_tokens, hidden]."""
    if not len(output.token_pieces):  # no token has a piece (empty or whitespace doc)
        return ops.alloc2f(output.n_tokens, output.pieces.shape[1])
    index = ops.xp.asarray(output.token_pieces)
    return ops.reduce_mean(output.pieces[index], ops.asarray1i(output.token_lengths))
