"""Echo with a 0.5 s load(): the model's own load time the cold-start overhead is measured over."""

from __future__ import annotations

import time
from typing import Any

LOAD_SECONDS = 0.5


class HalfSecond:
    def load(self) -> None:
        time.sleep(LOAD_SECONDS)

    def predict(self, inputs: Any) -> Any:
        return inputs
