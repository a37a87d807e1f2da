"""The MANN (memory-augmented LSTM) and the harness around it."""

from mann.config import TrainConfig
from mann.model import MANN, loss_function, query_accuracy

__version__ = "0.1.0"
__all__ = ["MANN", "TrainConfig", "loss_function", "query_accuracy", "__version__"]
