"""Thinc glue: the registered architectures around the torch encoder."""
