"""The plain CNN baseline: shapes for both tasks, a training step, save/load and the train loop."""

import dataclasses

import pytest
import torch

from lgn import ModelConfig, build_model
from lgn.models import load_model, save_model
from lgn.models.cnn import CNN
from lgn.train import train


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 16), (1, 6), (1, 7)])
def test_shapes_of_both_tasks(channels, size):
    x = torch.randn(2, channels, size, size + 3)
    classifier = build_model(architecture="cnn", in_channels=channels, image_size=size, num_classes=7)
    assert isinstance(classifier, CNN)
    assert classifier(x).shape == (2, 7)
    autoencoder = build_model(architecture="cnn", task="reconstruct", in_channels=channels, image_size=size)
    assert autoencoder(x).shape == x.shape


def test_width_and_parameter_count_follow_the_config():
    c = ModelConfig(architecture="cnn")  # L=4, K·p=20, k=6
    model = build_model(c)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [20, 20, 20, 20] and convs[0].kernel_size == (6, 6)
    # 1·20·36 + 3·20·20·36 conv weights, 4 batch norms of 2·20, a 320 → 10 linear layer
    assert sum(p.numel() for p in model.parameters()) == 720 + 3 * 14400 + 4 * 40 + 3210 == 47290
    assert model.encode(torch.randn(1, 1, 28, 28)).shape == (1, 20, 7, 7)  # pooled twice: 28 → 14 → 7
    autoencoder = build_model(dataclasses.replace(c, task="reconstruct"))
    # conv 1→20, stride-2 conv 20→20, transposed conv 20→20, conv 20→1, with biases
    assert sum(p.numel() for p in autoencoder.parameters()) == 740 + 14420 + 14420 + 721 == 30301
    assert autoencoder.encode(torch.randn(1, 1, 28, 28)).shape == (1, 20, 14, 14)
    assert float(model.regularization()) == 0.0 and model.generators() is None


def test_a_training_step_changes_the_weights_and_lowers_the_loss():
    model = build_model(architecture="cnn", image_size=12)
    x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 10, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(x), y) + model.regularization()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.project_()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("task", ["classify", "reconstruct"])
def test_save_load_round_trip(tmp_path, task):
    model = build_model(architecture="cnn", task=task, image_size=10).eval()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, CNN) and loaded.config == model.config
    x = torch.randn(3, 1, 10, 10)
    torch.testing.assert_close(loaded(x), model(x))


def test_refuses_bad_input():
    with pytest.raises(ValueError, match="n_layers ≥ 2"):
        build_model(architecture="cnn", task="reconstruct", n_layers=1)
    with pytest.raises(ValueError, match="3 channels instead of 1"):
        build_model(architecture="cnn")(torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="architecture"):
        ModelConfig(architecture="transformer")


def test_trains_and_resumes_through_the_normal_loop(tmp_path):
    settings = {"model": {"architecture": "cnn", "n_layers": 2, "n_groups": 2, "group_size": 2, "kernel_size": 3},
                "train": {"epochs": 2, "batch_size": 64, "progress": False},
                "data": {"name": "planted:rot90", "options": {"n_train": 128, "n_test": 64}}}

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(settings, tmp_path / "run", log=None, on_epoch_end=stop)
    assert isinstance(load_model(tmp_path / "run"), CNN)
    result = train(settings, tmp_path / "run", resume=True, log=None)
    assert result.config.model.architecture == "cnn"
    assert [r["epoch"] for r in result.metrics] == [1, 2] and "test_acc" in result.metrics[-1]
