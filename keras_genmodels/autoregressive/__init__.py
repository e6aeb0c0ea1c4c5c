"""The autoregressive family: an RNN for sequences and bytes, and a byte-level
transformer language model with cached, exportable generation."""
