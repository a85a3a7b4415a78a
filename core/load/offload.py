"""KV offload tiers: CPU memory and local SSD behind device memory (vLLM's KV offloading connector, LMCache,
SGLang's hierarchical cache, TensorRT-LLM's host cache).

Capacity: a tier of G GB holds G 1e9 / (b d) tokens, b the KV bytes per token on one device and d the devices
of a replica (each holds its share of every token).
Reload: the devices copy their shares in parallel over their own host links (catalogs/hardware `host_link`:
PCIe generation and lanes, NVLink-C2C on Grace systems), so one token takes b / B_link seconds; the SSD tier
reads a replica's whole token b d from one drive (catalogs/offload.yaml) and then crosses the host link:
b d / B_ssd + b / B_link.
A cached prefix of c tokens found in a tier is reloaded when c * seconds_per_token is below the time to
recompute it (the prefill of c tokens), else recomputed (`reload_or_recompute`).
Unified memory (Apple silicon, DGX Spark's GB10, Jetson, APUs, CPUs: `unified_memory`): the KV cache already lives
in host memory, so a CPU tier is refused (give the memory to the KV cache instead); a local-SSD tier reads straight
into that memory, b d / B_ssd a token, with no host-link hop.
"""

from __future__ import annotations

from pydantic import Field

from llmcap.catalog.loader import catalog_file
from llmcap.catalog.schema import Device, Frozen, Sourced
from llmcap.load.prefix_cache import Tier, reload_or_recompute
from llmcap.load.rate_types import LoadError

GB = 1e9
__all__ = ["offload_gb", "offload_tiers", "reload_or_recompute", "tier_tokens", "host_link_gbps", "unified_memory"]

UNIFIED_KINDS = ("apple_soc", "edge", "cpu")
OFFLOAD_FILE = "offload.yaml"


class SsdTier(Sourced):
    name: str
    read_gbps: float = Field(gt=0)


class OffloadCatalog(Frozen):
    """catalogs/offload.yaml: the local-SSD tier (the CPU tier's link is each device's host_link)."""

    ssd: SsdTier


def ssd_spec() -> SsdTier:
    """The local-SSD tier of catalogs/offload.yaml."""
    return catalog_file(OFFLOAD_FILE, OffloadCatalog.model_validate, LoadError).ssd


def host_link_gbps(device: Device) -> tuple[float, str] | None:
    """GB/s per direction between the device and host memory, and the link's name: the catalog's host_link,
    else a PCIe-only card's scale-up link (the same PCIe slot); None when the catalog has neither."""
    if device.host_link is not None:
        return device.host_link.gbps_per_direction, device.host_link.name
    up = device.scaleup
    if up is not None and up.gbps_per_direction and up.name.lower().startswith("pcie"):
        return up.gbps_per_direction, up.name
    return None


def unified_memory(device: Device) -> bool:
    """True where the device's memory is the host's (no separate CPU-memory tier to offload to)."""
    return device.kind in UNIFIED_KINDS or bool(device.unified_memory)


def offload_gb(device: Device, cpu_gb: float, ssd_gb: float) -> float:
    """GB of offload tiers the device can use: both tiers over a catalogued host link, only the SSD on unified
    memory, none where the catalog has no host link."""
    if unified_memory(device):
        return max(ssd_gb, 0.0)
    return max(cpu_gb, 0.0) + max(ssd_gb, 0.0) if host_link_gbps(device) is not None else 0.0


def tier_tokens(size_gb: float, kv_bytes_per_token_per_device: float, devices: int) -> float:
    """Tokens a tier of `size_gb` holds for a replica of `devices` devices."""
    return size_gb * GB / (kv_bytes_per_token_per_device * devices)


def offload_tiers(
    device: Device, cpu_gb: float, ssd_gb: float, kv_bytes_per_token_per_device: float, devices: int
) -> tuple[tuple[Tier, ...], list[str]]:
    """The offload tiers of a replica and notes (LoadError when a tier's link is not in the catalog)."""
    if cpu_gb <= 0 and ssd_gb <= 0:
        return (), []
    b = kv_bytes_per_token_per_device
    if unified_memory(device):
        return _unified_tiers(device, cpu_gb, ssd_gb, b, devices)
    link = host_link_gbps(device)
    if link is None:
        raise LoadError(
            f"--kv-offload: the hardware catalog has no host link (PCIe, NVLink-C2C) for {device.name}, so a reload "
            "time cannot be computed; choose another device or leave the offload tier out"
        )
    gbps, name = link
    tiers: list[Tier] = []
    notes = [f"KV offload over {name} ({gbps:g} GB/s per direction per device, catalogs/hardware host_link)"]
    if cpu_gb > 0:
        tiers.append(Tier("cpu", tier_tokens(cpu_gb, b, devices), b / (gbps * GB)))
    if ssd_gb > 0:
        ssd = ssd_spec()
        read = ssd.read_gbps
        tiers.append(Tier("ssd", tier_tokens(ssd_gb, b, devices), b * devices / (read * GB) + b / (gbps * GB)))
        notes.append(f"SSD tier read at {read:g} GB/s ({ssd.name}, catalogs/offload.yaml, estimated)")
    return tuple(tiers), notes


def _unified_tiers(
    device: Device, cpu_gb: float, ssd_gb: float, b: float, devices: int
) -> tuple[tuple[Tier, ...], list[str]]:
    """The SSD tier of a unified-memory device (a CPU tier is refused: it would be the KV cache's own memory)."""
    if cpu_gb > 0:
        raise LoadError(
            f"--kv-offload cpu: {device.name} has unified memory, so the KV cache already lives in host memory and a "
            "CPU tier adds nothing; give that memory to the KV cache (or use an ssd tier only)"
        )
    ssd = ssd_spec()
    tier = Tier("ssd", tier_tokens(ssd_gb, b, devices), b * devices / (ssd.read_gbps * GB))
    return (tier,), [f"{device.name} has unified memory: the SSD tier reads straight into it at {ssd.read_gbps:g} "
                     f"GB/s ({ssd.name}, catalogs/offload.yaml, estimated)"]
