"""The batch-norm toolbox: exact statistics, folding, recalibration, conventions, diagnostics.

Each tool works on a trained model (a :class:`~bnnet.nn.Sequential`) and
states its math in its module docstring:

- :func:`population_statistics`, :func:`input_statistics`, :func:`precise_bn`:
  exact mean and variance of every BatchNorm's input over a dataset, pooled
  exactly across batches (:mod:`.precise_bn`, :mod:`.moments`);
- :func:`fold_batch_norm`: eval-mode BatchNorms folded into the Linear before
  them, for deployment (:mod:`.fold`);
- :func:`recalibrate`: AdaBN, statistics re-estimated on unlabeled data from a
  shifted domain (:mod:`.recalibrate`), with :class:`Shift` to make one (:mod:`.shift`);
- :func:`to_framework`, :func:`from_framework`: settings and state in the
  PyTorch, Keras and Flax conventions (:mod:`.conventions`);
- :func:`diagnose`, :func:`format_report`: per-layer problems and remedies
  (:mod:`.diagnostics`).

The command line exposes them as ``bnnet precise-bn``, ``bnnet fold``,
``bnnet recalibrate`` and ``bnnet inspect``.
"""
from .conventions import FRAMEWORKS, FrameworkBatchNorm, from_framework, to_framework
from .diagnostics import LayerDiagnosis, diagnose, format_report
from .fold import fold_batch_norm, fold_pair
from .moments import PooledMoments
from .precise_bn import PopulationStatistics, input_statistics, population_statistics, precise_bn
from .recalibrate import recalibrate
from .shift import Shift

__all__ = [
    "FRAMEWORKS", "FrameworkBatchNorm", "LayerDiagnosis", "PooledMoments", "PopulationStatistics", "Shift",
    "diagnose", "fold_batch_norm", "fold_pair", "format_report", "from_framework", "input_statistics",
    "population_statistics", "precise_bn", "recalibrate", "to_framework",
]
