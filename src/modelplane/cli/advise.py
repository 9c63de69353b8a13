"""``modelplane advise``: which way to serve a model, with simulated numbers for every option.

With ``--deployment NAME`` the platform answers from that deployment's recorded history
(``POST /api/v1/advise``). With ``--model FOLDER`` the model is measured first by a short probe on
a throwaway platform started here (temporary folder, loopback, local mode): one cold start and a
few warm predictions; then the advice is computed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from modelplane.advisor import Pattern, advise
from modelplane.advisor.measure import probe
from modelplane.advisor.request import AdviseRequest, GivenCosts
from modelplane.advisor.traffic import parse_trace
from modelplane.cli.common import TokenOpt, UrlOpt, client_for, err, friendly, out
from modelplane.client import Client
from modelplane.errors import InvalidInput, ModelplaneError
from modelplane.spec import ModelRef, Resources

app = typer.Typer()


@app.command("advise")
@friendly
def advise_command(
    model: Annotated[
        Path | None, typer.Option("--model", help="a model folder: measured by a short probe")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="a deployment: costs from its history")
    ] = None,
    requests_per_hour: Annotated[
        float | None, typer.Option("--requests-per-hour", help="expected requests per hour")
    ] = None,
    peak_concurrency: Annotated[
        int | None, typer.Option("--peak-concurrency", help="most requests at the same time")
    ] = None,
    pattern: Annotated[
        Pattern | None, typer.Option("--pattern", help="steady, bursty or spaced")
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option("--trace", help="CSV or JSON of request timestamps instead of a rate"),
    ] = None,
    latency_slo_ms: Annotated[
        float | None, typer.Option("--latency-slo-ms", help="p99 latency target (ms)")
    ] = None,
    not_member: Annotated[
        bool, typer.Option("--not-member", help="you are not a member of this platform")
    ] = False,
    dataset_size: Annotated[
        int | None, typer.Option("--dataset-size", help="items, for one-off predictions")
    ] = None,
    sample: Annotated[
        Path | None, typer.Option("--sample", help="a JSON request body for the probe")
    ] = None,
    cpu: Annotated[float, typer.Option(help="cores per replica (for --model)")] = 1.0,
    gpu: Annotated[int, typer.Option(help="GPUs per replica (for --model)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="draw the simulated day (.png or .svg)")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Recommend serverless, dedicated, async jobs, a batch run or your own cloud — with the
    simulated latency, cold starts and replica-hours of each."""
    if (model is None) == (deployment is None):
        raise InvalidInput(
            "give --model FOLDER (measured by a probe) or --deployment NAME (its history)"
        )
    if plot is not None:
        from modelplane.advisor.plot import check

        check(plot)
    times = None
    if trace is not None:
        try:
            data = trace.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read the trace {trace}: {exc.strerror}") from None
        times = parse_trace(data, trace.name)
    body: dict[str, Any] = {
        "requests_per_hour": requests_per_hour,
        "peak_concurrency": peak_concurrency,
        "pattern": pattern.value if pattern else None,
        "trace": times,
        "latency_slo_ms": latency_slo_ms,
        "member": not not_member,
        "dataset_size": dataset_size,
    }
    if deployment is not None:
        body["deployment"] = deployment
        with client_for(url, token) as client:
            advice = client._request("POST", "/api/v1/advise", json=_strip(body)).json()
    else:
        assert model is not None
        folder = model.expanduser().resolve()
        if not folder.is_dir():
            raise InvalidInput(f"--model {model}: not a folder")
        resources = Resources(cpu=cpu, gpu=gpu)
        payload = _read_sample(sample)
        started = time.perf_counter()
        with (
            out.status("measuring the model: starting a throwaway platform") as status,
            _throwaway_platform() as client,
        ):
            costs = probe(
                client,
                str(folder),
                body=payload,
                resources=resources,
                progress=lambda msg: status.update(f"measuring the model: {msg}"),
            )
        measured = time.perf_counter() - started
        given = GivenCosts(
            load_seconds=costs.load_seconds,
            start_overhead_seconds=costs.start_overhead,
            service_seconds=list(costs.service.samples),
            hop_seconds=list(costs.hop.samples) if costs.hop is not None else None,
        )
        request = AdviseRequest.model_validate(
            {**_strip(body), "costs": given.model_dump(), "resources": resources.model_dump()}
        )
        name = _slug(folder.name)
        question = request.question(default_name=name, model=ModelRef(path=str(folder)))
        t0 = time.perf_counter()
        with out.status("simulating every option"):
            result = advise(question, costs)
        advice = result.to_dict()
        advice["costs"]["notes"] = list(costs.notes)
        advice["timing"] = {
            "probe_seconds": round(measured, 3),
            "simulation_seconds": round(time.perf_counter() - t0, 3),
        }
    if plot is not None:
        from modelplane.advisor.plot import render

        render(advice, plot)
    if as_json:
        out.print_json(json.dumps(advice))
        return
    show(advice)
    if plot is not None:
        out.print(f"plot written to [bold]{plot}[/]")


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _read_sample(sample: Path | None) -> Any:
    if sample is None:
        return None
    try:
        return json.loads(sample.read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read --sample {sample}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--sample {sample} is not JSON: {exc}") from None


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return (slug or "my-model")[:63].strip("-") or "my-model"


# -- output -------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:,.0f}" if value >= 100 else f"{value:.1f}")
    )


def show(advice: dict[str, Any]) -> None:
    rec = advice["recommendation"]
    costs = advice["costs"]
    out.print(
        Panel(
            f"[bold green]{rec['option']}[/]\n{rec['reason']}",
            title="recommended",
            expand=False,
        )
    )
    out.print(
        f"measured ({costs['source']}): load {costs['load_seconds'] * 1000:.0f} ms, cold-start "
        f"overhead {costs['start_overhead_seconds'] * 1000:.0f} ms, service p50 "
        f"{costs['service_seconds_p50'] * 1000:.1f} ms / p99 "
        f"{costs['service_seconds_p99'] * 1000:.1f} ms"
        + (
            ""
            if costs.get("hop_seconds_p50") is None
            else f", platform hop p50 {costs['hop_seconds_p50'] * 1000:.1f} ms / p99 "
            f"{costs['hop_seconds_p99'] * 1000:.1f} ms"
        )
    )
    for note in costs.get("notes") or []:
        out.print(f"  [dim]{note}[/]")
    traffic = advice["traffic"]
    if "simulated_seconds" in traffic:
        out.print(
            f"simulated {traffic['requests']:,} requests over "
            f"{traffic['simulated_seconds'] / 3600:.2f} h ({traffic['source']}), per-day figures "
            f"x{traffic['scaled_to_day_by']:g}"
        )
    dataset = "dataset_size" in traffic
    table = Table(title="options")
    table.add_column("option")
    table.add_column("settings")
    if dataset:
        table.add_column("finishes in", justify="right")
    else:
        table.add_column("p50 ms", justify="right")
        table.add_column("p99 ms", justify="right")
        table.add_column("cold starts", justify="right")
    per = " (run)" if dataset else "/day"
    table.add_column(f"replica-h{per}", justify="right")
    table.add_column(f"GPU-h{per}", justify="right")
    table.add_column("p99 target")
    for o in advice["options"]:
        slo = (
            "-"
            if o["meets_slo"] is None
            else (
                "[green]met[/]"
                if o["meets_slo"]
                else f"[red]missed by {_ms(o['slo_miss_ms'])} ms[/]"
            )
        )
        name = o["option"] + (" *" if o["option"] == rec["option"] else "")
        cells = [name, o["title"]]
        if dataset:
            cells.append(f"{o['makespan_hours'] * 60:.1f} min")
        else:
            share = o["cold_start_share"]
            cells += [_ms(o["p50_ms"]), _ms(o["p99_ms"]), "-" if share is None else f"{share:.1%}"]
        cells += [f"{o['replica_hours_per_day']:.2f}", f"{o['gpu_hours_per_day']:.2f}", slo]
        table.add_row(*cells)
    out.print(table)
    for o in advice["options"]:
        for note in o["notes"]:
            out.print(f"  [yellow]{o['option']}:[/] {note}")
    chosen = next((o for o in advice["options"] if o["option"] == rec["option"]), None)
    if chosen is not None:
        out.print(
            f"\nto deploy it, save this as {chosen['spec']['name']}.yaml and run "
            f"`modelplane deploy {chosen['spec']['name']}.yaml`:"
        )
        out.print(Syntax(chosen["snippet"], "yaml"))
    timing = advice.get("timing")
    if timing:
        out.print(
            f"[dim]probe {timing['probe_seconds']:.1f} s, simulation "
            f"{timing['simulation_seconds']:.1f} s[/]"
        )


# -- the probe's platform -----------------------------------------------------------------------


@contextlib.contextmanager
def _throwaway_platform() -> Iterator[Client]:
    """A platform in local mode on a free loopback port, in a thread, with a temporary data
    folder; stopped and removed on exit."""
    from modelplane.controlplane.platform import Platform
    from modelplane.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="modelplane-advise-"))
    settings = Settings(data_dir=tmp, port=0, local=True, reconcile_interval=0.1, stop_grace=2.0)
    platform = Platform(settings)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(platform.start())
        except BaseException as exc:  # reported in the caller's thread
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="advise-probe-platform", daemon=True)
    thread.start()
    started.wait(60)
    try:
        if failure or not started.is_set():
            raise ModelplaneError(f"could not start a platform for the probe: {failure[:1]}")
        client = Client(url=platform.url, token="")
        try:
            yield client
        finally:
            client.close()
    finally:
        if not failure and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(platform.stop(), loop).result(60)
            except Exception as exc:  # the advice is still good; say what was left behind
                err.print(f"[yellow]warning:[/] the probe's platform did not stop cleanly: {exc}")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
        if not thread.is_alive():
            loop.close()
        shutil.rmtree(tmp, ignore_errors=True)
