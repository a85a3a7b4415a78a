"""Host links of the hardware catalog (KV offload to CPU memory, llmcap.load.offload): every link is sourced, PCIe
links agree with their generation and lane count, the devices added for issue 15 offload, and unified-memory
devices refuse a CPU tier but take an SSD tier."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from llmcap.catalog.loader import load_catalog
from llmcap.load.offload import host_link_gbps, offload_gb, offload_tiers, ssd_spec, unified_memory
from llmcap.load.rate_types import LoadError

# PCIe transfer rate per lane in GT/s by generation (PCI-SIG): Gen3 8, Gen4 16, Gen5 32; 128b/130b encoding
PCIE_GT = {3: 8.0, 4: 16.0, 5: 32.0}
B = 131_072.0  # KV bytes per token of Llama-3.1-8B with a bf16 cache (32 x 8 x 128 x 2 x 2)


def _devices():
    return list(load_catalog().hardware.values())


def test_every_host_link_names_its_source():
    linked = [d for d in _devices() if d.host_link is not None]
    assert len(linked) >= 16
    missing = [d.id for d in linked if len(d.field_sources.get("host_link", "")) < 20]
    assert not missing, f"host_link without a field source: {missing}"


def test_pcie_host_links_match_generation_and_lanes():
    checked = 0
    for d in _devices():
        link = d.host_link
        m = re.fullmatch(r"PCIe Gen(\d) x(\d+)", link.name) if link else None
        if m is None:
            continue
        gen, lanes = int(m.group(1)), int(m.group(2))
        # e.g. Gen5 x16: 32 GT/s x 16 lanes x 128/130 / 8 bits = 63.0 GB/s per direction
        expected = PCIE_GT[gen] * lanes * 128 / 130 / 8
        assert link.gbps_per_direction == pytest.approx(expected, rel=0.03), d.id
        checked += 1
    assert checked >= 13


@pytest.mark.parametrize(
    ("device", "gbps", "name"),
    [("b200-sxm", 63, "PCIe Gen5"), ("mi300x", 63, "PCIe Gen5"), ("mi325x", 63, "PCIe Gen5"),
     ("mi355x", 63, "PCIe Gen5"), ("gaudi3", 63, "PCIe Gen5"), ("a100-sxm-40gb", 31, "PCIe Gen4"),
     ("a40", 31, "PCIe Gen4"), ("h200-nvl", 63, "PCIe Gen5"), ("gb200", 225, "NVLink-C2C")],
)  # fmt: skip
def test_devices_added_for_offload_have_their_link(device, gbps, name):
    dev = load_catalog().device(device)
    got = host_link_gbps(dev)
    assert got is not None and got[0] == gbps and got[1].startswith(name)
    tiers, notes = offload_tiers(dev, 64.0, 0.0, B, 1)
    assert tiers[0].seconds_per_token == pytest.approx(B / (gbps * 1e9))
    assert name in notes[0]


def test_gb200_link_is_marked_estimated():
    # the per-GPU share of the superchip's NVLink-C2C is not published: the catalog must say it is an estimate
    assert "host_link" in load_catalog().device("gb200").estimated


@pytest.mark.parametrize("device", ["m2-ultra-76c", "dgx-spark", "jetson-agx-orin-64gb", "ryzen-ai-max-plus-395"])
def test_unified_memory_refuses_a_cpu_tier(device):
    dev = load_catalog().device(device)
    assert unified_memory(dev)
    with pytest.raises(LoadError, match="unified memory"):
        offload_tiers(dev, 16.0, 0.0, B, 1)
    assert offload_gb(dev, 16.0, 0.0) == 0.0


def test_unified_memory_ssd_tier_reads_straight_into_memory():
    dev = load_catalog().device("m2-ultra-76c")
    tiers, notes = offload_tiers(dev, 0.0, 10.0, B, 1)
    (ssd,) = tiers
    assert ssd.name == "ssd" and ssd.capacity_tokens == pytest.approx(10e9 / B)
    # no host-link hop: 131,072 bytes at the drive's 7.45 GB/s
    assert ssd_spec().read_gbps == 7.45
    assert ssd.seconds_per_token == pytest.approx(B / 7.45e9)
    assert "unified memory" in notes[0]
    assert offload_gb(dev, 16.0, 10.0) == 10.0


def test_discrete_gpu_ssd_tier_adds_the_host_link():
    dev = load_catalog().device("b200-sxm")
    cpu, ssd = offload_tiers(dev, 8.0, 10.0, B, 2)[0]
    assert ssd.seconds_per_token == pytest.approx(B * 2 / 7.45e9 + B / 63e9)
    assert cpu.seconds_per_token < ssd.seconds_per_token
    assert offload_gb(dev, 8.0, 10.0) == 18.0


def test_cli_refuses_a_cpu_tier_on_apple_with_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "llmcap.cli.main", "estimate", "--model", "meta-llama/Llama-3.1-8B-Instruct",
         "--hardware", "m2-ultra-76c", "--engine", "llama.cpp", "--rate", "0.2", "--turns", "exponential:4",
         "--output-len", "100", "--method", "analytic", "--kv-offload", "cpu:16"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0
    assert "unified memory" in out.stderr and "Traceback" not in out.stderr


# Devices whose host interface no stored public source states (issue 15 searched vendor datasheets, MLPerf system
# descriptions and system manuals): KV offload to CPU memory is refused on them with a one-line message. When one is
# sourced, add its host_link and remove it here.
UNSOURCED = {
    "ascend-910b", "ascend-910c", "b300-sxm", "gaudi2", "gb300", "h20", "h800-sxm", "inferentia2", "mi250x", "mi350x",
    "tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "trainium2", "trainium3", "v100-sxm-32gb",
}  # fmt: skip


def test_devices_without_a_host_link_are_the_known_unsourced_ones():
    missing = {d.id for d in _devices() if not unified_memory(d) and host_link_gbps(d) is None}
    assert missing == UNSOURCED
    with pytest.raises(LoadError, match="no host link"):
        offload_tiers(load_catalog().device("b300-sxm"), 16.0, 0.0, B, 1)
