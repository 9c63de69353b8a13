"""What a model is to modelplane.

A model is any object with ``load()`` (heavy work, once per replica) and ``predict(inputs)``, sync
or async. Its metadata comes from the folder's ``modelplane.yaml``. :class:`LoadedModel` adapts
sync and async models once, at load time, so no call path has to branch on it again.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jsonschema
import orjson

from modelplane.errors import InvalidInput, ModelFailed


@runtime_checkable
class Model(Protocol):
    def load(self) -> None:
        """Load weights; runs once per replica before it takes requests."""

    def predict(self, inputs: Any) -> Any:
        """Return a JSON-able value, bytes, or a :class:`FileOutput`."""


@dataclass(frozen=True)
class FileInput:
    """An uploaded file, as the model receives it."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class FileOutput:
    """A non-JSON result (an image, a CSV...)."""

    data: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None


@dataclass(frozen=True)
class NamedInput:
    """The input of a job with storage paths: one object, under its own name (``cat.png``).

    Models that keep files (OSCAR script services) answer it with a :class:`FileSet`; others
    receive ``{"file": FileInput}`` instead and answer as they always do."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class FileSet:
    """Every file a job left, by its name relative to the output folder (``frames/001.png``)."""

    files: tuple[FileOutput, ...]
    log: bytes = b""


@dataclass(frozen=True)
class BatchPolicy:
    """How a replica gathers concurrent requests into one ``predict_batch`` call.

    A batch is sent to the model as soon as it holds ``max_size`` inputs, or ``max_wait_ms``
    after its first input arrived, whichever comes first.
    """

    max_size: int
    max_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int):
            raise ValueError("batch.max_size must be a whole number")
        if not 1 <= self.max_size <= 4096:
            raise ValueError(f"batch.max_size must be between 1 and 4096, not {self.max_size}")
        if isinstance(self.max_wait_ms, bool) or not isinstance(self.max_wait_ms, int | float):
            raise ValueError("batch.max_wait_ms must be a number of milliseconds")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise ValueError(
                f"batch.max_wait_ms must be between 0 and 10000, not {self.max_wait_ms}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"max_size": self.max_size, "max_wait_ms": self.max_wait_ms}


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: str = "0"
    description: str = ""
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    accepts: tuple[str, ...] = ("application/json",)
    extra: dict[str, Any] = field(default_factory=dict)
    batch: BatchPolicy | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
            "accepts": list(self.accepts),
            **({"extra": self.extra} if self.extra else {}),
            **({"batch": self.batch.to_dict()} if self.batch else {}),
        }

    def accepts_type(self, content_type: str) -> bool:
        base = content_type.split(";", 1)[0].strip().lower()
        for pattern in self.accepts:
            if pattern == "*/*" or pattern == base:
                return True
            if pattern.endswith("/*") and base.startswith(pattern[:-1]):
                return True
        return False


class LoadedModel:
    """A model instance plus what it takes to call it safely."""

    def __init__(self, instance: Any, metadata: ModelMetadata) -> None:
        self.instance = instance
        self.metadata = metadata
        predict = getattr(instance, "predict", None)
        if not callable(predict):
            raise TypeError(f"model {metadata.name!r} has no predict(inputs) method")
        self.is_async = inspect.iscoroutinefunction(predict)
        self._predict: Callable[[Any], Any] = predict
        # Dynamic batching needs both the model's consent (``predict_batch``) and a policy.
        predict_batch = getattr(instance, "predict_batch", None)
        self.batch = metadata.batch if callable(predict_batch) else None
        if metadata.batch is not None and not callable(predict_batch):
            raise TypeError(
                f"model {metadata.name!r} declares `batch:` but has no predict_batch(inputs) "
                "method taking a list of inputs and returning a list of outputs"
            )
        self._predict_batch: Callable[[list[Any]], Any] | None = (
            predict_batch if callable(predict_batch) else None
        )
        self.batch_is_async = inspect.iscoroutinefunction(predict_batch)
        self._validator: jsonschema.protocols.Validator | None = None
        if metadata.input_schema:
            cls = jsonschema.validators.validator_for(metadata.input_schema)
            cls.check_schema(metadata.input_schema)
            self._validator = cls(metadata.input_schema)

    def load(self) -> None:
        loader = getattr(self.instance, "load", None)
        if callable(loader):
            result = loader()
            if inspect.isawaitable(result):
                raise TypeError("load() must be synchronous; do async set-up inside predict")

    def validate(self, inputs: Any) -> None:
        """Check JSON inputs against the model's input schema."""
        if self._validator is None:
            return
        errors = sorted(self._validator.iter_errors(inputs), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            detail = first.message if len(first.message) <= 160 else first.message[:157] + "..."
            raise InvalidInput(
                f"input does not match the schema of model {self.metadata.name!r} at "
                f"{where}: {detail}",
                path=where,
                violations=len(errors),
            )

    def call(self, inputs: Any) -> Any | Awaitable[Any]:
        """Run predict; an async model returns an awaitable, a sync one the result."""
        return self._predict(inputs)

    def call_batch(self, inputs: list[Any]) -> Any | Awaitable[Any]:
        """Run predict_batch on several inputs; only for a model with a batch policy."""
        assert self._predict_batch is not None
        return self._predict_batch(inputs)

    def failure(self, exc: BaseException) -> ModelFailed:
        return ModelFailed(
            f"model {self.metadata.name!r} raised {type(exc).__name__}: {safe_str(exc)}",
            model=self.metadata.name,
            exception=type(exc).__name__,
        )


def encode_output(result: Any) -> tuple[bytes, str]:
    """Body and content type for whatever predict returned."""
    if isinstance(result, FileOutput):
        return result.data, result.content_type
    if isinstance(result, _BINARY):
        return bytes(result), "application/octet-stream"
    return json_bytes(result), JSON_TYPE


JSON_TYPE = "application/json"
_BINARY = (bytes, bytearray, memoryview)  # a tuple: ``bytes | ...`` would build a union per call


_OPTS = orjson.OPT_SERIALIZE_NUMPY
_OPTS_LENIENT = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_bytes(value: Any) -> bytes:
    """JSON as Python's ``json.dumps`` would accept it: non-string keys become strings.

    The fast path is plain orjson; only a value it refuses (say ``{0: [...]}`` from marshmallow's
    list errors) is retried with non-string keys allowed. Raises TypeError for what JSON cannot
    hold; NaN and infinities become ``null`` (JSON has no NaN).
    """
    try:
        return orjson.dumps(value, option=_OPTS, default=_fallback)
    except TypeError:
        pass
    return orjson.dumps(value, option=_OPTS_LENIENT, default=_fallback)  # unchained errors


def _fallback(obj: Any) -> Any:
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"a {type(obj).__name__} is not JSON-serialisable")


def safe_str(value: object, limit: int = 500) -> str:
    """``str(value)``, cut to ``limit`` characters, even if its ``__str__`` raises."""
    try:
        text = str(value)
    except Exception as exc:  # a model's exception type may have a broken __str__
        try:
            text = f"<{type(value).__name__} whose str() raised {type(exc).__name__}>"
        except Exception:
            text = "<unprintable>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
