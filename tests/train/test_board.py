"""What --tensorboard writes: the loss every step, and every epoch the generators as images and the histograms
of their singular values and eigenvalue angles (a recording writer stands in for TensorBoard's)."""

import json

import pytest
import torch

import lgn.train.loop
from lgn.models import load_model
from lgn.train import train
from lgn.train.board import generator_mosaic
from tests.train.helpers import tiny_settings, write_tiny_npz


class Recorder:
    def __init__(self, log_dir):
        self.calls = []
        Recorder.last = self

    def __getattr__(self, name):  # add_scalar, add_image, add_histogram, flush, close
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(lgn.train.loop, "_summary_writer_class", lambda out: Recorder)
    settings = tiny_settings(write_tiny_npz(tmp_path / "tiny.npz"), epochs=2, tensorboard=True)  # 3 steps an epoch
    train(settings, tmp_path / "run", log=None)
    return Recorder.last.calls, tmp_path / "run"


def test_every_step_logs_its_loss_and_rate(recorded):
    calls, run = recorded
    steps = [args for name, args, _ in calls if name == "add_scalar" and args[0] == "step/train_loss"]
    assert [step for _, _, step in steps] == list(range(1, 7))
    rates = [args[1] for name, args, _ in calls if name == "add_scalar" and args[0] == "step/lr"]
    assert len(rates) == 6 and rates[0] == 0.01
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for epoch, record in enumerate(records):  # the epoch's loss is the mean of its steps' (3 batches of 16)
        assert sum(loss for _, loss, _ in steps[3 * epoch:3 * epoch + 3]) / 3 == pytest.approx(record["train_loss"])
    assert ("add_scalar", ("test_acc", records[-1]["test_acc"], 2), {}) in calls


def test_every_epoch_logs_the_generators_images_and_histograms(recorded):
    calls, run = recorded
    a = load_model(run).generators().detach().double()  # (L, K, C', n, n) after the last epoch
    for layer in range(a.shape[0]):
        images = [(args, kw) for name, args, kw in calls
                  if name == "add_image" and args[0] == f"generators/layer_{layer}"]
        assert [args[2] for args, _ in images] == [1, 2] and images[-1][1] == {"dataformats": "HW"}
        torch.testing.assert_close(images[-1][0][1], generator_mosaic(a[layer]).float())
        last = {args[0].split("/")[0]: args[1] for name, args, _ in calls
                if name == "add_histogram" and args[0].endswith(f"layer_{layer}") and args[2] == 2}
        torch.testing.assert_close(last["singular_values"].sort().values,
                                   torch.linalg.svdvals(a[layer]).flatten().sort().values)
        angles = torch.linalg.eigvals(a[layer]).angle().flatten()
        torch.testing.assert_close(last["eigenvalue_angles"].sort().values, angles.sort().values)


def test_the_mosaic_tiles_each_matrix_on_one_symmetric_scale():
    a = torch.tensor([[[[1.0, -2.0], [0.0, 2.0]], [[0.5, 0.0], [0.0, 0.0]]]])  # (K=1, C'=2, 2, 2)
    assert generator_mosaic(a).tolist() == [[0.75, 0.0, 1.0, 0.625, 0.5], [0.5, 1.0, 1.0, 0.5, 0.5]]
