"""BERT pretraining: masked-LM and next-sentence objectives, data streaming, the training loop."""
