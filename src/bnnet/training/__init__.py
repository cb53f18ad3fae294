"""Training: the loop, evaluation in eval mode, and the command-line job."""
from .evaluate import evaluate
from .loop import EpochRecord, History, batch_slices, fit

__all__ = ["EpochRecord", "History", "batch_slices", "evaluate", "fit"]
