"""Ray, for the stages that run on a cluster (``clean.engine: ray``, ``score --ray``): one place
that imports it with a clear error and joins (or starts) the cluster."""

from __future__ import annotations

from typing import Any

from nlpforge.errors import StageError


def ray_module(what: str) -> Any:
    try:
        import ray
    except ImportError:
        raise StageError(f"{what} needs Ray: pip install 'nlpforge[ray]'") from None
    return ray


def connect(address: str | None, what: str) -> Any:
    """Join ``address`` (a running cluster: auto, ray://HOST:10001), or start a local cluster on
    this machine's CPUs; a cluster this process already joined is reused. Returns the module."""
    ray = ray_module(what)
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return ray
