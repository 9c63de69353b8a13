"""Each recommendation of the seed is one case."""

from __future__ import annotations

from modelplane.advisor.rules import Need, Option, Pattern, recommend

COLD = 0.6  # seconds from "start a replica" to its first answer


def test_serverless_by_default() -> None:
    rec = recommend(Need(requests_per_hour=600, pattern=Pattern.steady), COLD)
    assert (rec.option, rec.rule) == (Option.serverless, "default")


def test_serverless_for_many_concurrent_requests() -> None:
    rec = recommend(Need(requests_per_hour=3600, peak_concurrency=50, latency_slo_ms=200), COLD)
    assert (rec.option, rec.rule) == (Option.serverless, "many-concurrent")
    assert "50" in rec.reason


def test_serverless_for_requests_spaced_out_in_time() -> None:
    rec = recommend(Need(requests_per_hour=4, pattern=Pattern.spaced), COLD)
    assert (rec.option, rec.rule) == (Option.serverless, "spaced")
    # spaced by their rate alone, whatever the pattern says
    rec = recommend(Need(requests_per_hour=6, peak_concurrency=1), COLD)
    assert rec.rule == "spaced"


def test_dedicated_for_few_concurrent_close_requests_that_need_low_latency() -> None:
    need = Need(requests_per_hour=1200, peak_concurrency=2, latency_slo_ms=100)
    rec = recommend(need, COLD)
    assert (rec.option, rec.rule) == (Option.dedicated, "few-close-low-latency")


def test_not_dedicated_when_the_target_tolerates_a_cold_start() -> None:
    need = Need(requests_per_hour=1200, peak_concurrency=2, latency_slo_ms=2000)
    assert recommend(need, COLD).option is Option.serverless


def test_not_dedicated_when_requests_are_spaced_even_if_few_and_latency_sensitive() -> None:
    need = Need(requests_per_hour=2, peak_concurrency=1, latency_slo_ms=50, pattern=Pattern.spaced)
    assert recommend(need, COLD).rule == "spaced"


def test_your_own_cloud_for_non_members() -> None:
    need = Need(requests_per_hour=1200, peak_concurrency=2, latency_slo_ms=100, member=False)
    rec = recommend(need, COLD)
    assert (rec.option, rec.rule) == (Option.export, "not-member")


def test_one_off_dataset_on_a_dedicated_deployment_deleted_afterwards() -> None:
    rec = recommend(Need(dataset_size=5_000), COLD)
    assert (rec.option, rec.rule) == (Option.oneoff, "dataset-oneoff")
    assert "delete" in rec.reason


def test_one_off_dataset_as_async_predictions_through_a_bucket() -> None:
    rec = recommend(Need(dataset_size=200_000), COLD)
    assert (rec.option, rec.rule) == (Option.async_jobs, "dataset-async")
    assert "bucket" in rec.reason


def test_really_big_dataset_as_a_batch_run() -> None:
    rec = recommend(Need(dataset_size=5_000_000), COLD)
    assert (rec.option, rec.rule) == (Option.batch, "big-dataset")
