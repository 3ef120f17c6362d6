"""Extending a run, starting one from another's weights, and keeping the best epoch (run.json)."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

import lgn.train.loop
from lgn.runs import load_run, read_run_record
from lgn.train import train
from tests.train.helpers import Interrupt, stop_after, tiny_settings, write_tiny_npz

N_BATCHES = 3  # 48 training examples in batches of 16


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _weights(run, name="model.safetensors"):
    return load_file(run / name)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _numbers(records):
    """The records without their times, which differ from run to run."""
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in records]


# ---------------------------------------------------------------- extension

def test_an_extension_at_a_constant_rate_is_the_uninterrupted_longer_run(tmp_path, npz):
    # with lr_gamma 1 the schedule is the same whatever the epochs, so an extension from 2 to 3 epochs must
    # be bit-identical to a 3-epoch run: same batch order (a function of seed and epoch), same rates
    full = train(tiny_settings(npz, epochs=3, lr_gamma=1.0), tmp_path / "full", log=None)
    train(tiny_settings(npz, epochs=2, lr_gamma=1.0), tmp_path / "ext", log=None)
    lines = []
    extended = train({"train": {"epochs": 3}}, tmp_path / "ext", resume=True, extend=True, log=lines.append)
    assert _numbers(extended.metrics) == _numbers(full.metrics)
    assert _same(_weights(tmp_path / "ext"), _weights(tmp_path / "full"))
    assert lines[0].startswith(f"resuming {tmp_path / 'ext'} after epoch 2 of 3, extended from 2 epochs at step 6")
    assert read_run_record(tmp_path / "ext")["extended"] == [{"from_epochs": 2, "to_epochs": 3, "step": 2 * N_BATCHES}]
    assert json.loads((tmp_path / "ext" / "config.json").read_text())["train"]["epochs"] == 3


def test_an_extension_keeps_the_schedule_of_its_first_epochs_and_trains_at_its_final_rate(tmp_path, npz):
    # an uninterrupted 4-epoch run places its milestones at epochs 2, 3, 3 (rates 0.01, 0.01, 0.005, 0.00125);
    # the 2-epoch run placed all three at epoch 1, so it ended at 0.01·0.5³ and its extension stays there:
    # the extension cannot equal the 4-epoch run, whose epoch 2 trained at another rate
    short = train(tiny_settings(npz, epochs=2), tmp_path / "run", log=None)
    extended = train({"train": {"epochs": 4}}, tmp_path / "run", resume=True, extend=True, log=None)
    assert _numbers(extended.metrics[:2]) == _numbers(short.metrics)
    assert [r["lr"] for r in extended.metrics] == [0.01, 0.00125, 0.00125, 0.00125]
    assert [r["step"] for r in extended.metrics] == [N_BATCHES * e for e in (1, 2, 3, 4)]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == extended.metrics


def test_an_interrupted_extension_resumes_to_the_same_end_and_is_recorded_once(tmp_path, npz):
    train(tiny_settings(npz, epochs=2), tmp_path / "whole", log=None)
    whole = train({"train": {"epochs": 4}}, tmp_path / "whole", resume=True, extend=True, log=None)
    train(tiny_settings(npz, epochs=2), tmp_path / "cut", log=None)
    with pytest.raises(Interrupt):
        train({"train": {"epochs": 4}}, tmp_path / "cut", resume=True, extend=True, log=None,
              on_epoch_end=stop_after(3))
    # its older checkpoint slot, of step 6, was written before the extension: it would resume a 2-epoch run,
    # but only the newest checkpoint decides
    with pytest.raises(ValueError, match=r"its settings differ in train\.epochs: 4 → 2$"):
        train({"train": {"epochs": 2}}, tmp_path / "cut", resume=True, log=None)
    resumed = train({}, tmp_path / "cut", resume=True, log=None)  # the folder's own config: 4 epochs
    assert _numbers(resumed.metrics) == _numbers(whole.metrics)
    assert _same(_weights(tmp_path / "cut"), _weights(tmp_path / "whole"))
    assert read_run_record(tmp_path / "cut")["extended"] == [{"from_epochs": 2, "to_epochs": 4, "step": 6}]
    # extended twice: two entries, the schedule still that of the first 2 epochs
    again = train({"train": {"epochs": 5}}, tmp_path / "cut", resume=True, extend=True, log=None)
    assert read_run_record(tmp_path / "cut")["extended"] == [{"from_epochs": 2, "to_epochs": 4, "step": 6},
                                                             {"from_epochs": 4, "to_epochs": 5, "step": 12}]
    assert again.metrics[-1]["lr"] == 0.00125


def test_an_extension_to_fewer_epochs_is_refused_and_changes_nothing(tmp_path, npz):
    train(tiny_settings(npz, epochs=3), tmp_path / "run", log=None)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(ValueError, match=r"^cannot resume .* with 2 epochs: it is set to 3, and a run is extended, "
                                         r"never shortened: give --epochs above 3$"):
        train({"train": {"epochs": 2}}, tmp_path / "run", resume=True, extend=True, log=None)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    # the same count: nothing to train, said in one line
    lines = []
    result = train({"train": {"epochs": 3}}, tmp_path / "run", resume=True, extend=True, log=lines.append)
    assert lines == [f"{tmp_path / 'run'} has finished its 3 epochs: nothing to train; to extend it, resume with "
                     f"more epochs (--epochs above 3)"]
    assert len(result.metrics) == 3


def test_more_epochs_without_extend_are_refused_as_a_changed_setting(tmp_path, npz):
    # lgn reproduce resumes partial runs of its grid: one of fewer epochs must not come back extended, with a
    # schedule other than its settings describe
    train(tiny_settings(npz, epochs=1), tmp_path / "run", log=None)
    with pytest.raises(ValueError, match=r"its settings differ in train\.epochs: 1 → 2; to extend the run to more "
                                         r"epochs, pass extend=True$"):
        train({"train": {"epochs": 2}}, tmp_path / "run", resume=True, log=None)


def test_an_extension_with_another_setting_changed_is_refused_naming_the_key(tmp_path, npz):
    train(tiny_settings(npz, epochs=1), tmp_path / "run", log=None)
    with pytest.raises(ValueError, match=r"its settings differ in train\.lr: 0\.01 → 0\.5; only train\.epochs "
                                         r"may change, to extend the run$"):
        train({"train": {"epochs": 2, "lr": 0.5}}, tmp_path / "run", resume=True, extend=True, log=None)


# ---------------------------------------------------------------- warm start

def test_init_from_starts_from_the_exact_weights_with_a_fresh_optimiser(tmp_path, npz, monkeypatch):
    train(tiny_settings(npz, epochs=2), tmp_path / "source", log=None)
    seen = {}

    def capture(state, x, y):  # instead of training: what the run starts from
        seen["weights"] = {k: v.clone() for k, v in state.model.state_dict().items()}
        seen["optimizer"] = dict(state.optimizer.state)

    monkeypatch.setattr(lgn.train.loop._RunFolder, "run", capture)
    train(tiny_settings(npz, epochs=1, init_from=str(tmp_path / "source")), tmp_path / "warm", log=None)
    assert _same(seen["weights"], _weights(tmp_path / "source"))
    assert seen["optimizer"] == {}  # Adam's moments start at zero
    record = read_run_record(tmp_path / "warm")["init_from"]
    data = (tmp_path / "source" / "model.safetensors").read_bytes()
    assert record == {"run": str((tmp_path / "source").resolve()), "weights": "model.safetensors",
                      "sha256": hashlib.sha256(data).hexdigest(), "model_settings_changed": []}


def test_init_from_trains_on_and_its_record_survives_a_resume(tmp_path, npz):
    train(tiny_settings(npz, epochs=1), tmp_path / "source", log=None)
    settings = tiny_settings(npz, epochs=2, init_from=str(tmp_path / "source"))
    whole = train(settings, tmp_path / "whole", log=None)
    cold = train(tiny_settings(npz, epochs=2), tmp_path / "cold", log=None)
    assert whole.metrics[0]["train_loss"] != cold.metrics[0]["train_loss"]  # it did start elsewhere
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "cut", log=None, on_epoch_end=stop_after(1))
    (tmp_path / "source" / "model.safetensors").unlink()  # a resume reads its checkpoint, not the source again
    resumed = train({}, tmp_path / "cut", resume=True, log=None)
    assert _numbers(resumed.metrics) == _numbers(whole.metrics)
    assert read_run_record(tmp_path / "cut")["init_from"] == read_run_record(tmp_path / "whole")["init_from"]


def test_init_from_another_architecture_is_refused_in_one_line_naming_the_tensor(tmp_path, npz):
    train(tiny_settings(npz, epochs=1), tmp_path / "source", log=None)
    settings = tiny_settings(npz, epochs=1, init_from=str(tmp_path / "source"))
    settings["model"]["n_groups"] = 3
    with pytest.raises(ValueError) as e:
        train(settings, tmp_path / "warm", log=None)
    message = str(e.value)
    assert "\n" not in message
    assert message == (f"cannot start from {tmp_path / 'source'} (train.init_from): its weights do not fit this "
                       f"model: encoder.banks.0.base has shape (2, 1, 3, 3) there and (3, 1, 3, 3) here (model "
                       f"settings that differ: model.n_groups 2 → 3)")
    assert not (tmp_path / "warm").exists()


def test_init_from_a_folder_without_weights_is_refused(tmp_path, npz):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"cannot start from .*empty \(train.init_from\): it holds no "
                                                r"model.safetensors"):
        train(tiny_settings(npz, epochs=1, init_from=str(tmp_path / "empty")), tmp_path / "warm", log=None)


# ---------------------------------------------------------------- the best epoch

class _Scores:
    """Stands in for the trainer's evaluation: the scripted test accuracies, one per epoch in order."""

    def __init__(self, accuracies):
        self.accuracies = list(accuracies)

    def __call__(self, model, x, y, **kwargs):
        return {"loss": 1.0, "acc": self.accuracies.pop(0)}


def _snapshots(run, into):
    """on_epoch_end: the weights model.safetensors holds after each epoch."""
    def keep(record):
        into[record["epoch"]] = _weights(run)
    return keep


def test_the_best_checkpoint_is_the_first_argmax_of_the_recorded_metric(tmp_path, npz, monkeypatch):
    monkeypatch.setattr(lgn.train.loop, "evaluate", _Scores([0.5, 0.9, 0.7, 0.9]))
    run, snapshots = tmp_path / "run", {}
    result = train(tiny_settings(npz, epochs=4), run, log=None, on_epoch_end=_snapshots(run, snapshots))
    accuracies = [r["test_acc"] for r in result.metrics]
    best = accuracies.index(max(accuracies)) + 1
    assert best == 2
    assert read_run_record(run)["best"] == {"epoch": 2, "metric": "test_acc", "split": "test", "value": 0.9,
                                            "file": "model-best.safetensors", "chosen_from_epochs": [1, 4]}
    assert _same(_weights(run, "model-best.safetensors"), snapshots[2])
    assert _same(_weights(run), snapshots[4])  # model.safetensors stays the last epoch
    assert not _same(snapshots[2], snapshots[4])
    best_model = load_run(run, which="best")
    assert _same({k: v for k, v in best_model.model.state_dict().items()}, snapshots[2])


def test_the_best_checkpoint_survives_an_interruption_and_an_extension(tmp_path, npz, monkeypatch):
    run, snapshots = tmp_path / "run", {}
    monkeypatch.setattr(lgn.train.loop, "evaluate", _Scores([0.5, 0.9, 0.7, 0.8, 0.6]))
    with pytest.raises(Interrupt):
        train(tiny_settings(npz, epochs=4), run, log=None,
              on_epoch_end=lambda r: (_snapshots(run, snapshots)(r), stop_after(3)(r)))
    # an interruption may leave another epoch's weights in the file: the resume writes the best's again
    (run / "model-best.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    train({}, run, resume=True, log=None, on_epoch_end=_snapshots(run, snapshots))
    assert read_run_record(run)["best"]["epoch"] == 2
    assert _same(_weights(run, "model-best.safetensors"), snapshots[2])
    train({"train": {"epochs": 5}}, run, resume=True, extend=True, log=None,
          on_epoch_end=_snapshots(run, snapshots))
    record = read_run_record(run)
    assert record["best"]["epoch"] == 2 and record["best"]["chosen_from_epochs"] == [1, 5]
    assert _same(_weights(run, "model-best.safetensors"), snapshots[2])


def test_a_reconstruction_run_keeps_its_best_psnr(tmp_path):
    npz = write_tiny_npz(tmp_path / "bars.npz", labels=False)
    settings = tiny_settings(npz, epochs=2)
    settings["model"]["task"] = "reconstruct"
    result = train(settings, tmp_path / "run", log=None)
    psnrs = [r["test_psnr"] for r in result.metrics]
    best = read_run_record(tmp_path / "run")["best"]
    assert best["metric"] == "test_psnr" and best["epoch"] == psnrs.index(max(psnrs)) + 1
    assert best["value"] == max(psnrs)


def test_load_run_best_of_a_run_without_one_says_so(tmp_path, npz):
    train(tiny_settings(npz, epochs=1), tmp_path / "run", log=None)
    (tmp_path / "run" / "model-best.safetensors").unlink()  # as a run trained before lgn kept its best
    with pytest.raises(FileNotFoundError, match="no model-best.safetensors in .*: the run was trained before lgn "
                                                "kept its best epoch"):
        load_run(tmp_path / "run", which="best")
    with pytest.raises(ValueError, match="which must be 'last' or 'best', got 'first'"):
        load_run(tmp_path / "run", which="first")


def test_a_checkpoint_whose_best_weights_are_damaged_is_refused_by_name(tmp_path, npz):
    from tests.train.test_checkpoint import rewrite

    train(tiny_settings(npz, epochs=1), tmp_path / "run", log=None)
    key = "extra/best/encoder.banks.0.base"
    rewrite(tmp_path / "run", tensors=lambda named: named.__setitem__(key, torch.full_like(named[key], float("nan"))))
    with pytest.raises(ValueError, match=f"no intact checkpoint .*checkpoint-0: field {key} holds NaN or Inf"):
        train({"train": {"epochs": 2}}, tmp_path / "run", resume=True, extend=True, log=None)
    rewrite(tmp_path / "run", tensors=lambda named: named.pop(key))
    with pytest.raises(ValueError, match=f"checkpoint-0: field {key} must be the model's tensors"):
        train({"train": {"epochs": 2}}, tmp_path / "run", resume=True, extend=True, log=None)
