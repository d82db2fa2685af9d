"""The language-model family: Penn Treebank (word and character level) and WikiText-2/103 in their
released text files (``data.py``), the regularisers its papers share (``regularizers.py``), the LSTM language model of their baselines (``models.py``), the frozen base
``Config`` (``config.py``) and the family's one training loop (``train.py``: truncated BPTT over
batchified streams, perplexity on the full validation and test sets).

No ``RUNNER`` here, and no torch at import (``kb runners`` imports every package under ``runners/``).
"""
