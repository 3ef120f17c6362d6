import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lgn.groups.generators import ANNEAL_STEPS
from lgn.models import load_model
from lgn.train import epoch_order, evaluate, psnr, train
from lgn.train.evaluate import evaluate_run
from tests.train.helpers import Interrupt, stop_after, tiny_settings, write_tiny_npz


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _same_weights(a, b) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_run_folder_contents(tmp_path, npz):
    result = train(tiny_settings(npz, epochs=2), tmp_path / "run", log=None)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {"config.json", "metrics.jsonl", "model.safetensors", "model.json",
                                                "model-best.safetensors", "run.json",
                                                "preprocess.safetensors", "checkpoint-0.safetensors",
                                                "checkpoint-0.json", "checkpoint-1.safetensors",
                                                "checkpoint-1.json"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records == result.metrics
    for r in records:
        assert {"train_loss", "test_loss", "test_acc", "train_seconds"} <= set(r)
        assert 0 < r["train_seconds"] and 0 <= r["test_acc"] <= 1
    # the schedule of 2 epochs: milestones ⌊1⌋, ⌊1.5⌋, ⌊1.75⌋ all at epoch 1
    assert [r["lr"] for r in records] == pytest.approx([0.01, 0.00125])
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["in_channels"] == 1 and config["model"]["num_classes"] == 3
    assert config["data"]["name"] == f"npz:{npz}" and config["train"]["epochs"] == 2
    model = load_model(run)
    assert model.config.to_dict() == config["model"]
    # re-projection after every step: each base filter and generator has unit Frobenius norm
    for bank in model.encoder.banks:
        norms = bank.base.flatten(2).norm(dim=-1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
    # lgn eval reproduces the last epoch's test numbers
    again = evaluate_run(run)
    assert again["acc"] == pytest.approx(records[-1]["test_acc"])
    assert again["loss"] == pytest.approx(records[-1]["test_loss"], rel=1e-5)


def test_learns_the_tiny_task(tmp_path, npz):
    result = train(tiny_settings(npz, epochs=6), tmp_path / "run", log=None)
    assert result.metrics[-1]["train_loss"] < 0.7 * result.metrics[0]["train_loss"]


def test_deterministic_for_a_seed_on_cpu(tmp_path, npz):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(tiny_settings(npz, epochs=1, seed=seed), tmp_path / name, log=None)
    assert _same_weights(tmp_path / "a", tmp_path / "b")
    assert not _same_weights(tmp_path / "a", tmp_path / "c")


def _state(**train):
    from lgn.train.config import TrainConfig
    from lgn.train.loop import TrainState

    model = torch.nn.Linear(2, 2)
    t = TrainConfig(**train)
    return TrainState(model, torch.optim.Adam(model.parameters(), lr=t.lr), t, "classify", torch.device("cpu"))


@pytest.mark.parametrize("epochs, n_batches, milestones", [
    (8, 1, [4, 6, 7]), (8, 5, [20, 30, 35]), (2, 4, [4, 4, 4]), (3, 3, [3, 6, 6]), (10, 7, [35, 49, 56]),
    (1, 32, [32, 32, 32])])
def test_the_schedule_is_torchs_multistep_lr_per_step_at_the_milestones_in_steps(epochs, n_batches, milestones):
    state = _state(epochs=epochs)
    assert state.t.milestone_steps(n_batches) == milestones  # worked by hand: max(⌊f·epochs⌋, 1)·n
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.01)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.5)
    expected = []
    for _ in range(epochs * n_batches):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    got = [state.schedule(milestones, k).get_last_lr()[0] for k in range(epochs * n_batches)]
    assert got == expected  # exactly, γ = 0.5
    assert state.optimizer.param_groups[0]["lr"] == expected[-1]


def test_the_schedule_by_hand():
    state = _state(epochs=8)
    assert [state.schedule([4, 6, 7], k).get_last_lr()[0] for k in range(8)] == [0.01] * 4 + [0.005] * 2 + [
        0.0025, 0.00125]
    # γ = 0.1: lr·γ^n as before, to the last bit; multiplying by γ at each milestone (MultiStepLR) ends in
    # 0.0001 and 1e-05 instead
    state = _state(epochs=8, lr_gamma=0.1)
    assert [state.schedule([4, 6, 7], k).get_last_lr()[0] for k in range(8)] == [0.01] * 4 + [0.001] * 2 + [
        0.00010000000000000002, 1.0000000000000003e-05]


def test_an_epochs_record_holds_the_rate_of_its_last_step(npz):
    from lgn.data import fit_preprocessing, get_dataset
    from lgn.models import build_model
    from lgn.train import fit
    from lgn.train.config import TrainConfig
    from tests.train.helpers import TINY_MODEL

    data = get_dataset(f"npz:{npz}")
    x = fit_preprocessing(data.x_train)(data.x_train)
    model = build_model(in_channels=1, image_size=10, num_classes=3, **TINY_MODEL)
    # 3 epochs of 3 steps: milestones at steps 3, 6 and 6; epoch 2 ends on step 5 (index), epoch 3 on 8
    records = fit(model, x, data.y_train, TrainConfig(epochs=3, batch_size=16, progress=False))
    assert [r["lr"] for r in records] == [0.01, 0.005, 0.00125]


def test_one_epoch_trains_at_the_full_rate_and_says_so_once(tmp_path, npz):
    lines = []
    result = train(tiny_settings(npz, epochs=1), tmp_path / "run", log=None, warn=lines.append)
    assert [r["lr"] for r in result.metrics] == [0.01]
    assert lines == ["a degenerate learning-rate schedule for 1 epoch of 3 steps: train.lr_milestones 0.5, 0.75, "
                     "0.875 fall within the first epoch, the whole run, so the learning rate stays 0.01 throughout"]
    lines.clear()
    train(tiny_settings(npz, epochs=2), tmp_path / "two", log=None, warn=lines.append)
    assert lines == []


def test_a_first_batch_skipped_moves_the_schedule_without_a_torch_warning(tmp_path, npz, monkeypatch):
    import warnings

    _poison_loss(monkeypatch, {1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(tiny_settings(npz, epochs=3, on_nan="skip"), tmp_path / "run", log=None)
    assert not [w for w in caught if "lr_scheduler" in str(w.message)], [str(w.message) for w in caught]
    assert [r["lr"] for r in result.metrics] == [0.01, 0.005, 0.00125]
    assert [r["skipped_batches"] for r in result.metrics] == [1, 0, 0]


def test_a_checkpoint_from_before_milestones_in_steps_resumes_saying_where_its_rate_changes(tmp_path, npz,
                                                                                          monkeypatch):
    from tests.train.test_checkpoint import rewrite

    settings = tiny_settings(npz, epochs=1, checkpoint_every=2)  # 3 steps; milestones: steps 0, 0, 0 then; 3, 3, 3 now
    restore = _cut_after_saves(monkeypatch, 1)  # the checkpoint of step 2
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "run", log=None)
    restore()
    rewrite(tmp_path / "run", meta=lambda m: m["state"].pop("lr_milestones_in"))  # as the loop wrote it before
    lines = []
    train(settings, tmp_path / "run", resume=True, log=None, warn=lines.append)
    assert f"{tmp_path / 'run'} was checkpointed before the learning-rate milestones were kept out of the first " \
           f"epoch (steps [0, 0, 0] then); it continues with them at steps [3, 3, 3], so its rate differs from " \
           f"step 2 on" in lines, lines


def test_epoch_order_is_a_function_of_seed_and_epoch():
    a = epoch_order(50, 3, 7)
    assert sorted(a.tolist()) == list(range(50))
    assert torch.equal(a, epoch_order(50, 3, 7))
    assert not torch.equal(a, epoch_order(50, 3, 8)) and not torch.equal(a, epoch_order(50, 4, 7))



def test_interrupted_run_resumes_to_the_same_weights(tmp_path, npz):
    settings = tiny_settings(npz, epochs=3)
    full = train(settings, tmp_path / "full", log=None)
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "cut", log=None, on_epoch_end=stop_after(1))
    lines = []
    resumed = train({}, tmp_path / "cut", resume=True, log=lines.append)  # the folder's own config
    assert lines[0].startswith(f"resuming {tmp_path / 'cut'} after epoch 1 of 3")
    assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3]
    assert _same_weights(tmp_path / "cut", tmp_path / "full")
    for a, b in zip(full.metrics, resumed.metrics):
        assert a["test_loss"] == b["test_loss"] and a["step"] == b["step"]
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_run_resumes_after_its_annealed_generators_froze(tmp_path, npz):
    # once the choice is frozen the logits get no gradient and Adam stops counting their
    # steps; the checkpoint then holds two step counts, and that must still resume
    settings = tiny_settings(npz, epochs=6, batch_size=1)  # 48 steps an epoch: the anneal ends in epoch 5
    settings["model"]["generator"] = "select"
    full = train(settings, tmp_path / "full", log=None)
    assert full.metrics[4]["step"] > ANNEAL_STEPS

    with pytest.raises(Interrupt):
        train(settings, tmp_path / "cut", log=None, on_epoch_end=stop_after(5))
    lines, warnings = [], []
    resumed = train(settings, tmp_path / "cut", resume=True, log=lines.append, warn=warnings.append)
    assert warnings == [] and lines[0].startswith(f"resuming {tmp_path / 'cut'} after epoch 5 of 6")
    assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3, 4, 5, 6]
    assert _same_weights(tmp_path / "cut", tmp_path / "full")


FORMAT_3_RUN = Path(__file__).parent / "fixtures" / "format3-run"  # described in the test below


def test_a_run_stopped_by_the_loop_of_release_0_1_resumes(tmp_path, monkeypatch):
    """A checkpoint of format 3 (release 0.1's), written by the loop before TrainState, resumes.

    The fixture is the config and newest checkpoint of a run of 8 epochs on the
    tiny set (data.name npz:tiny.npz, batch 16, checkpoint every 2 steps, one
    thread) stopped right after its checkpoint of step 10 (epoch 4, batch 1). It
    resumes without a warning and ends as an uninterrupted run of this code:
    bit-identical on the machine that wrote it, within rounding elsewhere.
    """
    monkeypatch.chdir(tmp_path)
    write_tiny_npz(tmp_path / "tiny.npz")
    shutil.copytree(FORMAT_3_RUN, tmp_path / "old")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the count it was written with
    try:
        lines, warnings = [], []
        resumed = train({}, tmp_path / "old", resume=True, log=lines.append, warn=warnings.append)
        full = train(json.loads((FORMAT_3_RUN / "config.json").read_text()), tmp_path / "new", log=None)
    finally:
        torch.set_num_threads(threads)
    assert lines[0] == f"resuming {tmp_path / 'old'} in epoch 4 of 8, after batch 1 of 3" and warnings == []
    assert [r["epoch"] for r in resumed.metrics] == list(range(1, 9))
    assert [r["lr"] for r in resumed.metrics] == [r["lr"] for r in full.metrics] == [0.01] * 4 + [0.005] * 2 + [
        0.0025, 0.00125]
    for old, new in zip(resumed.metrics, full.metrics):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            assert old[key] == pytest.approx(new[key], rel=1e-4, abs=1e-6), (old["epoch"], key)


def test_resume_refuses_changed_settings(tmp_path, npz):
    with pytest.raises(Interrupt):
        train(tiny_settings(npz, epochs=3), tmp_path / "run", log=None, on_epoch_end=stop_after(1))
    with pytest.raises(ValueError, match="cannot resume .*train.lr: 0.01 → 0.5"):
        train({"train": {"lr": 0.5}}, tmp_path / "run", resume=True, log=None)
    # settings that do not change the numbers may change
    train({"train": {"eval_batch_size": 5}}, tmp_path / "run", resume=True, log=None)


def test_resume_checks_the_saved_config(tmp_path, npz):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"train": {"epochs": "many"}}')
    with pytest.raises(TypeError, match="train.epochs must be an integer, got 'many'"):
        train(tiny_settings(npz, epochs=1), run, resume=True, log=None)


def test_resume_without_checkpoint_starts_afresh(tmp_path, npz):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 7}\n')
    (run / "notes.txt").write_text("mine")
    result = train(tiny_settings(npz, epochs=1), run, resume=True, log=None)
    assert [r["epoch"] for r in result.metrics] == [1]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert (run / "notes.txt").read_text() == "mine"


def test_existing_folder_is_refused_and_untouched(tmp_path, npz):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("precious\n")
    with pytest.raises(FileExistsError, match="not empty; pass --resume .* or --force"):
        train(tiny_settings(npz, epochs=1), run, log=None)
    assert (run / "metrics.jsonl").read_text() == "precious\n"
    train(tiny_settings(npz, epochs=1), run, force=True, log=None)
    assert (run / "metrics.jsonl").read_text().startswith('{"epoch": 1')


def test_reconstruction_run(tmp_path):
    npz = write_tiny_npz(tmp_path / "unlabelled.npz", labels=False)
    settings = tiny_settings(npz, epochs=1)
    settings["model"]["task"] = "reconstruct"
    settings["data"]["zca"] = True
    result = train(settings, tmp_path / "run", log=None)
    record = result.metrics[-1]
    assert "test_psnr" in record and "test_acc" not in record and np.isfinite(record["test_psnr"])
    assert evaluate_run(tmp_path / "run")["psnr"] == pytest.approx(record["test_psnr"], rel=1e-5)


def test_psnr_by_hand():
    target = torch.zeros(2, 1, 2, 2)
    out = target.clone()
    out[0] += 0.1  # MSE 0.01 → 20 dB at peak 1
    out[1, 0, 0, 0] = 2.0  # MSE 4/4 = 1 → 20·log10(2) dB at peak 2
    torch.testing.assert_close(psnr(out, target, 1.0)[0], torch.tensor(20.0))
    torch.testing.assert_close(psnr(out, target, 2.0)[1], torch.tensor(20 * np.log10(2.0), dtype=torch.float32))


def test_evaluate_accuracy_by_hand():
    class Fixed(torch.nn.Module):
        def forward(self, x):  # class = the first pixel's sign
            v = x[:, 0, 0, 0]
            return torch.stack([-v, v], 1)
    x = torch.tensor([1.0, -1.0, 2.0, -3.0]).view(4, 1, 1, 1)
    y = torch.tensor([1, 0, 0, 0])
    result = evaluate(Fixed(), x, y, task="classify", batch_size=3)
    assert result["acc"] == 0.75
    expected = torch.nn.functional.cross_entropy(torch.stack([-x.flatten(), x.flatten()], 1), y)
    assert result["loss"] == pytest.approx(float(expected))


def test_cuda_refused_without_a_device(tmp_path, npz):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(tiny_settings(npz, epochs=1, device="cuda"), tmp_path / "run", log=None)
    assert not (tmp_path / "run").exists()


def _cut_after_saves(monkeypatch, n):
    """Make the n-th checkpoint save of the next run its last: the run stops right after writing it."""
    import lgn.train.loop

    save, calls = lgn.train.loop.save_checkpoint, []

    def save_then_stop(out, model, optimizer, checkpoint):
        save(out, model, optimizer, checkpoint)
        calls.append(checkpoint.step)
        if len(calls) == n:
            raise Interrupt

    monkeypatch.setattr(lgn.train.loop, "save_checkpoint", save_then_stop)
    return lambda: monkeypatch.setattr(lgn.train.loop, "save_checkpoint", save)


def _without_times(records):
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in records]


@pytest.mark.parametrize("cuts", [[1], [3, 1, 1]])
def test_resume_mid_epoch_gives_the_same_weights_and_metrics(tmp_path, npz, monkeypatch, cuts):
    settings = tiny_settings(npz, epochs=3, checkpoint_every=2)  # 3 batches an epoch: saves at 2, 3, 4, 6, 8, 9
    full = train(settings, tmp_path / "full", log=None)
    first = True
    for n in cuts:
        restore = _cut_after_saves(monkeypatch, n)
        with pytest.raises(Interrupt):
            train(settings, tmp_path / "cut", resume=not first, log=None)
        first = False
        restore()
    lines = []
    resumed = train(settings, tmp_path / "cut", resume=True, log=lines.append)
    assert lines[0].startswith("resuming")
    assert _same_weights(tmp_path / "cut", tmp_path / "full")
    assert _without_times(resumed.metrics) == _without_times(full.metrics)
    on_disk = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert _without_times(on_disk) == _without_times(full.metrics)


def test_resume_from_a_mid_epoch_checkpoint_says_where(tmp_path, npz, monkeypatch):
    settings = tiny_settings(npz, epochs=2, checkpoint_every=1)
    _cut_after_saves(monkeypatch, 2)
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "run", log=None)
    lines = []
    train(settings, tmp_path / "run", resume=True, log=lines.append)
    assert lines[0] == f"resuming {tmp_path / 'run'} in epoch 1 of 2, after batch 2 of 3"


def test_damaged_latest_checkpoint_resumes_from_the_previous_with_a_warning(tmp_path, npz, monkeypatch):
    settings = tiny_settings(npz, epochs=2, checkpoint_every=1)
    full = train(settings, tmp_path / "full", log=None)
    _cut_after_saves(monkeypatch, 4)  # steps 1, 2, 3 (epoch end), 4: slot 1 holds step 4
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "cut", log=None)
    path = tmp_path / "cut" / "checkpoint-1.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    warnings, lines = [], []
    resumed = train(settings, tmp_path / "cut", resume=True, log=lines.append, warn=warnings.append)
    assert len(warnings) == 1 and "checkpoint-1" in warnings[0] and "(step 3)" in warnings[0]
    assert lines[0].endswith("after epoch 1 of 2")
    assert _same_weights(tmp_path / "cut", tmp_path / "full")
    assert _without_times(resumed.metrics) == _without_times(full.metrics)


def test_no_intact_checkpoint_refuses_to_resume(tmp_path, npz, monkeypatch):
    settings = tiny_settings(npz, epochs=2)
    _cut_after_saves(monkeypatch, 1)
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "run", log=None)
    (tmp_path / "run" / "checkpoint-0.json").write_text("{")
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match="no intact checkpoint in .*checkpoint-0: unreadable"):
        train(settings, tmp_path / "run", resume=True, log=None)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == metrics  # nothing reset


def test_checkpoint_of_another_architecture_is_refused(tmp_path, npz):
    import shutil

    train(tiny_settings(npz, epochs=1), tmp_path / "a", log=None)
    other = tiny_settings(npz, epochs=1)
    other["model"]["n_groups"] = 3
    train(other, tmp_path / "b", log=None)
    for name in ("checkpoint-0.json", "checkpoint-0.safetensors"):
        shutil.copy(tmp_path / "b" / name, tmp_path / "a" / name)
    with pytest.raises(ValueError, match="another architecture"):
        train({}, tmp_path / "a", resume=True, log=None)


def _poison_loss(monkeypatch, steps):
    """The task loss is NaN at the given 1-based steps (counted over the whole run)."""
    import lgn.train.loop

    real, count = lgn.train.loop.task_loss, [0]

    def loss(*args):
        count[0] += 1
        value = real(*args)
        return value * float("nan") if count[0] in steps else value

    monkeypatch.setattr(lgn.train.loop, "task_loss", loss)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, npz, monkeypatch):
    _poison_loss(monkeypatch, {5})
    settings = tiny_settings(npz, epochs=3, checkpoint_every=2)
    with pytest.raises(ValueError, match=r"^non-finite loss at step 5") as e:
        train(settings, tmp_path / "run", log=None)
    message = str(e.value)
    assert "at step 5 (epoch 2, batch 2)" in message and "keeps the checkpoint of step 4" in message
    assert "--on-nan skip" in message
    monkeypatch.undo()
    lines = []
    train(settings, tmp_path / "run", resume=True, log=lines.append)  # the checkpoint of step 4 is good
    assert lines[0].endswith("in epoch 2 of 3, after batch 1 of 3")
    train(settings, tmp_path / "full", log=None)
    assert _same_weights(tmp_path / "run", tmp_path / "full")


def test_non_finite_parameter_is_named_and_never_checkpointed(tmp_path, npz, monkeypatch):
    import lgn.train.loop

    real_build, steps = lgn.train.loop.build_model, [0]

    def build(config):
        model = real_build(config)
        project = model.project_

        def project_then_break():
            project()
            steps[0] += 1
            if steps[0] == 4:
                with torch.no_grad():
                    model.encoder.banks[1].generator.weight[0, 0, 0, 0] = float("inf")

        model.project_ = project_then_break
        return model

    monkeypatch.setattr(lgn.train.loop, "build_model", build)
    with pytest.raises(ValueError) as e:
        train(tiny_settings(npz, epochs=3, checkpoint_every=1), tmp_path / "run", log=None)
    assert str(e.value).startswith("non-finite values in encoder.banks.1.generator.weight after step 4 "
                                   "(epoch 2, batch 1); the run folder keeps the checkpoint of step 3")
    for slot in ("checkpoint-0", "checkpoint-1"):
        state = load_file(tmp_path / "run" / f"{slot}.safetensors")
        assert all(torch.isfinite(v).all() for k, v in state.items() if v.is_floating_point()), slot


def test_skip_counts_batches_and_restores_batch_norm(tmp_path, npz, monkeypatch):
    _poison_loss(monkeypatch, {2, 5})
    result = train(tiny_settings(npz, epochs=2, on_nan="skip"), tmp_path / "run", log=None)
    assert [r["skipped_batches"] for r in result.metrics] == [1, 1]
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["test_loss"]) for r in result.metrics)
    state = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # epoch 1's statistics recomputed over its 3 batches, then epoch 2's 3 batches less the one skipped
    assert int(state["encoder.norms.0.num_batches_tracked"]) == 5


def test_skip_still_stops_after_too_many_in_a_row(tmp_path, npz, monkeypatch):
    from lgn.train.loop import MAX_SKIPPED_IN_A_ROW

    _poison_loss(monkeypatch, set(range(2, 100)))
    with pytest.raises(ValueError, match=f"the {MAX_SKIPPED_IN_A_ROW}th batch skipped in a row"):
        train(tiny_settings(npz, epochs=5, on_nan="skip"), tmp_path / "run", log=None)


def test_a_key_added_since_the_checkpoint_counts_as_its_default():
    from lgn.train.config import RunConfig
    from lgn.train.loop import _changes

    new = RunConfig.from_dict({}).to_dict()
    old = {section: dict(table) for section, table in new.items()}
    del old["model"]["architecture"]  # a run saved before the key existed
    assert _changes(old, new) == []
    new["model"]["architecture"] = "cnn"
    assert _changes(old, new) == ["model.architecture: 'lgn' → 'cnn'"]


def test_first_epoch_ends_with_exact_batch_norm_statistics_and_the_same_weights(tmp_path, npz, monkeypatch):
    # torch's running variance starts at 1 against codes of variance ~1e-4 and follows them by 0.1 a step: the
    # first epoch's evaluation saw chance. Recomputed over the training set, they fit the epoch's weights;
    # training computes exactly what it did.
    from lgn.data import fit_preprocessing, get_dataset
    from lgn.train import loop

    train(tiny_settings(npz, epochs=1), tmp_path / "exact", log=None)
    monkeypatch.setattr(loop, "recompute_batch_norm_", lambda *args: None)
    train(tiny_settings(npz, epochs=1), tmp_path / "torch", log=None)
    exact = load_file(tmp_path / "exact" / "model.safetensors")
    plain = load_file(tmp_path / "torch" / "model.safetensors")
    stats = [k for k in exact if "running_" in k or "num_batches" in k]
    assert stats and all(torch.equal(exact[k], plain[k]) for k in exact if k not in stats)
    model = load_model(tmp_path / "exact")
    data = get_dataset(f"npz:{npz}")
    x = fit_preprocessing(data.x_train)(data.x_train)
    for norm in model.encoder.norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        for xb in x.tensor_split(3):  # 48 examples, batch 16
            model(xb)
    for i, norm in enumerate(model.encoder.norms):
        torch.testing.assert_close(norm.running_var, exact[f"encoder.norms.{i}.running_var"], rtol=1e-5, atol=0)
        torch.testing.assert_close(norm.running_mean, exact[f"encoder.norms.{i}.running_mean"], rtol=1e-5, atol=1e-9)
    assert float(plain["encoder.norms.0.running_var"].min()) > 0.4  # torch's: 0.9³ of the initial 1 left


def test_fit_is_the_loop_of_train(tmp_path, npz):
    # in memory, the same recipe: the same weights as the run folder's model, epoch for epoch
    from lgn.data import fit_preprocessing, get_dataset
    from lgn.models import build_model
    from lgn.train import RunConfig, fit
    from lgn.train.config import resolve

    settings = tiny_settings(npz, epochs=2)
    train(settings, tmp_path / "run", log=None)
    data = get_dataset(f"npz:{npz}")
    config = resolve(settings, data)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model)
    seen = []
    records = fit(model, fit_preprocessing(data.x_train)(data.x_train), data.y_train, config.train,
                  on_epoch_end=seen.append)
    assert records == seen and [r["epoch"] for r in records] == [1, 2]
    saved = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in records] == [r["train_loss"] for r in saved]
    expected = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_read_metrics_names_a_damaged_line_or_skips_it(tmp_path):
    from lgn.runs import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "train_lo\n[3]\n')
    with pytest.raises(ValueError, match="line 2"):
        read_metrics(tmp_path)
    assert read_metrics(tmp_path, skip_damaged=True) == [{"epoch": 1}]


class Killed(BaseException):
    """A simulated SIGKILL: nothing catches it and no code of the run runs after it."""


def _kill_at_write(monkeypatch, point: int):
    """Stop the run at ``point`` of the first checkpoint's writes: per file (tensors, then JSON) 0: its
    temporary file created, 1: half written, 2: written and synced, 3: renamed into place."""
    import os

    import lgn.train.checkpoint

    write, count = lgn.train.checkpoint.atomic_write, [0]

    def at(step):
        if count[0] == point:
            raise Killed
        count[0] += 1

    def atomic_write(path, data):
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            at("created")
            f.write(data[:len(data) // 2])
            f.flush()
            at("half written")
            f.write(data[len(data) // 2:])
            f.flush()
            os.fsync(f.fileno())
        at("written")
        os.replace(tmp, path)
        at("renamed")

    monkeypatch.setattr(lgn.train.checkpoint, "atomic_write", atomic_write)
    return lambda: monkeypatch.setattr(lgn.train.checkpoint, "atomic_write", write)


@pytest.mark.parametrize("every", [None, 2])  # the first checkpoint at the first epoch's end, or mid-epoch
@pytest.mark.parametrize("point", range(8))
def test_a_kill_at_any_write_of_the_first_checkpoint_leaves_a_resumable_run(tmp_path, npz, monkeypatch, every,
                                                                          point):
    settings = tiny_settings(npz, epochs=2, checkpoint_every=every)
    full = train(settings, tmp_path / "full", log=None)
    restore = _kill_at_write(monkeypatch, point)
    with pytest.raises(Killed):
        train(settings, tmp_path / "cut", log=None)
    restore()
    warnings, lines = [], []
    resumed = train(settings, tmp_path / "cut", resume=True, log=lines.append, warn=warnings.append)
    complete = point == 7  # killed right after the JSON's rename: the checkpoint is whole
    assert lines[0].startswith("resuming") == complete, lines
    assert any("never completed" in w for w in warnings) == (point in (3, 4, 5, 6)), warnings
    assert _same_weights(tmp_path / "cut", tmp_path / "full")
    assert _without_times(resumed.metrics) == _without_times(full.metrics)
    on_disk = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert _without_times(on_disk) == _without_times(full.metrics)
    assert not list((tmp_path / "cut").glob("*.tmp"))


POSITION = {  # edits of a run's mid-epoch checkpoint (epoch 0, batch 2 of 3, step 2) and the field named
    "step ahead of the position": (lambda m: m.update(step=8), "field step must be epoch·3 \\+ batch = 2, got 8"),
    "batch beyond the epoch": (lambda m: m.update(batch=3, step=3), "field batch must be in 0..2"),
    "epoch beyond the run": (lambda m: m.update(epoch=9, step=29), "field epoch must be in 0..2"),
    "faked metrics": (lambda m: m["state"].update(metrics=[{"epoch": 1, "test_acc": 0.99}]),
                      "field state.metrics must be a list of 0"),
    "seen beyond the batches": (lambda m: m["state"].update(seen=10 ** 9), "field state.seen must be"),
    "seconds a string": (lambda m: m["state"].update(seconds="1"), "field state.seconds"),
    "milestones in epochs": (lambda m: m["state"].update(lr_milestones_in="epochs"),
                             "field state.lr_milestones_in must be 'steps'"),
    "an extension to other epochs": (lambda m: m["state"].update(extended=[{"from_epochs": 1, "to_epochs": 5,
                                                                            "step": 0}]),
                                     "field state.extended must end at the run's 2 epochs, got 5"),
    "an extension of no shape": (lambda m: m["state"].update(extended=[{"from_epochs": 1}]),
                                 "field state.extended\\[0\\] must be {from_epochs, to_epochs, step}"),
    "an extension ahead of the run": (lambda m: m["state"].update(extended=[{"from_epochs": 1, "to_epochs": 2,
                                                                             "step": 9}]),
                                      "field state.extended\\[0\\] must extend the run .* at a step in 0..2"),
    "the best chosen from a later epoch": (lambda m: m["state"].update(best_from=5),
                                           "field state.best_from must be an integer in 1..1, got 5"),
}


@pytest.mark.parametrize("case", POSITION)
def test_a_position_the_run_cannot_have_reached_is_refused_by_name(tmp_path, npz, monkeypatch, case):
    from tests.train.test_checkpoint import rewrite

    edit, message = POSITION[case]
    settings = tiny_settings(npz, epochs=2, checkpoint_every=2)
    _cut_after_saves(monkeypatch, 1)
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "run", log=None)
    rewrite(tmp_path / "run", meta=edit)
    metrics = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    with pytest.raises(ValueError, match=f"no intact checkpoint .*checkpoint-0: {message}"):
        train(settings, tmp_path / "run", resume=True, log=None)
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == metrics


def test_resuming_with_another_thread_count_warns(tmp_path, npz, monkeypatch):
    settings = tiny_settings(npz, epochs=2)
    _cut_after_saves(monkeypatch, 1)
    with pytest.raises(Interrupt):
        train(settings, tmp_path / "run", log=None)
    threads = torch.get_num_threads()
    warnings = []
    try:
        torch.set_num_threads(threads + 1)
        train(settings, tmp_path / "run", resume=True, log=None, warn=warnings.append)
    finally:
        torch.set_num_threads(threads)
    assert len(warnings) == 1 and f"trained with {threads} CPU threads" in warnings[0], warnings


def test_an_evaluation_that_overflows_float32_stops_the_run_and_metrics_stay_strict_json(tmp_path):
    """One pixel at 3e38 (float32 holds it): the PSNR of its reconstruction overflows to NaN."""
    x = np.random.default_rng(0).random((48, 10, 10)).astype(np.float32)
    x[0, 0, 0] = 3e38
    np.savez(tmp_path / "big.npz", x_train=x, x_test=x[:8].copy())
    settings = tiny_settings(tmp_path / "big.npz", epochs=1)
    settings["model"]["task"] = "reconstruct"
    with pytest.raises(ValueError, match=r"non-finite test_psnr \(nan\) in the evaluation after epoch 1"):
        train(settings, tmp_path / "run", log=None)
    metrics = tmp_path / "run" / "metrics.jsonl"
    assert not metrics.exists() or metrics.read_text() == ""


def test_metrics_refuse_a_non_finite_value(tmp_path):
    from lgn.runs import append_metrics, write_metrics

    with pytest.raises(ValueError):
        append_metrics(tmp_path, {"epoch": 1, "test_psnr": float("nan")})
    with pytest.raises(ValueError):
        write_metrics(tmp_path, [{"epoch": 1, "test_loss": float("inf")}])
    assert not (tmp_path / "metrics.jsonl").exists()


def test_eval_on_data_that_overflows_float32_is_an_error_not_nan(tmp_path, npz):
    settings = tiny_settings(npz, epochs=1)
    settings["model"]["task"] = "reconstruct"
    train(settings, tmp_path / "run", log=None)
    x = np.random.default_rng(0).random((8, 10, 10)).astype(np.float32)
    x[0, 0, 0] = 1e37  # standardised by the run's preprocessing it stays finite; its square does not
    np.savez(tmp_path / "big.npz", x_train=x, x_test=x)
    with pytest.raises(ValueError, match=r"gave a non-finite (loss|psnr) \((nan|inf)\)"):
        evaluate_run(tmp_path / "run", dataset=f"npz:{tmp_path / 'big.npz'}")


def test_epoch_lines_show_the_expected_time_left(tmp_path, npz):
    lines = []
    train(tiny_settings(npz, epochs=3), tmp_path / "run", log=lines.append)
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3
    assert all(" left)" in line for line in epochs[:2]) and " left)" not in epochs[2]


def test_bf16_precision_trains_with_float32_weights(tmp_path, npz):
    result = train(tiny_settings(npz, epochs=6, precision="bf16"), tmp_path / "run", log=None)
    assert result.metrics[-1]["train_loss"] < 0.7 * result.metrics[0]["train_loss"]
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert {v.dtype for k, v in weights.items() if v.is_floating_point()} == {torch.float32}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == "bf16"
