"""Example tests gated by vkdoctor's pytest plugin (the workflow's last step runs them)."""

import pytest


@pytest.mark.vulkan("dispatch")
def test_compute_runs_somewhere(vulkan_device):
    # vulkan_device: the best device meeting --vulkan-require (index, uuid, name, api_version).
    assert vulkan_device.api_version.startswith("1.")


@pytest.mark.vulkan("gpu", "api>=1.3", "memory>=4GiB")
def test_needs_a_real_gpu():
    pass
