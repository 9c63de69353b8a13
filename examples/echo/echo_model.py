"""The smallest model: predict returns its input."""

from __future__ import annotations

from typing import Any


class Echo:
    def load(self) -> None:
        pass

    def predict(self, inputs: Any) -> Any:
        return inputs
