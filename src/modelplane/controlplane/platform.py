"""The platform process: store, gateway, reconciler and control plane on one event loop.

``Platform(settings).start()`` is what ``modelplane up`` runs; tests start it in-process on a free
port with a temporary data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelplane.allocator import limit_arenas
from modelplane.autoscale.loop import Autoscaler
from modelplane.backends.base import RuntimeBackend
from modelplane.clock import Clock, SystemClock, utc
from modelplane.controlplane.app import create_app
from modelplane.controlplane.bootstrap import (
    ADMIN,
    bootstrap_admin,
    cluster_totals,
    make_backend,
    reservation_book,
    sandbox_for,
    storage_for,
    sweep_dead_writes,
)
from modelplane.controlplane.elector import Elector
from modelplane.controlplane.follower import Follower, LeadOrFollow
from modelplane.controlplane.hooks import BatchHooks, TrainingHolds, TrainTargets, readings
from modelplane.controlplane.objects_front import ObjectsFront
from modelplane.controlplane.reconciler import Reconciler
from modelplane.core.deps import Deps
from modelplane.envs import EnvBuilder, EnvManager
from modelplane.envs.build import find_uv
from modelplane.gateway.asgi import AsgiBridge
from modelplane.gateway.dataplane import DataPlane
from modelplane.gateway.deepaas import PREFIX as DEEPAAS_PREFIX
from modelplane.gateway.deepaas import DeepaasRouter
from modelplane.gateway.http import HttpConnection, HttpLimits, Request, serve_http
from modelplane.gateway.oip import OipFront
from modelplane.gateway.replicas import ReplicaListener
from modelplane.gateway.router import Gateway
from modelplane.gateway.training import TrainingBook
from modelplane.history import History
from modelplane.jobs import BucketWatcher, JobRunner
from modelplane.jobs.batches import BatchRunner
from modelplane.jobs.changes import LocalChanges
from modelplane.logs import LogBook
from modelplane.metrics import Metrics
from modelplane.oscar.front import OscarRunFront
from modelplane.oscar.mounts import MountMirrors
from modelplane.oscar.router import storage_info as oscar_storage_info
from modelplane.oscar.services import records_of
from modelplane.resources.quota import check_job_queue
from modelplane.resources.ratelimit import RateLimiter
from modelplane.security import LOCAL_USER, TokenCache, authenticator
from modelplane.settings import Settings
from modelplane.spec import DeploymentSpec
from modelplane.storage import LocalBucketStore
from modelplane.store import open_store
from modelplane.store.batches import BatchStore
from modelplane.store.jobs import JobStore
from modelplane.store.leases import LeaseStore
from modelplane.store.users import UserStore

IO_THREADS, REMOTE_IO_THREADS = 8, 32  # blocking calls on local disks / over a network


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        backend: RuntimeBackend | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._backend = backend
        self.admin_token: str | None = None
        self.port = settings.port
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._s3: Any = None
        self.sandbox_note: str | None = None
        """Why replicas run unconfined, when they do (shown by ``modelplane up``)."""

    async def start(self) -> None:
        s = self.settings
        limit_arenas()  # before the I/O threads exist: see modelplane.allocator
        # Blocking storage/store calls run in threads. Local ones are short and hold the GIL,
        # so more threads only fight over it (32: a third of the CPU in futex handoffs, 5 ms
        # per job; 8: 2.3 ms). Calls waiting on a network (S3, PostgreSQL) get more.
        remote = s.storage == "s3" or not s.db_url.startswith("sqlite")
        threads = REMOTE_IO_THREADS if remote else IO_THREADS
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="modelplane-io")
        )
        s.data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(s.data_dir, 0o700)
        sandbox = None
        if self._backend is None:
            sandbox, self.sandbox_note = await asyncio.to_thread(sandbox_for, s)
        self.store = await asyncio.to_thread(open_store, s.db_url)
        tokens: TokenCache | None = None
        if s.local:
            await asyncio.to_thread(self.store.ensure_user, LOCAL_USER.user, admin=True)
        else:
            self.admin_token = await asyncio.to_thread(bootstrap_admin, self.store, s.token_file)
            tokens = TokenCache(UserStore(self.store).principal_for, wall=self.clock.wall)
        self.logs = LogBook(s.logs_dir)
        self.metrics = Metrics()
        self.dataplane = DataPlane(
            authenticator(tokens),
            self.metrics,
            queue_limit=s.queue_limit,
            queue_timeout=s.queue_timeout,
            request_timeout=s.request_timeout,
            limiter=RateLimiter(s.rate_limit) if s.rate_limit else None,
            clock=self.clock,
        )
        self.gateway = Gateway(self.dataplane, fallback=lambda r, c: None)
        self.envs = EnvManager(EnvBuilder(s.envs_dir, uv=find_uv(), cache=s.envs_cache))
        backend = self._backend or await make_backend(s, self.logs, self.envs, sandbox)
        self.reconciler = Reconciler(
            self.store,
            backend,
            self.dataplane,
            self.logs,
            self.metrics,
            self.clock,
            cache_dir=s.cache_dir,
            interval=s.reconcile_interval,
            stop_grace=s.stop_grace,
            desired=lambda dep, now: self.autoscaler.desired(dep.spec, now),
        )
        self.reconciler.reservations = await asyncio.to_thread(
            reservation_book, self.store, s, cluster_totals(backend)
        )
        self.autoscaler = Autoscaler(
            self.dataplane,
            self.reconciler,
            self.clock,
            interval=s.autoscale_interval,
            tuning={"stable_window": s.stable_window},
        )
        self.dataplane.on_demand = self.autoscaler.poke
        fallback = self._fallback
        oip = OipFront(self.dataplane, self.reconciler, fallback)
        self.gateway.add_front(oip.prefix, oip.handle)
        # Trainings run on this machine, sandboxed as local replicas are; their reservations
        # are the node's (a cluster backend's book counts the cluster's, not this node's GPUs).
        deployments = self.reconciler.deployments
        train = TrainTargets(deployments, self.envs, s.cache_dir, sandbox)
        book = self.reconciler.reservations
        assert book is not None
        holds = TrainingHolds(deployments, lambda: book) if s.backend == "local" else None
        self.trainings = TrainingBook(
            s.data_dir / "trainings",
            train,
            self.logs.write,
            holds=holds,
            interval=s.reconcile_interval,
        )
        # Before any replica starts: a training that outlived a restart takes its GPUs back.
        self.trainings.resume()
        self.reconciler.on_removed.append(self.trainings.removed)
        self.gateway.add_front(
            DEEPAAS_PREFIX, DeepaasRouter(self.dataplane, trainings=self.trainings)
        )
        self.reconciler.extra_status = self.autoscaler.status
        self.reconciler.on_removed.append(self.autoscaler.forget)
        self.storage = storage_for(s)
        self.jobs = JobStore(self.store, self.clock)
        self.runner = JobRunner(
            self.jobs, self.storage, self.dataplane, self.reconciler, lease=s.job_lease
        )
        self.watcher = BucketWatcher(
            self.jobs,
            self.storage,
            self.reconciler,
            interval=s.watch_interval,
            on_new=lambda name: self.runner.wake(backlog_of=name),
            admit=lambda name, extra: check_job_queue(
                name, self.runner.backlog(name) + extra, s.max_queued_jobs
            ),
            enqueue=lambda jobs: self.deps.enqueuer().submit(jobs),
            changes=LocalChanges(self.storage)
            if isinstance(self.storage, LocalBucketStore)
            else None,
        )
        self.batches = BatchStore(self.store)
        hooks = BatchHooks(s, self.dataplane, self.storage, lambda: self.deps)
        self.batch_runner = BatchRunner(
            self.batches, hooks.submit, hooks.sides, ephemeral=hooks.ephemeral
        )
        self.autoscaler.queued_jobs = self.runner.backlog
        self.reconciler.on_removed.append(self.watcher.forget)
        self.deps = Deps(
            s,
            self.store,
            self.dataplane,
            self.reconciler,
            self.logs,
            self.metrics,
            tokens,
            jobs=self.jobs,
            storage=self.storage,
            runner=self.runner,
            watcher=self.watcher,
            envs=self.envs,
            history=History(keep=s.history_keep),
            batches=self.batches,
            batch_runner=self.batch_runner,
        )
        self.app = create_app(self.deps)
        self.app.state.oscar_storage = oscar_storage_info(s)  # env read once, here
        self.app.state.cluster_info = self.cluster_info
        run = OscarRunFront(
            self.dataplane, records_of(self.deps), fallback, check_user=tokens is not None
        )
        self.gateway.add_front(run.prefix, run.handle)
        objects = ObjectsFront(self.dataplane, self.deps, fallback)
        self.gateway.add_front(objects.prefix, objects.handle)
        # Several platform processes share a PostgreSQL store; SQLite is one process's file.
        self.shared = self.store.engine.dialect.name != "sqlite"
        self.listener = ReplicaListener(
            s.replica_socket,
            self.dataplane.on_hello,
            self.dataplane.on_lost,
            tcp=(s.host, s.replica_port) if self.shared or self.remote_replicas else None,
            advertise=s.advertise_host,
        )
        await self.listener.start()
        if self.remote_replicas:  # replicas on other nodes dial over TCP
            assert self.listener.tcp_address is not None
            # ... and those on this machine over the Unix socket (fewer syscalls, no TCP stack:
            # ~12% of the gateway's CPU per request here): it connects only from here.
            both = f"{self.listener.address},{self.listener.tcp_address}"
            self.reconciler.set_gateway_address(both)
        else:
            self.reconciler.set_gateway_address(self.listener.address)
        self.runner.release_on_start = not self.shared
        await sweep_dead_writes(self.storage, self.shared, self.clock.wall())
        limits = HttpLimits(
            max_body=s.max_body, keepalive_timeout=s.keepalive_timeout, read_timeout=s.read_timeout
        )
        self._server = await serve_http(self.gateway, s.host, s.port, limits)
        self.port = self._server.sockets[0].getsockname()[1]
        self.gateway.fallback = AsgiBridge(self.app, (s.host, self.port))
        self.elector: Elector | None = None
        self.follower: Follower | None = None
        if self.shared:
            await self._join_cluster()
        else:
            await self._lead()
        self._tasks.append(asyncio.create_task(self.runner.run()))
        self._tasks.append(asyncio.create_task(self.watcher.run()))
        if not isinstance(self.storage, LocalBucketStore):  # OSCAR mounts of S3 bucket paths
            mirrors = MountMirrors(self.storage, s.data_dir, interval=s.watch_interval)
            self._tasks.append(asyncio.create_task(mirrors.run()))
        self._tasks.append(asyncio.create_task(self._sample_history()))
        self._tasks.append(asyncio.create_task(self.batch_runner.run()))
        self.dataplane.start_timeouts()

    def _fallback(self, req: Request, conn: HttpConnection) -> None:
        self.gateway.fallback(req, conn)  # the control plane, once the bridge is up

    @property
    def remote_replicas(self) -> bool:
        """Replicas may run on other nodes: they dial the gateway over TCP."""
        return self.settings.backend == "ray"

    # -- several platform processes -------------------------------------------------------------
    async def _join_cluster(self) -> None:
        """Share the store with other platform processes: lead if the lease is free, else
        follow (serve the API and relay predictions to the leader) until it is."""
        s = self.settings
        assert self.listener.tcp_address is not None
        leases = LeaseStore(self.store)
        secret = await asyncio.to_thread(leases.shared_secret, "relay")
        self.dataplane.relay_secret = secret
        self.dataplane.status_of = self.reconciler.status
        self.follower = Follower(self.store, self.dataplane, secret, interval=s.reconcile_interval)
        self.reconciler.passive = self.follower.step
        self.reconciler.remote_status = self.follower.status
        self.runner.deployments = LeadOrFollow(self.reconciler, lambda: self.follower)
        follower = self.follower
        self.elector = Elector(
            leases,
            f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
            self.listener.tcp_address,
            lambda: utc(self.clock),
            ttl=s.lease_ttl,
            on_lead=self._lead,
            on_follow=lambda lease: follower.follow(lease.address if lease else None),
            on_deposed=self._deposed,
        )
        await self.elector.step()  # lead at once if nobody does
        self._tasks.append(asyncio.create_task(self.elector.run()))

    async def _lead(self) -> None:
        """This process runs the reconciler and the autoscaler (the only one that does)."""
        if self.follower is not None:
            await self.follower.stop()
        self.reconciler.passive = None
        self._tasks.append(asyncio.create_task(self.reconciler.run()))
        self._tasks.append(asyncio.create_task(self.autoscaler.run()))
        self.reconciler.wake()

    async def _deposed(self) -> None:
        """Another process took the lease from us (we could not renew it in time): stop our
        replicas now, so two leaders never run them; from here on this process only follows."""
        assert self.elector is not None
        self.elector.eligible = False
        self.autoscaler.close()
        await self.reconciler.close()
        self.reconciler.passive = self.follower.step if self.follower else None

    @property
    def role(self) -> str:
        """``leader``, ``follower``, or ``single`` (SQLite: one process, always in charge)."""
        if self.elector is None:
            return "single"
        return self.elector.role.value

    def cluster_info(self) -> dict[str, Any]:
        leader = self.elector.leader if self.elector else None
        info: dict[str, Any] = {
            "role": self.role,
            "leader": leader.address if leader else None,
            "store": "ok" if self.elector is None or self.elector.store_ok else "unreachable",
        }
        health = getattr(self.reconciler.backend, "health", None)
        if callable(health):  # a cluster backend says whether it still reaches the cluster
            info.update(health())
        return info

    async def _sample_history(self) -> None:
        history, rec = self.deps.history, self.reconciler
        assert history is not None
        while True:
            now = readings(
                rec.deployments, rec.desired, self.clock.now(), self.metrics, self.dataplane
            )
            history.record(self.clock.wall(), now)  # wall time: the charts' x axis
            await asyncio.sleep(self.settings.history_interval)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host
        return f"http://{host}:{self.port}"

    @property
    def owner(self) -> str:
        return LOCAL_USER.user if self.settings.local else ADMIN

    async def ensure_deployment(self, spec: DeploymentSpec) -> bool:
        """Create ``spec`` unless a deployment of that name exists. True if created."""
        if await asyncio.to_thread(self.store.get_deployment, spec.name) is not None:
            return False
        await asyncio.to_thread(
            self.store.create_deployment, spec.name, self.owner, spec.model_dump(mode="json")
        )
        await self.reconciler.sync()
        self.reconciler.wake()
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.trainings.close()
        if self.elector is not None:
            await self.elector.close()  # a follower takes over at once, not after the ttl
        if self.follower is not None:
            await self.follower.stop()
        self.autoscaler.close()
        self.watcher.close()
        await self.batch_runner.close()
        await self.runner.close()
        self.dataplane.stop_timeouts()
        await self.reconciler.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.listener.close()
        self.logs.close()
        self.store.close()
