"""Fast inference: :class:`Predictor` (PyTorch / ONNX Runtime backends) and ONNX export."""

from reviewsense.inference.predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]
