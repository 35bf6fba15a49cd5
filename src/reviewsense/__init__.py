"""reviewsense: fine-tune, diagnose and serve BERT-family review-sentiment models."""

__version__ = "0.1.0"

__all__ = ["Predictor", "__version__"]


def __getattr__(name: str):
    # Lazy: `import reviewsense` must stay cheap for the CLI; torch loads only when asked.
    if name == "Predictor":
        from reviewsense.inference.predictor import Predictor

        return Predictor
    raise AttributeError(name)
