"""The devices training runs on: discovery, the data-parallel mesh, multi-host start, a description.

One process drives all its local devices; several hosts join through `jax.distributed` (one process
per host, `--coordinator HOST:PORT --num-processes N --process-id I`), after which `jax.devices()`
lists every host's devices and one mesh spans them all. `init_distributed` must run before anything
touches a JAX backend, so this module imports JAX only inside its functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.errors import FacepairError


@dataclass(frozen=True)
class DeviceInfo:
    platform: str          # cpu, gpu, tpu
    kind: str              # e.g. "NVIDIA H200", "cpu"
    local: int             # devices of this process
    total: int             # devices of every process
    processes: int
    process_index: int

    def describe(self) -> str:
        """'trains on 1× NVIDIA H200 (gpu, bf16)' / 'trains on the CPU (2 cores, fp32)' / '…across 2 processes'."""
        from core.jaxmodels.precision import short_name

        precision = short_name(self.platform)
        if precision == "bf16":
            precision = "bf16 compute, fp32 weights"
        if self.platform == "cpu":
            cores = os.cpu_count() or 1
            what = f"the CPU ({cores} core{'s' if cores != 1 else ''}, {precision})"
            if self.total > 1:
                what = f"{self.total} CPU devices ({cores} cores here, {precision})"
        else:
            what = f"{self.total}× {self.kind} ({self.platform}, {precision})"
        if self.processes > 1:
            what += f" across {self.processes} processes (this is process {self.process_index})"
        return f"trains on {what}"


def init_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """Join a multi-process run when asked to; returns True when distributed. Call before any JAX use."""
    if not coordinator and not num_processes and process_id is None:
        return False
    if not coordinator or num_processes is None or process_id is None:
        raise FacepairError("a multi-host run needs all three of --coordinator HOST:PORT, --num-processes N "
                            "and --process-id I")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise FacepairError(f"--process-id {process_id} must be in 0..{num_processes - 1} (--num-processes {num_processes})")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise FacepairError(f"--coordinator {coordinator!r} must be HOST:PORT (e.g. 10.0.0.1:6123)")
    import jax

    if getattr(jax.distributed, "is_initialized", lambda: False)():
        return True
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=120,
                                   heartbeat_timeout_seconds=30)
    except Exception as e:  # the messages from the coordination service are long; keep the gist
        raise FacepairError(f"could not join the multi-host run at {coordinator} as process {process_id} of "
                            f"{num_processes}: {str(e).splitlines()[0][:300]}") from e
    return True


def device_info() -> DeviceInfo:
    import jax

    devs = jax.devices()
    local = jax.local_devices()
    d = devs[0]
    kind = getattr(d, "device_kind", d.platform) or d.platform
    return DeviceInfo(platform=d.platform, kind=kind, local=len(local), total=len(devs),
                      processes=jax.process_count(), process_index=jax.process_index())


def enable_compile_cache() -> str | None:
    """Keep compiled steps on disk so a resumed or repeated run skips the compile (tens of seconds).

    The folder: $FACEPAIR_JAX_CACHE, else the user cache folder's facepair/jax (platformdirs; on
    Linux $XDG_CACHE_HOME/facepair/jax, ~/.cache/… by default); an empty
    $FACEPAIR_JAX_CACHE turns it off, and a cache the user configured for JAX is left alone."""
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    path = os.environ.get("FACEPAIR_JAX_CACHE")
    if path is None:
        import platformdirs

        path = os.path.join(platformdirs.user_cache_dir("facepair", appauthor=False), "jax")
    if not path:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return path


def device_memory_bytes() -> int | None:
    """Memory of one local device, or None when JAX does not say (CPUs)."""
    import jax

    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:
        return None
    return stats.get("bytes_limit") or None
