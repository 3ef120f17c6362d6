import json

import pytest
import torch

import lgn
from lgn.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

CHECKPOINT_META, CHECKPOINT_TENSORS = "checkpoint-0.json", "checkpoint-0.safetensors"

TINY = dict(n_layers=2, n_groups=2, group_size=2, kernel_size=3, image_size=8)


def _trained(seed=0, **overrides):
    torch.manual_seed(seed)
    model = lgn.build_model(**{**TINY, **overrides})
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(2):
        x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
        loss = torch.nn.functional.cross_entropy(model(x), y) + model.regularization()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.project_()
    return model, opt


def _fresh(seed=1, **overrides):
    torch.manual_seed(seed)
    model = lgn.build_model(**{**TINY, **overrides})
    return model, torch.optim.Adam(model.parameters(), lr=0.5)


def test_round_trip_restores_model_optimizer_and_rng(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=3, step=17, config={"train": {"epochs": 9}}))
    after_save = torch.rand(3)
    other, other_opt = _fresh()
    ckpt = load_checkpoint(tmp_path, other, other_opt)
    assert (ckpt.epoch, ckpt.step, ckpt.config) == (3, 17, {"train": {"epochs": 9}})
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k
    s, t = opt.state_dict(), other_opt.state_dict()
    assert s["param_groups"] == t["param_groups"]  # lr 0.01 restored over the fresh optimiser's 0.5
    for i in s["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s["state"][i][name], t["state"][i][name])
    assert torch.equal(torch.rand(3), after_save)  # the RNG continues where it was saved


def test_files_are_safetensors_and_json(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    meta = json.loads((tmp_path / CHECKPOINT_META).read_text())
    assert meta["format"] == "lgn-checkpoint" and len(meta["sha256"]) == 64
    header_len = int.from_bytes((tmp_path / CHECKPOINT_TENSORS).read_bytes()[:8], "little")
    header = json.loads((tmp_path / CHECKPOINT_TENSORS).read_bytes()[8:8 + header_len])
    assert "rng/torch" in header and any(k.startswith("optimizer/") for k in header)
    assert not list(tmp_path.glob("*.tmp"))


def test_no_checkpoint_is_none(tmp_path):
    assert load_checkpoint(tmp_path, *_fresh()) is None


def test_damaged_tensor_file_is_detected(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    _flip(tmp_path / CHECKPOINT_TENSORS)
    other, other_opt = _fresh()
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="no intact checkpoint .* does not match the digest"):
        load_checkpoint(tmp_path, other, other_opt)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_other_architecture_is_refused(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(tmp_path, *_fresh(n_groups=3))


def _two_saves(tmp_path):
    """Checkpoints of step 2 (older) and step 3 (newer) in the two slots; returns (model at 2, model at 3)."""
    model, opt = _trained(seed=0)
    first = save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=0, batch=2, step=2, config={}))
    older = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    second = save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=0, batch=3, step=3, config={}))
    assert {first, second} == {"checkpoint-0", "checkpoint-1"}
    return older, {k: v.clone() for k, v in model.state_dict().items()}, second


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path, where=-5):
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))


def _flip_json_value(path):  # still valid JSON: only the digest can tell
    path.write_text(path.read_text().replace('"step": 3', '"step": 4'))


@pytest.mark.parametrize("damage", ["truncated tensors", "truncated json", "flipped tensor byte",
                                    "flipped json value", "json of another save", "missing tensors"])
def test_damaged_newest_falls_back_to_the_older_with_a_warning(tmp_path, damage):
    older, newer, slot = _two_saves(tmp_path)
    tensors, meta = tmp_path / f"{slot}.safetensors", tmp_path / f"{slot}.json"
    if damage == "truncated tensors":
        _truncate(tensors)
    elif damage == "truncated json":
        _truncate(meta)
    elif damage == "flipped tensor byte":
        _flip(tensors)
    elif damage == "flipped json value":
        _flip_json_value(meta)
    elif damage == "json of another save":  # a pair from two saves: the tensor digest differs
        other = "checkpoint-0" if slot == "checkpoint-1" else "checkpoint-1"
        meta.write_bytes((tmp_path / f"{other}.json").read_bytes())
    else:
        tensors.unlink()
    model, opt = _fresh()
    ckpt = load_checkpoint(tmp_path, model, opt)
    assert ckpt.step == 2 and ckpt.batch == 2 and ckpt.slot != slot
    assert len(ckpt.warnings) == 1 and slot in ckpt.warnings[0] and "(step 2)" in ckpt.warnings[0]
    assert all(torch.equal(older[k], v) for k, v in model.state_dict().items())


def test_intact_newest_is_used_without_warning(tmp_path):
    _, newer, slot = _two_saves(tmp_path)
    model, opt = _fresh()
    ckpt = load_checkpoint(tmp_path, model, opt)
    assert (ckpt.step, ckpt.slot, ckpt.warnings) == (3, slot, [])
    assert all(torch.equal(newer[k], v) for k, v in model.state_dict().items())


def test_all_damaged_is_an_error_not_a_fresh_start(tmp_path):
    _two_saves(tmp_path)
    for slot in ("checkpoint-0", "checkpoint-1"):
        _flip(tmp_path / f"{slot}.safetensors")
    model, opt = _fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="no intact checkpoint .*checkpoint-0: .*; checkpoint-1: "):
        load_checkpoint(tmp_path, model, opt)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_save_without_a_slot_keeps_the_newest_intact_one(tmp_path):
    _, _, newest = _two_saves(tmp_path)
    model, opt = _trained(seed=2)
    assert save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=4, config={})) != newest


def test_state_extra_tensors_and_every_rng_come_back(tmp_path):
    import random

    import numpy as np

    model, opt = _trained()
    np.random.seed(5)
    random.seed(6)
    sums = torch.tensor([1.25, 7.0])
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=2, batch=4, step=20, config={}, state={"seen": 64},
                                                     tensors={"sums": sums}))
    expected = (torch.rand(2), np.random.rand(2), random.random())
    np.random.seed(0)
    random.seed(0)
    torch.manual_seed(0)
    ckpt = load_checkpoint(tmp_path, *_fresh())
    assert (ckpt.epoch, ckpt.batch, ckpt.step, ckpt.state) == (2, 4, 20, {"seen": 64})
    assert torch.equal(ckpt.tensors["sums"], sums)
    assert torch.equal(torch.rand(2), expected[0])
    assert np.array_equal(np.random.rand(2), expected[1]) and random.random() == expected[2]


# ---------------------------------------------------------------- checkpoints that would lie

def rewrite(directory, slot="checkpoint-0", meta=None, tensors=None, digests=True):
    """Edit a saved checkpoint: ``meta(dict)`` and ``tensors(dict)`` change it in place; digests made to match."""
    from safetensors.torch import load, save

    from lgn.train.checkpoint import _meta_digest

    meta_path, tensor_path = directory / f"{slot}.json", directory / f"{slot}.safetensors"
    saved, named = json.loads(meta_path.read_text()), load(tensor_path.read_bytes())
    if tensors is not None:
        tensors(named)
    data = save(named)
    if meta is not None:
        meta(saved)
    if digests:
        import hashlib

        saved["sha256"] = hashlib.sha256(data).hexdigest()
        if "meta_sha256" in saved:  # a legacy checkpoint without one stays without
            saved["meta_sha256"] = _meta_digest(saved)
    tensor_path.write_bytes(data)
    meta_path.write_text(json.dumps(saved))


def _set(key, value):
    return lambda meta: meta.__setitem__(key, value)


def _drop(key):
    return lambda meta: meta.pop(key)


def _first(prefix):
    return lambda named: next(k for k in sorted(named) if k.startswith(prefix))


def _tensor_edit(prefix, change):
    def edit(named):
        key = _first(prefix)(named)
        if change is None:
            del named[key]
        else:
            named[key] = change(named[key])
    return edit


def _drop_all(prefix):
    return lambda named: [named.pop(k) for k in [k for k in named if k.startswith(prefix)]]


LYING = {  # (meta edit, tensors edit, the field the error must name)
    "step missing": (_drop("step"), None, "field step is missing"),
    "optimizer missing": (_drop("optimizer"), None, "field optimizer is missing"),
    "config missing": (_drop("config"), None, "field config is missing"),
    "state a list": (_set("state", [1, 2]), None, "field state must be an object"),
    "negative step": (_set("step", -1), None, "field step must be in 0.."),
    "step a string": (_set("step", "2"), None, "field step must be an integer"),
    "step true": (_set("step", True), None, "field step must be an integer"),
    "negative batch": (_set("batch", -4), None, "field batch must be in 0.."),
    "huge batch": (_set("batch", 10 ** 12), None, "field batch cannot exceed"),
    "zero threads": (_set("threads", 0), None, "field threads must be in 1.."),
    "config section a list": (_set("config", {"train": [1]}), None, "field config.train must be an object"),
    "rng position out of range": (lambda m: m["rng"]["numpy"].__setitem__(1, 700), None, "rng.numpy position"),
    "param group lr a string": (lambda m: m["optimizer"]["param_groups"][0].__setitem__("lr", "big"), None,
                                r"optimizer.param_groups\[0\].lr must be a finite number"),
    "param group of other params": (lambda m: m["optimizer"]["param_groups"][0].__setitem__("params", [0]), None,
                                    r"param_groups\[0\].params must be"),
    "int32 weights": (None, _tensor_edit("model/", lambda t: t.to(torch.int32)), "must be float32, got int32"),
    "nan weights": (None, _tensor_edit("model/", lambda t: torch.full_like(t, float("nan"))), "NaN or Inf"),
    "short torch rng": (None, lambda n: n.__setitem__("rng/torch", n["rng/torch"][:100]), "field rng/torch must have shape"),
    "numpy rng of floats": (None, lambda n: n.__setitem__("rng/numpy", n["rng/numpy"].double()), "rng/numpy must be int64"),
    "adam state of the wrong shape": (None, _tensor_edit("optimizer/0/exp_avg", lambda t: t.flatten()[:3]),
                                      "optimizer/0/exp_avg.* must have shape"),
    "adam step beyond the steps taken": (None, _tensor_edit("optimizer/0/step", lambda t: t + 100),
                                         "optimizer/0/step must be a whole number in 0..2"),
    "adam state of one parameter removed": (None, _drop_all("optimizer/1/"), "optimizer.state_keys lists"),
    "adam state of one parameter removed, listing too": (lambda m: m["optimizer"]["state_keys"].pop("1"),
                                                         _drop_all("optimizer/1/"), "state for every parameter"),
    "adam state all removed": (None, _drop_all("optimizer/"), "optimizer.state_keys lists"),
    "adam exp_avg_sq removed, listing too": (lambda m: m["optimizer"]["state_keys"]["0"].remove("exp_avg_sq"),
                                             _drop_all("optimizer/0/exp_avg_sq"),
                                             r"optimizer/0 must hold \['exp_avg', 'exp_avg_sq', 'step'\]"),
    "no state_keys": (lambda m: m["optimizer"].pop("state_keys"), None, "field optimizer.state_keys is missing"),
    "threads missing": (_drop("threads"), None, "field threads is missing"),
    "unknown tensor": (None, lambda n: n.__setitem__("weights/x", torch.zeros(1)), "weights/ is not a part"),
}


@pytest.mark.parametrize("case", LYING)
def test_a_checkpoint_with_matching_digests_but_a_wrong_field_is_refused_by_name(tmp_path, case):
    edit_meta, edit_tensors, message = LYING[case]
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=0, batch=2, step=2, config={"train": {}},
                                                     state={"seen": 8}))
    rewrite(tmp_path, meta=edit_meta, tensors=edit_tensors)
    other, other_opt = _fresh()
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=f"no intact checkpoint .*checkpoint-0: .*{message}"):
        load_checkpoint(tmp_path, other, other_opt)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    assert not other_opt.state  # the optimiser untouched too


def test_the_unedited_rewrite_is_accepted(tmp_path):
    """The helper above changes nothing by itself: each refusal is the edit's doing."""
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=0, batch=2, step=2, config={"train": {}}))
    rewrite(tmp_path)
    assert load_checkpoint(tmp_path, *_fresh()).step == 2


@pytest.mark.parametrize("version", [1, 2])
def test_a_format_from_before_release_0_1_is_refused_in_one_line_naming_the_file(tmp_path, version):
    """Formats 1 and 2 are not read, digests or not: an edited version number switches no check off."""
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=0, batch=1, step=2, config={}))
    rewrite(tmp_path, meta=lambda m: m.update(version=version))
    with pytest.raises(ValueError) as raised:
        load_checkpoint(tmp_path, *_fresh())
    assert str(raised.value) == (f"{tmp_path / CHECKPOINT_META} is checkpoint format {version}, which predates "
                                 f"release 0.1; start the run again (train with --force, which deletes the run's "
                                 f"files)")


def test_a_format_1_single_checkpoint_is_refused_naming_it(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    for ext in (".json", ".safetensors"):  # format 1 kept its one checkpoint under this name
        (tmp_path / f"checkpoint-0{ext}").rename(tmp_path / f"checkpoint{ext}")
    with pytest.raises(ValueError, match=r"checkpoint\.json is checkpoint format 1, which predates release 0\.1"):
        load_checkpoint(tmp_path, *_fresh())


def test_a_format_2_slot_beside_an_intact_one_is_passed_over_with_a_warning(tmp_path):
    _, newer, slot = _two_saves(tmp_path)
    other = "checkpoint-0" if slot == "checkpoint-1" else "checkpoint-1"
    rewrite(tmp_path, other, meta=lambda m: m.update(version=2))
    ckpt = load_checkpoint(tmp_path, *_fresh())
    assert ckpt.slot == slot and len(ckpt.warnings) == 1 and "format 2, which predates release 0.1" in ckpt.warnings[0]


def test_a_format_from_a_newer_lgn_is_refused(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    rewrite(tmp_path, meta=lambda m: m.update(version=9))
    with pytest.raises(ValueError, match="checkpoint-0: an lgn checkpoint of format 9; this lgn reads format 3"):
        load_checkpoint(tmp_path, *_fresh())


def test_a_learning_rate_schedule_is_neither_saved_nor_compared(tmp_path):
    """lr_scheduler adds 'initial_lr' to the optimiser's groups; a schedule is placed again from the position."""
    model, opt = _trained()
    torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    groups = json.loads((tmp_path / CHECKPOINT_META).read_text())["optimizer"]["param_groups"]
    assert "initial_lr" in opt.param_groups[0] and all("initial_lr" not in g for g in groups)
    assert load_checkpoint(tmp_path, *_fresh()).step == 2  # into an optimiser without a schedule
    other, other_opt = _fresh()
    torch.optim.lr_scheduler.StepLR(other_opt, step_size=1)
    assert load_checkpoint(tmp_path, other, other_opt).step == 2  # and into one with


def test_the_thread_count_is_recorded(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    assert load_checkpoint(tmp_path, *_fresh()).threads == torch.get_num_threads()


def test_a_first_checkpoint_never_completed_is_no_checkpoint(tmp_path):
    from lgn.train.checkpoint import never_completed

    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, Checkpoint(epoch=1, step=2, config={}))
    (tmp_path / CHECKPOINT_META).unlink()
    assert never_completed(tmp_path) and load_checkpoint(tmp_path, *_fresh()) is None
    (tmp_path / "checkpoint-1.json").write_text("{}")  # a second slot: the first was complete once
    assert not never_completed(tmp_path)
    with pytest.raises(ValueError, match="no intact checkpoint .*--force"):
        load_checkpoint(tmp_path, *_fresh())
