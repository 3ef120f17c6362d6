import pytest
import torch

from lgn.data import from_arrays
from lgn.train.config import DataConfig, RunConfig, TrainConfig, apply_overrides, load_toml, resolve


def test_defaults_are_the_papers_recipe():
    t = TrainConfig()
    assert (t.lr, t.adam_eps, t.batch_size, t.epochs, t.grad_clip) == (0.01, 1e-8, 128, 100, 2.0)
    assert t.lr_milestones == [0.5, 0.75, 0.875] and t.lr_gamma == 0.5


@pytest.mark.parametrize("epochs", [8, 16, 24, 104])
@pytest.mark.parametrize("n_batches", [1, 7, 32])
def test_milestones_where_f_epochs_is_whole_begin_that_epoch_as_before(epochs, n_batches):
    # 1/2, 3/4 and 7/8 of a multiple of 8 epochs: where MultiStepLR stepped once an epoch put them
    assert TrainConfig(epochs=epochs).milestone_steps(n_batches) == [
        epochs // 2 * n_batches, 3 * epochs // 4 * n_batches, 7 * epochs // 8 * n_batches]


def test_milestones_begin_the_epoch_floor_of_their_fraction_and_never_within_the_first_epoch():
    assert TrainConfig(epochs=100).milestone_steps(32) == [1600, 2400, 2784]  # epochs 50, 75, 87: the paper's
    assert TrainConfig(epochs=2).milestone_steps(4) == [4, 4, 4]
    assert TrainConfig(epochs=1).milestone_steps(32) == [32, 32, 32]  # the first epoch's end, the run's end
    assert TrainConfig(epochs=3, lr_milestones=[0.1, 1.0]).milestone_steps(10) == [10, 30]


@pytest.mark.parametrize("train, n_batches, line", [
    ({"epochs": 1}, 32, "a degenerate learning-rate schedule for 1 epoch of 32 steps: train.lr_milestones 0.5, "
                        "0.75, 0.875 fall within the first epoch, the whole run, so the learning rate stays 0.01 "
                        "throughout"),
    ({"epochs": 2, "lr_milestones": [0.3, 0.9]}, 4,
     "a degenerate learning-rate schedule for 2 epochs of 4 steps: train.lr_milestones 0.3 falls within the first "
     "epoch: moved to its end (step 4), so the learning rate ends at 0.0025"),
    ({"epochs": 4, "lr_milestones": [0.1, 0.2, 1.0], "lr": 0.1}, 4,
     "a degenerate learning-rate schedule for 4 epochs of 4 steps: train.lr_milestones 0.1, 0.2 fall within the "
     "first epoch: moved to its end (step 4); 1 falls at the end of the run, so the learning rate ends at 0.025"),
    ({"epochs": 2}, 4, None), ({"epochs": 100}, 391, None),
    ({"epochs": 5, "lr_milestones": [0.2]}, 10, None),  # at the first epoch's end, as its fraction says
])
def test_a_degenerate_schedule_is_said_in_one_line(train, n_batches, line):
    assert TrainConfig(**train).schedule_warning(n_batches) == line


def test_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 3\nlr = 1\nlr_milestones = [0.5]\n[model]\nn_groups = 2\n'
                    '[data]\nname = "digits"\noptions = { n = 3 }\n')
    settings = load_toml(path)
    assert settings == {"train": {"epochs": 3, "lr": 1.0, "lr_milestones": [0.5]}, "model": {"n_groups": 2},
                        "data": {"name": "digits", "options": {"n": 3}}}
    assert isinstance(settings["train"]["lr"], float)


@pytest.mark.parametrize("text, error, message", [
    ("[train]\nepochs = 2.5\n", TypeError, "train.epochs must be an integer, got 2.5"),
    ("[train]\nepoch = 2\n", ValueError, "unknown config key train.epoch"),
    ("[optim]\nlr = 2\n", ValueError, "unknown config section 'optim'"),
    ("[train]\nprogress = 1\n", TypeError, "train.progress must be true or false"),
    ("[model]\nn_groups = true\n", TypeError, "model.n_groups must be an integer"),
    ("[train]\nlr_milestones = [0.5, 'x']\n", TypeError,
     r"train.lr_milestones must be a list of numbers, got \[0.5, .x.\]"),
    ("epochs = 3\n", ValueError, "must be a \\[section\\]"),
    ("[train\n", ValueError, "not valid TOML"),
])
def test_toml_file_errors(tmp_path, text, error, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(error, match=message):
        load_toml(path)


def test_overrides_parse_by_field_type():
    s = apply_overrides({"train": {"epochs": 5}}, [
        "train.epochs=3", "train.lr=1e-3", "train.grad_clip=none", "train.progress=false",
        "train.lr_milestones=[0.25, 0.5]", "data.data_dir=2024", "data.name=npz:/tmp/a b.npz",
        "data.options.kernel_size=8", "data.options.channels=1", "model.eta=1"])
    assert s == {"train": {"epochs": 3, "lr": 1e-3, "grad_clip": None, "progress": False,
                           "lr_milestones": [0.25, 0.5]},
                 "data": {"data_dir": "2024", "name": "npz:/tmp/a b.npz",
                          "options": {"kernel_size": 8, "channels": 1}},
                 "model": {"eta": 1.0}}


@pytest.mark.parametrize("override, error, message", [
    ("train.epochs=three", TypeError, "train.epochs must be an integer, got 'three'"),
    ("train.epochs=1.5", TypeError, "must be an integer"),
    ("train.lr=fast", TypeError, "train.lr must be a number"),
    ("train.epoch=1", ValueError, "unknown config key train.epoch"),
    ("modle.eta=1", ValueError, "unknown config section 'modle'"),
    ("train.epochs", ValueError, "section.key=value"),
    ("epochs=3", ValueError, "section.key=value"),
    ("train.seed=none", TypeError, "train.seed must be an integer, got None"),
])
def test_override_errors(override, error, message):
    with pytest.raises(error, match=message):
        apply_overrides({}, [override])


@pytest.mark.parametrize("section, values, message", [
    ("train", {"epochs": 0}, "train.epochs must be at least 1"),
    ("train", {"lr_milestones": [1.5]}, "fractions in"),
    ("train", {"device": "gpu"}, "train.device must be"),
    ("train", {"grad_clip": 0.0}, "train.grad_clip must be positive"),
    ("data", {"train_subset": 0}, "data.train_subset"),
    ("model", {"generator": "magic"}, "generator must be one of"),
])
def test_values_out_of_range(section, values, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict({section: values})


# every range of [train] and [data], as the error states it: the key, the range, the value, one line
RANGES = [
    ("train", "epochs", 0, "at least 1"), ("train", "batch_size", -3, "at least 1"),
    ("train", "eval_batch_size", 0, "at least 1"), ("train", "lr", 0.0, "positive"),
    ("train", "lr", float("nan"), "positive"), ("train", "adam_eps", -1e-8, "positive"),
    ("train", "lr_milestones", [0.5, 0.0], "fractions in (0, 1]"), ("train", "lr_gamma", 1.5, "in (0, 1]"),
    ("train", "lr_gamma", 0.0, "in (0, 1]"), ("train", "grad_clip", -2.0, "positive or none"),
    ("train", "seed", -1, "in 0..2**64-1 (torch's seed range)"),
    ("train", "seed", 2 ** 64, "in 0..2**64-1 (torch's seed range)"),
    ("train", "device", "cuda:x", "'cpu', 'cuda' or 'cuda:N'"),
    ("train", "checkpoint_every", 0, "at least 1 or none"), ("train", "on_nan", "retry", "'stop' or 'skip'"),
    ("train", "precision", "fp16", "one of ('fp32', 'bf16')"),
    ("data", "train_subset", 0, "at least 1 or none"), ("data", "test_subset", -1, "at least 1 or none"),
    ("data", "zca_epsilon", 0.0, "positive"),
]


@pytest.mark.parametrize("section, key, value, words", RANGES)
def test_a_value_out_of_range_names_the_key_and_the_range_in_one_line(section, key, value, words):
    with pytest.raises(ValueError) as raised:
        RunConfig.from_dict({section: {key: value}})
    assert str(raised.value) == f"{section}.{key} must be {words}, got {value!r}"
    assert not isinstance(raised.value, TypeError)


@pytest.mark.parametrize("section, key, value, words", RANGES)
def test_the_edge_of_each_range_is_accepted(section, key, value, words):
    edge = {"at least 1": 1, "at least 1 or none": None, "positive": 1e-30, "fractions in (0, 1]": [1.0],
            "in (0, 1]": 1.0, "positive or none": None, "'cpu', 'cuda' or 'cuda:N'": "cuda:12",
            "'stop' or 'skip'": "skip", "one of ('fp32', 'bf16')": "bf16"}.get(words)
    if words.startswith("in 0..2**64"):
        edge = 0 if value < 0 else 2 ** 64 - 1
    assert getattr(getattr(RunConfig.from_dict({section: {key: edge}}), section), key) == edge


def test_a_section_built_in_python_checks_types_and_keys_too():
    with pytest.raises(TypeError, match=r"^train.epochs must be an integer, got '3'$"):
        TrainConfig(epochs="3")
    with pytest.raises(TypeError, match=r"^train.grad_clip must be a number or none, got 'x'$"):
        TrainConfig(grad_clip="x")
    with pytest.raises(ValueError, match=r"^unknown config key train.epoch; known in \[train\]: epochs, "):
        TrainConfig(epoch=3)
    with pytest.raises(ValueError, match=r"^data.options.seed is not a dataset option; set train.seed instead$"):
        DataConfig(options={"seed": 1})
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)  # an int is a number


def _data(c=1, h=8, w=8, labels=True, n=4):
    x = torch.zeros(n, c, h, w).numpy()
    y = [0, 1, 2, 1][:n] if labels else None
    return from_arrays("toy", x, y, x, y)


def test_resolve_takes_shapes_from_the_data():
    config = resolve({"model": {"n_groups": 2}}, _data(c=3, h=9, w=7))
    assert (config.model.in_channels, config.model.image_size, config.model.num_classes) == (3, 7, 3)
    assert config.model.n_groups == 2 and config.model.reg_weight == 1e-4  # classify's μ, filled in
    assert resolve({"model": {"num_classes": 10}}, _data()).model.num_classes == 10


def test_resolve_errors():
    with pytest.raises(ValueError, match="model.in_channels=3 does not fit the data: toy has in_channels 1"):
        resolve({"model": {"in_channels": 3}}, _data())
    with pytest.raises(ValueError, match="model.num_classes=2 does not fit"):
        resolve({"model": {"num_classes": 2}}, _data())
    with pytest.raises(ValueError, match="no labels to classify; use --task reconstruct"):
        resolve({}, _data(labels=False))
    with pytest.raises(ValueError, match="too small for kernel_size=6.*images 1×3×3"):
        resolve({"model": {"task": "reconstruct"}}, _data(h=3, w=3, labels=False))
    assert resolve({"model": {"task": "reconstruct"}}, _data(labels=False)).model.reg_weight == 1e-2


def test_precision_is_fp32_or_bf16():
    assert TrainConfig().precision == "fp32" and TrainConfig(precision="bf16").precision == "bf16"
    with pytest.raises(ValueError, match="train.precision must be one of"):
        TrainConfig(precision="fp16")
