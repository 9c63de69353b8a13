"""Warm templates on a Ray cluster: one per deployment generation on every node that could hold
one of its replicas, each a :class:`~modelplane.backends.ray.host.TemplateHost` actor pinned to
its node (no CPU of its own: it only forks).

``ensure`` is called with the alive nodes whenever the backend learns them (deploy, and every
health probe), so a template lost with its node is rebuilt on the nodes that are left or join.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from modelplane.backends.base import LogLine
from modelplane.backends.ray.placement import NodeInfo, fits
from modelplane.spec import DeploymentSpec


def template_key(spec: DeploymentSpec) -> str:
    return spec.model_dump_json()


@dataclass
class NodeTemplate:
    node_id: str
    actor: Any
    ready: bool = False
    pid: int | None = None
    failed: str | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the template is ready, failed or lost."""


class NodeTemplates:
    def __init__(self, api: Any, log: LogLine, *, start_timeout: float = 120.0) -> None:
        self.api = api
        self._log = log
        self._start_timeout = start_timeout
        self._specs: dict[str, DeploymentSpec] = {}
        self._on: dict[str, dict[str, NodeTemplate]] = {}

    def want(self, spec: DeploymentSpec) -> str:
        """Keep warm templates of ``spec`` from now on; its key."""
        key = template_key(spec)
        if spec.scale.warm_template:
            self._specs[key] = spec
        return key

    def ensure(self, nodes: list[NodeInfo]) -> list[NodeTemplate]:
        """Start the templates missing on ``nodes``; the ones it started."""
        started = []
        for key, spec in self._specs.items():
            on = self._on.setdefault(key, {})
            for node in nodes:
                if node.node_id in on or not fits(spec, node):
                    continue
                actor = self.api.create_template(f"template-{spec.name}", node.node_id)
                entry = NodeTemplate(node.node_id, actor)
                on[node.node_id] = entry
                task = asyncio.create_task(self._run(key, spec, entry, node))
                entry.tasks.add(task)
                task.add_done_callback(entry.tasks.discard)
                started.append(entry)
        return started

    async def _run(self, key: str, spec: DeploymentSpec, entry: NodeTemplate, node: Any) -> None:
        where = f"node {node.address} ({node.node_id[:12]})"
        try:
            env = {**spec.env, "PYTHONUNBUFFERED": "1"}
            failed = await asyncio.wait_for(
                entry.actor.start.remote(spec, env), self._start_timeout
            )
            if failed is not None:
                entry.failed = failed
                entry.settled.set()
                self._log(spec.name, "platform", f"warm template on {where} unavailable: {failed}")
                return  # replicas on that node start as fresh interpreters
            entry.pid = int((await entry.actor.where.remote())["pid"])
            entry.ready = True
            entry.settled.set()
            self._log(spec.name, "platform", f"warm template ready on {where}")
            why = await entry.actor.until_lost.remote()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            entry.settled.set()
        if self._on.get(key, {}).get(entry.node_id) is entry:
            del self._on[key][entry.node_id]  # the next ensure() rebuilds it where it can
            self._log(spec.name, "platform", f"warm template on {where} lost ({why})")
        self.api.kill(entry.actor)

    def ready_on(self, key: str, node_id: str) -> NodeTemplate | None:
        entry = self._on.get(key, {}).get(node_id)
        return entry if entry is not None and entry.ready else None

    def ready_nodes(self, key: str) -> set[str]:
        return {n for n, e in self._on.get(key, {}).items() if e.ready}

    def placed(self) -> dict[str, list[str]]:
        """Deployment name -> the nodes its ready templates are on (for tests and status)."""
        out: dict[str, list[str]] = {}
        for key, on in self._on.items():
            spec = self._specs.get(key)
            if spec is not None:
                out.setdefault(spec.name, []).extend(sorted(n for n, e in on.items() if e.ready))
        return out

    async def release(self, deployment: str, keep: DeploymentSpec | None = None) -> None:
        keep_key = template_key(keep) if keep is not None else None
        for key, spec in list(self._specs.items()):
            if spec.name == deployment and key != keep_key:
                del self._specs[key]
                await self._drop(self._on.pop(key, {}))

    async def _drop(self, on: dict[str, NodeTemplate]) -> None:
        tasks = []
        for entry in on.values():
            self.api.kill(entry.actor)
            tasks += list(entry.tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        self._specs.clear()
        for key in list(self._on):
            await self._drop(self._on.pop(key))
