"""Asynchronous predictions: bucket uploads become durable jobs, results land in a bucket."""

from __future__ import annotations

from modelplane.jobs.keys import output_key
from modelplane.jobs.runner import JobRunner
from modelplane.jobs.watcher import BucketWatcher

__all__ = ["BucketWatcher", "JobRunner", "output_key"]
