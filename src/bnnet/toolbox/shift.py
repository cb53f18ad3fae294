"""Domain shifts for images with pixels in [0, 1]: a test set that no longer looks like training.

The shifts model a change of camera or scanner, not of content:

- brightness and contrast, about mid-grey::

      x' = clip(contrast * (x - 0.5) + 0.5 + brightness, 0, 1)

  Without clipping this is an affine map of every pixel, so the first
  Linear's outputs move by a per-feature affine map too (W x' = c W x + k W 1):
  exactly what re-estimated batch-norm statistics undo (AdaBN,
  :mod:`bnnet.toolbox.recalibrate`). Clipping destroys some information, so
  recalibration can only partly repair a clipped shift;
- additive Gaussian noise ``x' = clip(x + noise_std * N(0, 1), 0, 1)``, seeded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shift:
    """A brightness/contrast/noise shift; the identity with the defaults.

    Attributes:
        brightness: added after contrast, in pixel units (-1..1).
        contrast: factor on the distance from mid-grey 0.5 (> 0; 1 keeps it).
        noise_std: standard deviation of added Gaussian noise (>= 0).
        clip: clip the result to [0, 1], as a real image would be.
        seed: seed of the noise.
    """

    brightness: float = 0.0
    contrast: float = 1.0
    noise_std: float = 0.0
    clip: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not -1.0 <= self.brightness <= 1.0:
            raise ValueError(f"Shift expected brightness in [-1, 1] (pixel units), got {self.brightness}")
        if not self.contrast > 0.0:
            raise ValueError(f"Shift expected contrast > 0 (1 keeps the contrast), got {self.contrast}")
        if not self.noise_std >= 0.0:
            raise ValueError(f"Shift expected noise_std >= 0, got {self.noise_std}")

    def is_identity(self) -> bool:
        return self.brightness == 0.0 and self.contrast == 1.0 and self.noise_std == 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The shifted copy of x (same shape and dtype); x itself is not changed."""
        shifted = self.contrast * (x - 0.5) + 0.5 + self.brightness
        if self.noise_std > 0.0:
            noise = np.random.default_rng(self.seed).standard_normal(x.shape)
            shifted = shifted + self.noise_std * noise
        if self.clip:
            shifted = np.clip(shifted, 0.0, 1.0)
        return np.asarray(shifted, dtype=x.dtype)

    def describe(self) -> str:
        if self.is_identity():
            return "no shift"
        parts = [f"brightness {self.brightness:+g}", f"contrast x{self.contrast:g}"]
        if self.noise_std:
            parts.append(f"noise std {self.noise_std:g}")
        return ", ".join(parts) + (", clipped to [0, 1]" if self.clip else "")
