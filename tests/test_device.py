"""lgn.device.resolve_device: a device by name, refusing a CUDA device the machine lacks."""

import pytest
import torch

from lgn.device import resolve_device


def test_cpu_is_the_cpu():
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda' requested but CUDA is not available .*use --device cpu$"):
        resolve_device("cuda")


def test_a_cuda_index_beyond_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"device 'cuda:2' requested but only 2 CUDA device\(s\) exist"):
        resolve_device("cuda:2")
