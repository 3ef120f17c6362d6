import json

import pytest
import torch

import lgn
from lgn.train.checkpoint import CHECKPOINT_META, CHECKPOINT_TENSORS, load_checkpoint, save_checkpoint

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
    path = tmp_path / CHECKPOINT_TENSORS
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    other, other_opt = _fresh()
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="does not match the digest"):
        load_checkpoint(tmp_path, other, other_opt)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_other_architecture_is_refused(tmp_path):
    model, opt = _trained()
    save_checkpoint(tmp_path, model, opt, epoch=1, step=2, config={})
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(tmp_path, *_fresh(n_groups=3))
