"""Training configuration: one dataclass per concern, a TOML file and ``section.key=value`` overrides.

A run's configuration has three sections: ``model`` (:class:`lgn.models.ModelConfig`),
``train`` (:class:`TrainConfig`) and ``data`` (:class:`DataConfig`). Settings
are collected as a nested dict (defaults < TOML file < ``--set`` < command-line
flags), each value checked against its field's type as it arrives (by
pydantic in strict mode, :func:`check_value`) and against its range (every
section is a pydantic dataclass whose fields carry their constraints, made by
:func:`lgn.settings.section`), and then resolved against the dataset: the
model's input channels, image size and class count come from the data.

Every bad setting raises ``ValueError`` naming the setting (and the file it came
from); a value of the wrong type raises :class:`SettingTypeError`, which is both
a ``TypeError`` and a ``ValueError``.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, JsonValue, TypeAdapter, ValidationError

from lgn.limits import check_float32
from lgn.models import ModelConfig
from lgn.parsing import load_toml as load_toml_text
from lgn.settings import STRICT, SettingTypeError, describe, limit, section

__all__ = ["TrainConfig", "DataConfig", "RunConfig", "SECTIONS", "SettingTypeError", "load_toml",
           "parse_override", "apply_overrides", "set_value", "check_value", "check_settings", "resolve",
           "resolve_model"]


PRECISIONS = ("fp32", "bf16")  # train.precision: float32 throughout, or bfloat16 autocast of forward passes


@section("train")
class TrainConfig:
    epochs: Annotated[int, limit("at least 1", ge=1)] = 100  # passes over the training set
    batch_size: Annotated[int, limit("at least 1", ge=1)] = 128  # examples per optimiser step
    lr: Annotated[float, limit("positive", gt=0)] = 0.01  # Adam's learning rate at the start
    adam_eps: Annotated[float, limit("positive", gt=0)] = 1e-8  # Adam's ε
    lr_milestones: Annotated[list[Annotated[float, Field(gt=0, le=1)]], limit("fractions in (0, 1]")] = field(
        default_factory=lambda: [0.5, 0.75, 0.875])
    # ^ fractions of the epochs after which the learning rate is multiplied by lr_gamma (at the start of epoch
    #   ⌊f·epochs⌋, never before the first epoch ends)
    lr_gamma: Annotated[float, limit("in (0, 1]", gt=0, le=1)] = 0.5  # learning-rate factor at each milestone
    grad_clip: Annotated[float | None, limit("positive or none", gt=0)] = 2.0
    # ^ clip the global gradient norm to this; None: no clipping
    seed: Annotated[int, limit("in 0..2**64-1 (torch's seed range)", ge=0, lt=2 ** 64)] = 0
    # ^ seeds model initialisation, data order and sampled datasets
    device: Annotated[str, limit("'cpu', 'cuda' or 'cuda:N'", pattern=r"^(cpu|cuda|cuda:[0-9]+)$")] = "cpu"
    eval_batch_size: Annotated[int, limit("at least 1", ge=1)] = 250
    # ^ examples per forward pass when evaluating (at 1000 a batch's codes pass 32 MiB, and malloc maps and
    #   unmaps them every time: 2-3x slower)
    progress: bool = True             # a tqdm bar on a terminal, else a line to stderr every 30 s
    tensorboard: bool = False         # also write TensorBoard event files (needs the tensorboard extra)
    checkpoint_every: Annotated[int | None, limit("at least 1 or none", ge=1)] = None
    # ^ also checkpoint every N optimiser steps; None: at epoch ends only
    on_nan: Annotated[str, limit("'stop' or 'skip'", pattern="^(stop|skip)$")] = "stop"
    # ^ a non-finite loss or gradient: 'stop' the run, or 'skip' the batch
    precision: Annotated[str, limit(f"one of {PRECISIONS}", pattern=f"^({'|'.join(PRECISIONS)})$")] = "fp32"
    # ^ 'fp32', or 'bf16': forward passes under bfloat16 autocast (weights, optimiser state, regulariser and
    #   re-projection stay float32)
    init_from: str | None = None
    # ^ a run folder whose model weights (model.safetensors) start this run, with a fresh optimiser and schedule;
    #   the architecture must match. None: a fresh initialisation from train.seed

    def milestone_steps(self, n_batches: int, epochs: int | None = None) -> list[int]:
        """The optimiser step (0-based) from which each factor applies, in a run of epochs of ``n_batches`` steps.

        The start of epoch ⌊f·epochs⌋ (0-based), where the authors' MultiStepLR,
        stepped once an epoch, put it, but never earlier than the first epoch's end:
        a milestone never applies within the first epoch. So every run of two
        epochs or more keeps the authors' schedule to the step, and a one-epoch
        run trains at the full rate instead of at lr·γ³ from its first step.
        ``epochs``: the epochs the schedule is laid over, ``train.epochs`` unless
        given (an extended run keeps the schedule of the epochs it was first set to).
        """
        epochs = self.epochs if epochs is None else epochs
        return [max(int(f * epochs), 1) * n_batches for f in self.lr_milestones]

    def lr_factor(self, step: int, milestones: list[int]) -> float:
        """γ^(number of ``milestones`` m ≤ ``step``): the factor on ``lr`` of 0-based optimiser step ``step``.

        ``milestones`` sorted, in steps (:meth:`milestone_steps`).
        """
        return self.lr_gamma ** bisect.bisect_right(milestones, step)

    def schedule_warning(self, n_batches: int, epochs: int | None = None) -> str | None:
        """One line if some of ``lr_milestones`` cannot act at their fraction of a schedule of ``epochs``
        (default ``train.epochs``) of ``n_batches`` steps (they fall within the first epoch, or at its end),
        else None."""
        epochs = self.epochs if epochs is None else epochs
        total = epochs * n_batches
        at = {f: int(f * epochs) * n_batches for f in self.lr_milestones}
        early = [f for f in self.lr_milestones if at[f] < n_batches]
        late = [f for f in self.lr_milestones if f not in early and at[f] >= total]
        said = []
        if early:
            said.append(_said(early, "falls", "fall") + " within the first epoch" + (
                ", the whole run" if total <= n_batches else f": moved to its end (step {n_batches})"))
        if late:
            said.append(_said(late, "falls", "fall") + " at the end of the run")
        if not said:
            return None
        end = self.lr * self.lr_gamma ** sum(1 for m in self.milestone_steps(n_batches, epochs) if m < total)
        rate = f"stays {self.lr:g} throughout" if end == self.lr else f"ends at {end:g}"
        said_epochs = f"{epochs} epoch{'s' if epochs > 1 else ''}"
        return (f"a degenerate learning-rate schedule for {said_epochs} of {n_batches} steps: train.lr_milestones "
                f"{'; '.join(said)}, so the learning rate {rate}")


def _said(fractions: list[float], one: str, many: str) -> str:
    """``fractions`` listed and a verb agreeing with their number (``'0.5 falls'``, ``'0.5, 0.75 fall'``)."""
    return f"{', '.join(f'{f:g}' for f in fractions)} {one if len(fractions) == 1 else many}"


@section("data")
class DataConfig:
    name: str = ""                    # dataset: a name of lgn.data.dataset_names(), npz:PATH or planted:NAME
    data_dir: str | None = None       # folder of a file-based dataset (fashion-mnist, mnist, cifar10)
    zca: bool = False                 # ZCA whitening after per-channel standardisation (docs/method.md §5)
    zca_epsilon: Annotated[float, limit("positive", gt=0)] = 0.01  # added to the covariance eigenvalues
    train_subset: Annotated[int | None, limit("at least 1 or none", ge=1)] = None
    # ^ keep only the first N training examples (quick runs); None: all
    test_subset: Annotated[int | None, limit("at least 1 or none", ge=1)] = None
    # ^ keep only the first N test examples; None: all
    options: dict = field(default_factory=dict)  # keyword options of the dataset's loader

    def __post_init__(self) -> None:
        for key in self.options:
            if key in _NOT_OPTIONS:
                raise ValueError(f"data.options.{key} is not a dataset option; set {_NOT_OPTIONS[key]} instead")


# keyword arguments the trainer passes to every loader itself, so they cannot be options
_NOT_OPTIONS = {"seed": "train.seed", "data_dir": "data.data_dir", "name": "data.name"}


SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig}


@dataclass
class RunConfig:
    """The fully resolved configuration of a run, as saved in its ``config.json``."""

    model: ModelConfig
    train: TrainConfig
    data: DataConfig

    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, settings: dict) -> "RunConfig":
        """Build from a nested dict of checked settings; every section falls back to its defaults."""
        return cls(**{name: section(**settings.get(name, {})) for name, section in SECTIONS.items()})


def _hints(section: str) -> dict[str, object]:
    return typing.get_type_hints(SECTIONS[section])


_PLAIN = "a string, number, boolean, list or table"  # what config.json can store


@functools.cache
def _adapter(hint) -> TypeAdapter:
    """pydantic's strict validator of a field's type; a table (``data.options``) holds JSON values only."""
    return TypeAdapter(dict[str, JsonValue] if hint is dict else hint, config=STRICT)


def _where_in_table(where: str, loc: tuple) -> str:
    """``where`` and the table keys of a pydantic error location (union tags and list indices left out)."""
    keys, expect_key = [], True
    for part in loc:
        if expect_key and isinstance(part, str):
            keys.append(part)
        expect_key = part == "dict"
    return ".".join([where, *keys])


def check_value(hint, value, where: str):
    """``value`` if it fits the type ``hint`` (ints are accepted as floats), else :class:`SettingTypeError`.

    The type is checked by pydantic in strict mode (no coercion: a string is
    not a number, 1 is not true). Floats must be finite: no setting means
    anything at infinity or NaN; and within float32's range (``ValueError``
    otherwise), which the run computes in. A table (``data.options``) holds
    strings, numbers, booleans, none, and lists and tables of them: what
    ``config.json`` can store.
    """
    try:
        checked = _adapter(hint).validate_python(value)
    except ValidationError as e:
        error = e.errors()[0]
        if hint is dict and isinstance(value, dict):  # name the entry of the table
            item, at = error.get("input"), _where_in_table(where, error["loc"])
            if error["type"] == "finite_number":
                raise SettingTypeError(f"{at} must be a finite number, got {item!r}") from None
            raise SettingTypeError(f"{at} must be {_PLAIN}, got {type(item).__name__} {item!r}") from None
        if error["type"] == "finite_number" or _overflows(value):
            raise SettingTypeError(f"{where} must be a finite number, got {value!r}") from None
        raise SettingTypeError(f"{where} must be {describe(hint)}, got {value!r}") from None
    if isinstance(checked, float):
        check_float32(checked, where)
    elif isinstance(checked, list):
        for item in checked:
            if isinstance(item, float):
                check_float32(item, where)
    return checked


def _overflows(value) -> bool:
    """An int too large for a float (a number setting given 10**400)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _parse_text(text: str, where: str):
    """A command-line string as one TOML value (``3``, ``0.5``, ``true``, ``[1, 2]``), else the string itself.

    ``where`` (the setting) names a value nested too deeply.
    """
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        parsed = load_toml_text(f"v = {text}", f"the value of {where}")
    except tomllib.TOMLDecodeError:
        return text
    return parsed["v"] if list(parsed) == ["v"] else text  # 'v = 3\nlr = 5' is not one value


def _accepts_str(hint) -> bool:
    return hint is str or str in typing.get_args(hint)


def _field(section: str, key: str):
    if section not in SECTIONS:
        raise ValueError(f"unknown config section {section!r} (in {section}.{key}); known: {', '.join(SECTIONS)}")
    hints = _hints(section)
    if key not in hints:
        raise ValueError(f"unknown config key {section}.{key}; known in [{section}]: {', '.join(hints)}")
    return hints[key]


def check_range(section: str, key: str, value) -> None:
    """Raise ``ValueError`` if ``section.key = value`` is out of range on its own.

    Checks that compare settings (``stride`` ≤ ``kernel_size``, the kernel
    fitting the image) wait for the whole config, in :func:`resolve`.
    """
    probe = {key: value}
    if section == "model":  # the fields those checks compare take values that ``key`` alone cannot conflict with
        probe = {"kernel_size": 1 if key == "image_size" else 2 ** 31, "image_size": 2 ** 62, **probe}
    try:
        SECTIONS[section](**probe)
    except ValueError as e:
        message = str(e)
        raise ValueError(message if message.startswith(f"{section}.") else f"{section}.{message}") from None


def set_value(settings: dict, section: str, key: str, value) -> None:
    """Set ``settings[section][key] = value`` in place, checking the key, the value's type and its range."""
    value = check_value(_field(section, key), value, f"{section}.{key}")
    check_range(section, key, value)
    settings.setdefault(section, {})[key] = value


def load_toml(path: str | Path) -> dict:
    """Read a TOML config file into a nested dict of checked settings (unknown keys refused)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    if not path.is_file():
        raise ValueError(f"config file {path} is not a file")
    try:
        raw = load_toml_text(path.read_bytes().decode("utf-8"), str(path))  # TOML is UTF-8 whatever the locale
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid TOML: {e}") from None
    return check_settings(raw, str(path))


def check_settings(raw: dict, source: str) -> dict:
    """``raw`` (``{section: {key: value}}`` from the file ``source``) with every key and value checked.

    Errors name ``source``.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected tables of settings, got {type(raw).__name__}")
    settings: dict = {}
    for section, table in raw.items():
        if not isinstance(table, dict):
            raise ValueError(f"{source}: top-level key {section!r} must be a [section]; "
                             f"sections: {', '.join(SECTIONS)}")
        for key, value in table.items():
            try:
                set_value(settings, section, key, value)
            except ValueError as e:
                raise type(e)(f"{source}: {e}") from None
    return settings


def parse_override(text: str) -> tuple[str, str, object]:
    """``'section.key=value'`` (or ``'data.options.KEY=value'``) as ``(section, key, value)``, checked."""
    name, sep, value = text.partition("=")
    parts = name.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ValueError(f"--set expects section.key=value, got {text!r}")
    section, key = parts[0], parts[1]
    if section == "data" and key == "options" and len(parts) == 3:
        parsed = _parse_text(value, name.strip())
        check_range(section, "options", check_value(dict, {parts[2]: parsed}, "data.options"))
        return section, f"options.{parts[2]}", parsed
    if len(parts) != 2:
        raise ValueError(f"--set expects section.key=value, got {text!r}")
    hint = _field(section, key)
    try:
        checked = check_value(hint, _parse_text(value, name.strip()), f"{section}.{key}")
    except SettingTypeError:
        if not _accepts_str(hint):
            raise
        checked = value  # a string that happens to read as TOML, e.g. a folder named 2024
    check_range(section, key, checked)
    return section, key, checked


def apply_overrides(settings: dict, overrides: list[str]) -> dict:
    """A copy of ``settings`` with each ``section.key=value`` of ``overrides`` applied in order."""
    out = {section: dict(table) for section, table in settings.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        if key.startswith("options."):
            options = dict(out.setdefault(section, {}).get("options", {}))
            options[key[len("options."):]] = value
            out[section]["options"] = options
        else:
            out.setdefault(section, {})[key] = value
    return out


def resolve(settings: dict, dataset) -> RunConfig:
    """The :class:`RunConfig` of ``settings`` for ``dataset`` (a :class:`lgn.data.Dataset`): each section
    parsed once, the model's by :func:`resolve_model`."""
    return RunConfig(model=resolve_model(settings.get("model", {}), dataset),
                     train=TrainConfig(**settings.get("train", {})), data=DataConfig(**settings.get("data", {})))


def resolve_model(model: dict, dataset) -> ModelConfig:
    """The :class:`lgn.models.ModelConfig` of the ``model`` settings for ``dataset``.

    The model's ``in_channels`` and ``image_size`` (the smaller side) and, to
    classify, ``num_classes`` come from the data; a value given in ``model``
    must agree (a class count above the labels seen is allowed). An error
    names the data's shape.
    """
    model = dict(model)
    derived = {"in_channels": dataset.in_channels, "image_size": min(dataset.image_shape)}
    if model.get("task", "classify") == "classify":
        if not dataset.labelled:
            raise ValueError(f"{dataset.name} has no labels to classify; use --task reconstruct")
        derived["num_classes"] = dataset.num_classes
    for key, value in derived.items():
        given = model.setdefault(key, value)
        if given != value and not (key == "num_classes" and given > value):
            raise ValueError(f"model.{key}={given} does not fit the data: {dataset.name} has {key} {value}")
    try:
        return ModelConfig(**model)
    except ValueError as e:
        shape = "×".join(str(s) for s in dataset.x_train.shape[1:])
        raise ValueError(f"{e} (data: {dataset.name}, images {shape})") from None
