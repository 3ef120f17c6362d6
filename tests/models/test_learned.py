"""The 'select' generator inside a model (lgn reproduce's lgn-learned): training, anneal, files, export."""

import numpy as np
import pytest
import torch

from lgn.data.planted import planted_data
from lgn.groups import SelectionGenerator, operators
from lgn.models import ModelConfig, build_model, load_model, save_model
from lgn.train import fit
from lgn.train.config import TrainConfig

CONFIG = ModelConfig(task="reconstruct", image_size=6, n_layers=2, n_groups=3, group_size=4, kernel_size=4,
                     padding=1, generator="select")


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = build_model(CONFIG)
    start = [list(b.generator.chosen()) for b in model.encoder.banks]
    x = planted_data("rot90", seed=0, kernel_size=6, n_train=64, n_test=8)[0].float()
    gen = model.encoder.banks[0].generator
    epochs = -(-gen.steps // 8) + 1  # 8 steps an epoch: past the end of the anneal
    fit(model, x, None, TrainConfig(epochs=epochs, batch_size=8, progress=False), task="reconstruct")
    return model, start, x


def test_the_anneal_ends_on_exact_library_operations_of_the_order(trained):
    model, _, _ = trained
    lib = operators.permutation_operations(4, 4, exact=True)
    eye = torch.eye(16, dtype=torch.float64)
    for bank in model.encoder.banks:
        gen = bank.generator
        assert isinstance(gen, SelectionGenerator) and gen.frozen
        a = gen.matrix().detach().double()
        for g, (name,) in enumerate(gen.chosen()):
            np.testing.assert_array_equal(a[g, 0].numpy(), lib[name])
            assert (torch.linalg.matrix_power(a[g, 0], 4) - eye).abs().max().item() < 1e-6


def test_training_moves_the_selection(trained):
    model, start, _ = trained
    end = [b.generator.chosen() for b in model.encoder.banks]
    assert end != start  # at least one group changed its operation during the anneal


def test_save_load_and_export_are_bit_identical(trained, tmp_path):
    model, _, x = trained
    model.eval()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(loaded(x), out)
        assert torch.equal(model.export()(x), out)
    for a, b in zip(model.encoder.banks, loaded.encoder.banks):
        assert a.generator.chosen() == b.generator.chosen() and b.generator.frozen


def test_a_model_from_its_config_dict_builds_the_selection():
    model = build_model(ModelConfig.from_dict({**CONFIG.to_dict(), "task": "classify", "num_classes": 3}))
    assert isinstance(model.encoder.banks[0].generator, SelectionGenerator)
    logits = model(torch.randn(2, 1, 6, 6))
    assert logits.shape == (2, 3)
    assert model.regularization().item() == 0.0
