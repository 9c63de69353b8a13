"""Echo whose predict blocks for 50 ms: one replica answers at most 20 requests/s."""

from __future__ import annotations

import time
from typing import Any

PREDICT_SECONDS = 0.05


class Sleepy50:
    def load(self) -> None:
        pass

    def predict(self, inputs: Any) -> Any:
        time.sleep(PREDICT_SECONDS)
        return inputs
