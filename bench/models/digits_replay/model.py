"""A real model for the advisor's replay: an SVC trained on scikit-learn's 8x8 digits at load
(no cache, so every replica's load is real training work) that classifies ``rows`` images of the
data set per request (real inference work, a few tens of milliseconds).

Each answer also carries when (Unix time) its replica loaded and when its prediction ran, and
the replica's pid: the replay splits each measured latency with them (wait, start-up, service).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sklearn.datasets import load_digits
from sklearn.svm import SVC


class DigitsReplay:
    def load(self) -> None:
        self.loaded = [time.time(), 0.0]
        data = load_digits()
        self.images = data.data
        self.clf = SVC(gamma=0.001, C=10.0).fit(data.data, data.target)
        self.loaded[1] = time.time()

    def predict(self, inputs: Any) -> Any:
        began = time.time()
        rows = int(inputs.get("rows", 100)) if isinstance(inputs, dict) else 100
        labels = self.clf.predict(self.images[: max(1, min(rows, len(self.images)))])
        return {
            "digits": labels[:10].tolist(),
            "classified": len(labels),
            "timing": {"pid": os.getpid(), "load": self.loaded, "predict": [began, time.time()]},
        }
