"""A real classifier: an SVC trained on scikit-learn's bundled 8x8 digits.

Training takes about a second; the fitted model is cached (pickle) in the deployment's cache
folder, so later replicas load it in milliseconds. scikit-learn is imported at module level on
purpose: the platform's warm template imports this module once, so every replica forked from it
starts with scikit-learn already in memory.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.svm import SVC

CACHE_NAME = "digits-svc-v2.pkl"


def _cache_dir() -> Path:
    env = os.environ.get("MODELPLANE_CACHE_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "modelplane-digits"


def train() -> Any:
    data = load_digits()
    # SVC's own probability=True is deprecated; calibrating it gives the same kind of output.
    clf = CalibratedClassifierCV(SVC(gamma=0.001, C=10.0), ensemble=False)
    clf.fit(data.data, data.target)
    return clf


def image_to_grid(data: bytes) -> np.ndarray:
    """A picture of one digit -> 8x8 grey levels 0-16, ink bright, like the training data."""
    img = Image.open(io.BytesIO(data)).convert("L")
    pixels = np.asarray(img, dtype=np.float64)
    if pixels.mean() > 127:  # dark ink on light paper: invert so ink is bright
        img = ImageOps.invert(img)
    img = img.resize((8, 8), Image.Resampling.LANCZOS)
    grid = np.asarray(img, dtype=np.float64)
    peak = grid.max()
    return grid * (16.0 / peak) if peak > 0 else grid


class DigitsModel:
    def __init__(self) -> None:
        self.clf: Any = None

    def load(self) -> None:
        cache = _cache_dir() / CACHE_NAME
        if cache.exists():
            with open(cache, "rb") as f:
                self.clf = pickle.load(f)
            return
        self.clf = train()
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(self.clf, f)
        os.replace(tmp, cache)

    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        image = inputs.get("image")
        if image is None:
            raise ValueError("send an 'image': an 8x8 array or an uploaded picture")
        if hasattr(image, "content_type"):  # an uploaded file (an ndarray has .data too)
            grid = image_to_grid(image.data)
        else:
            grid = np.asarray(image, dtype=np.float64)
        if grid.ndim == 3:  # a batch of N 8x8 images (e.g. an Open Inference Protocol tensor)
            probs = self.clf.predict_proba(grid.reshape(len(grid), 64))
            return {
                "digit": [int(d) for d in np.argmax(probs, axis=1)],
                "probabilities": np.round(probs, 6).tolist(),
            }
        probs = self.clf.predict_proba(grid.reshape(1, 64))[0]
        return {
            "digit": int(np.argmax(probs)),
            "probabilities": [round(float(p), 6) for p in probs],
        }
