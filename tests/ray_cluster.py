"""A Ray cluster of separate node processes on this machine, loopback only: a head with no
CPUs (it trains nothing) and worker nodes of one CPU each, every worker with its own
scratch folder ($MANN_SCRATCH in its environment) that the driver is never told about.
For the cluster tests and scripts/ray-overhead."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ray
from ray.cluster_utils import Cluster

from mann.sweep.ray_executor import SCRATCH_ENV

# A private Ray folder (short: Ray's socket paths must fit 107 bytes), so that neither this
# cluster nor another user's `ray.init()` on the machine finds the other; and 127.0.0.1 kept
# as it is (Ray otherwise swaps it for the machine's network address when it connects).
ENVIRONMENT = {"RAY_TMPDIR": None, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ADDRESS": None}


class LocalCluster:
    """The nodes, and each worker node's scratch folder."""

    def __init__(self, root: Path):
        self.root = root
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
            # A killed node is declared dead within seconds, not Ray's default half minute.
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 5},
        })
        self.scratch: dict = {}  # node → its scratch folder
        self.added = 0

    @property
    def address(self) -> str:
        return self.cluster.address

    def workers(self, count: int) -> list:
        """At least ``count`` live worker nodes (adding some where nodes were removed)."""
        while len(self.cluster.worker_nodes) < count:
            self.added += 1
            scratch = self.root / f"node{self.added}-scratch"
            node = self.cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1",
                                         env_vars={SCRATCH_ENV: str(scratch)})
            self.scratch[node] = scratch
        self.cluster.wait_for_nodes()
        return list(self.cluster.worker_nodes)

    def node_running(self, cell_id: str):
        """The live worker whose scratch folder holds an attempt of the cell, or None."""
        for node in list(self.cluster.worker_nodes):
            if list(self.scratch[node].glob(f"{cell_id}-*")):
                return node
        return None

    def remove(self, node) -> None:
        """Kill the node's processes at once, as a machine that dies."""
        self.cluster.remove_node(node, allow_graceful=False)


@contextmanager
def local_cluster(workers: int = 2) -> Iterator[LocalCluster]:
    """A head and ``workers`` worker nodes, all stopped (and their folders removed) on exit."""
    root = Path(tempfile.mkdtemp(prefix="mrc-", dir="/tmp"))
    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    saved_flag = ray._private.ray_constants.ENABLE_RAY_CLUSTER
    for name, value in {**ENVIRONMENT, "RAY_TMPDIR": str(root)}.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False  # read at import, which may be past
    cluster = None
    try:
        cluster = LocalCluster(root)
        cluster.workers(workers)
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.cluster.shutdown()
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)
