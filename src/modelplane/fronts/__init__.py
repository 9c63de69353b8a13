"""Protocol fronts: the same models behind other ecosystems' wire formats.

A front has two halves. On the gateway, a thin router recognises the front's paths, checks the
token, and forwards the raw body to a replica with ``meta = b"<front>\\x00<params>"`` in the
frame. In the replica, the front's :class:`Codec` turns that body into the model's inputs and the
model's result into the front's response — so, as for native requests, only the replica decodes.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from modelplane.errors import InvalidInput
from modelplane.model.contract import LoadedModel

_CODECS: dict[bytes, str] = {
    b"oip": "modelplane.fronts.oip",
    b"deepaas": "modelplane.fronts.deepaas",
    b"files": "modelplane.fronts.files",
}
_loaded: dict[bytes, Codec] = {}


class Codec(Protocol):
    def decode(self, model: LoadedModel, content_type: str, params: bytes, body: bytes) -> Any:
        """The model's inputs; raise a :class:`modelplane.errors.ModelplaneError` on bad input."""
        ...

    def encode(self, model: LoadedModel, result: Any, params: bytes) -> tuple[int, bytes, bytes]:
        """``(status, content_type, body)`` of the front's response for the model's result."""
        ...


def codec(name: bytes) -> Codec:
    found = _loaded.get(name)
    if found is None:
        module = _CODECS.get(name)
        if module is None:
            raise InvalidInput(f"unknown protocol front {name.decode('latin-1')!r}")
        found = _loaded[name] = importlib.import_module(module).CODEC
    return found
