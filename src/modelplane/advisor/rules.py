"""Which way to serve a model, from what its users' traffic looks like: the seed's rules, pure.

- not a member of the platform: run it on your own cloud (export);
- one-off predictions over a dataset: a dedicated deployment deleted afterwards for a modest
  one, async predictions through a bucket for a larger one, a batch run for a really big one;
- few concurrent requests, close in time, that need low latency: dedicated;
- otherwise serverless: by default, and in particular for many concurrent requests (it scales
  out and back) and for requests spaced out in time (it scales to zero between them).

The numbers behind each option come from the simulator; these rules only pick, and say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BIG_DATASET",
    "FEW_CONCURRENT",
    "MODEST_DATASET",
    "Need",
    "Option",
    "Pattern",
    "Recommendation",
    "recommend",
]

FEW_CONCURRENT = 4
"""At most this many requests at once is "few": a couple of always-on replicas absorb them."""
CLOSE_GAP_SECONDS = 300.0
"""Requests closer than this (the default ``idle_timeout``) are "close in time"."""
MODEST_DATASET = 10_000
"""Up to this many items, a dedicated deployment that is deleted afterwards is simplest."""
BIG_DATASET = 1_000_000
"""Beyond this many items, a batch run: resumable, and no per-item job rows."""


class Pattern(StrEnum):
    steady = "steady"
    bursty = "bursty"
    spaced = "spaced"


class Option(StrEnum):
    serverless = "serverless"
    dedicated = "dedicated"
    oneoff = "dedicated-oneoff"
    async_jobs = "async"
    batch = "batch"
    export = "export"


@dataclass(frozen=True)
class Need:
    """What the user knows about the traffic. ``latency_slo_ms`` is a p99 target."""

    requests_per_hour: float | None = None
    peak_concurrency: int | None = None
    pattern: Pattern | None = None
    latency_slo_ms: float | None = None
    member: bool = True
    dataset_size: int | None = None

    @property
    def mean_gap_seconds(self) -> float | None:
        if not self.requests_per_hour:
            return None
        return 3600.0 / self.requests_per_hour


@dataclass(frozen=True)
class Recommendation:
    option: Option
    rule: str
    reason: str


def recommend(need: Need, cold_start_seconds: float) -> Recommendation:
    """Pick the option the seed's rules give for ``need``.

    ``cold_start_seconds`` is the model's measured time from "start a replica" to its first
    answer: a latency target below it is one a cold start would break, i.e. "low latency".
    """
    if not need.member:
        return Recommendation(
            Option.export,
            "not-member",
            "you are not a member of this platform: export the deployment and run it on your "
            "own cloud (Knative or KServe for serverless, a Kubernetes Deployment or a Nomad job "
            "for dedicated, an FDL file for OSCAR)",
        )
    if need.dataset_size is not None:
        n = need.dataset_size
        if n > BIG_DATASET:
            return Recommendation(
                Option.batch,
                "big-dataset",
                f"{n:,} items is a really big dataset: a batch run reads it from a folder or "
                "bucket and writes results beside it, resumable after an interruption",
            )
        if n > MODEST_DATASET:
            return Recommendation(
                Option.async_jobs,
                "dataset-async",
                f"{n:,} one-off predictions: upload them to an input bucket and collect the "
                "results from the output bucket; the deployment scales up for the backlog and "
                "back to zero when it is done",
            )
        return Recommendation(
            Option.oneoff,
            "dataset-oneoff",
            f"{n:,} one-off predictions: a dedicated deployment (with a GPU if the model uses "
            "one) that you delete afterwards finishes them fastest with the least to set up",
        )
    few = need.peak_concurrency is not None and need.peak_concurrency <= FEW_CONCURRENT
    gap = need.mean_gap_seconds
    close = need.pattern is not Pattern.spaced and gap is not None and gap < CLOSE_GAP_SECONDS
    slo = need.latency_slo_ms
    low_latency = slo is not None and slo / 1000.0 < cold_start_seconds
    if few and close and low_latency:
        return Recommendation(
            Option.dedicated,
            "few-close-low-latency",
            f"few concurrent requests (at most {need.peak_concurrency}), close in time (one "
            f"every {gap:.0f} s on average), with a {slo:g} ms target that a cold start "
            f"({cold_start_seconds * 1000:.0f} ms) would break: always-on dedicated replicas",
        )
    peak = need.peak_concurrency
    if peak is not None and peak > FEW_CONCURRENT:
        return Recommendation(
            Option.serverless,
            "many-concurrent",
            f"many concurrent requests (up to {peak}): serverless scales out for them and "
            "back down after",
        )
    if need.pattern is Pattern.spaced or (gap is not None and gap >= CLOSE_GAP_SECONDS):
        return Recommendation(
            Option.serverless,
            "spaced",
            "requests spaced out in time: serverless scales to zero between them, so replicas "
            "run only while there is work",
        )
    return Recommendation(
        Option.serverless,
        "default",
        "serverless by default: it follows the traffic, from zero to as many replicas as the "
        "load needs",
    )
