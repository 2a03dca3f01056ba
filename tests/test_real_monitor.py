"""The training monitor's real-map check: the packaged EMD-5168 crop sharpened by the model in
training, its CC_mask against 3MFP equal to `evaluate --map`'s own measurement of that model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_thread")

GEOMETRY = {"voxel_size": 1.0, "patch": 16}


class _Logger:
    def __init__(self):
        self.records = []

    def log_metrics(self, metrics, step):
        self.records.append((step, dict(metrics)))


def test_logged_cc_mask_equals_realmaps_own_on_the_same_model(tmp_path):
    from densitydiff.sharpen.callbacks import RealMapMonitor
    from densitydiff.sharpen.checkpoint import export_sharpener
    from densitydiff.sharpen.config import load_config, to_dict
    from densitydiff.sharpen.module import SharpenModule
    from densitydiff.sharpen.realmap import EXAMPLE_MAP, EXAMPLE_MODEL, evaluate_real_map

    # a tiny DDPM with its default sampler at 2 steps (the same in the exported file)
    config = to_dict(load_config("tiny", {"model": "ddpm", "diffusion": {"sample_steps": 2}}))
    torch.manual_seed(0)
    module = SharpenModule(config, GEOMETRY)
    logger = _Logger()
    trainer = SimpleNamespace(loggers=[logger], global_step=7, is_global_zero=True)
    monitor = RealMapMonitor(every_n_steps=5, geometry=GEOMETRY)
    monitor.on_train_batch_end(trainer, module, None, None, 0)  # step 7: not a monitor step
    assert logger.records == []
    trainer.global_step = 10
    monitor.on_train_batch_end(trainer, module, None, None, 0)
    assert module.training  # put back in training mode
    [(step, metrics)] = logger.records
    assert step == 10 and set(metrics) == {"monitor/real_cc_mask", "monitor/real_cc_mask_gain"}

    # independent: the same weights exported as a model file, measured by evaluate --map's code
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": module.state_dict(),
                "hyper_parameters": {"config": config, "geometry": GEOMETRY}}, ckpt)  # fmt: skip
    model = export_sharpener(ckpt, tmp_path / "m.pt", voxel_size=1.0, patch=16,
                             training_structures=[], name="same")  # fmt: skip
    ev = evaluate_real_map(EXAMPLE_MAP, EXAMPLE_MODEL, [model], input_resolution=6.6)
    rows = {r["method"]: r for r in ev.rows}
    assert metrics["monitor/real_cc_mask"] == pytest.approx(rows["same"]["cc_mask"], abs=1e-6)
    gain = rows["same"]["cc_mask"] - rows["input"]["cc_mask"]
    assert metrics["monitor/real_cc_mask_gain"] == pytest.approx(gain, abs=1e-6)
    assert monitor.last_output.same_grid(ev.maps["input"])  # on the real map's grid
    assert 0.3 < rows["input"]["cc_mask"] < 0.9  # the map as deposited fits its model


def test_training_logs_the_real_map_when_asked_and_tiny_does_not(tmp_path):
    from sharpen_pairs import PairDataset, make_pair

    from densitydiff.sharpen.config import load_config
    from densitydiff.sharpen.train import train_sharpen

    assert load_config("tiny").trainer.monitor_real_map is False  # test runs stay fast
    assert load_config("small").trainer.monitor_real_map is True
    config = load_config("tiny", {"model": "unet", "trainer": {
        "max_steps": 2, "batch_size": 1, "val_every_n_steps": 2, "monitor_every_n_steps": 2,
        "log_every_n_steps": 1, "monitor_real_map": True}})  # fmt: skip
    run = train_sharpen(config, tmp_path / "run", dataset=PairDataset([make_pair(16, 0)]))
    assert run["global_step"] == 2
    csv = (next((tmp_path / "run" / "logs").glob("version_*")) / "metrics.csv").read_text()
    header = csv.splitlines()[0].split(",")
    assert "monitor/real_cc_mask" in header and "monitor/real_cc_mask_gain" in header
