"""Writing a finished job's results where its deployment says.

Bucket-to-bucket deployments get one object per job at ``<input key>.<ext>``
(:func:`~modelplane.jobs.keys.output_key`). Deployments with storage paths (OSCAR's layout) get
every file the job left, under its own name, in each output path whose filters it passes; the
replica answered them as one bundle (:mod:`modelplane.fronts.files`).
"""

from __future__ import annotations

import mimetypes

from modelplane.fronts.files import BUNDLE, unpack
from modelplane.jobs.keys import output_key
from modelplane.spec import DeploymentSpec
from modelplane.spec.paths import destinations, safe_name
from modelplane.storage import BucketStore

Output = tuple[str, str, bytes, str]
"""One object a job's results make: bucket, key, content, content type."""


def store_results(
    storage: BucketStore,
    spec: DeploymentSpec | None,
    output_bucket: str,
    input_key: str,
    content_type: str,
    body: bytes,
) -> str:
    """Write the results; returns the key recorded on the job (the first one written, '' if
    the job left no file)."""
    key, outputs = result_objects(spec, output_bucket, input_key, content_type, body)
    for bucket, name, data, ctype in outputs:
        storage.put(bucket, name, data, ctype)
    return key


def result_objects(
    spec: DeploymentSpec | None,
    output_bucket: str,
    input_key: str,
    content_type: str,
    body: bytes,
) -> tuple[str, list[Output]]:
    """What :func:`store_results` writes, not written: the key recorded on the job and the
    objects, in order."""
    if spec is None or spec.files is None or content_type.split(";", 1)[0].strip() != BUNDLE:
        key = output_key(input_key, content_type)
        return key, [(output_bucket, key, body, content_type)]
    first = ""
    outputs: list[Output] = []
    for raw, data in unpack(body):
        name = safe_name(raw)
        if name is None:
            continue  # a name that would leave the output folder is not written anywhere
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        for bucket, key in destinations(spec.files.outputs, name):
            outputs.append((bucket, key, data, ctype))
            first = first or key
    return first, outputs
