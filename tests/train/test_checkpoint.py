import json

import pytest
import torch

import lgn
from lgn.train.checkpoint import load_checkpoint, save_checkpoint

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
    save_checkpoint(tmp_path, model, opt, epoch=3, step=17, config={"train": {"epochs": 9}})
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
    save_checkpoint(tmp_path, model, opt, epoch=1, step=2, config={})
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
    save_checkpoint(tmp_path, model, opt, epoch=1, step=2, config={})
    _flip(tmp_path / CHECKPOINT_TENSORS)
    other, other_opt = _fresh()
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="no intact checkpoint .* does not match the digest"):
        load_checkpoint(tmp_path, other, other_opt)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_other_architecture_is_refused(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, epoch=1, step=2, config={})
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(tmp_path, *_fresh(n_groups=3))


def _two_saves(tmp_path):
    """Checkpoints of step 2 (older) and step 3 (newer) in the two slots; returns (model at 2, model at 3)."""
    model, opt = _trained(seed=0)
    first = save_checkpoint(tmp_path, model, opt, epoch=0, batch=2, step=2, config={})
    older = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    second = save_checkpoint(tmp_path, model, opt, epoch=0, batch=3, step=3, config={})
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
    assert save_checkpoint(tmp_path, model, opt, epoch=1, step=4, config={}) != newest


def test_state_extra_tensors_and_every_rng_come_back(tmp_path):
    import random

    import numpy as np

    model, opt = _trained()
    np.random.seed(5)
    random.seed(6)
    sums = torch.tensor([1.25, 7.0])
    save_checkpoint(tmp_path, model, opt, epoch=2, batch=4, step=20, config={}, state={"seen": 64},
                    tensors={"sums": sums})
    expected = (torch.rand(2), np.random.rand(2), random.random())
    np.random.seed(0)
    random.seed(0)
    torch.manual_seed(0)
    ckpt = load_checkpoint(tmp_path, *_fresh())
    assert (ckpt.epoch, ckpt.batch, ckpt.step, ckpt.state) == (2, 4, 20, {"seen": 64})
    assert torch.equal(ckpt.tensors["sums"], sums)
    assert torch.equal(torch.rand(2), expected[0])
    assert np.array_equal(np.random.rand(2), expected[1]) and random.random() == expected[2]
