"""The refine engine's networks and perceptual loss: shapes, dtypes, the identity start, VGG19 weights."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from enliven.engines.crops import MASK_NAMES  # noqa: E402
from enliven.neural.config import RefineConfig  # noqa: E402
from enliven.neural.discriminator import MultiScaleDiscriminator  # noqa: E402
from enliven.neural.generator import Generator  # noqa: E402
from enliven.neural.vgg import VGGWeightsError, load_vgg19, vgg19_features  # noqa: E402

TINY = RefineConfig(side=64, generator_channels=8, generator_downsamples=2, generator_max_channels=16,
                    generator_res_blocks=1, generator_groups=4, discriminator_channels=8, discriminator_layers=2,
                    discriminator_scales=2)
WIDER = RefineConfig(side=128, generator_channels=16, generator_downsamples=4, generator_max_channels=64,
                     generator_res_blocks=2, discriminator_channels=16, discriminator_layers=3, discriminator_scales=3)


def inputs(config: RefineConfig, batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    side = config.side

    def rand(channels: int) -> torch.Tensor:
        return torch.rand(batch, channels, side, side, generator=generator) * 2 - 1

    return {"warped": rand(3), "source": rand(3), "displacement": 0.05 * rand(2),
            "masks": (rand(len(MASK_NAMES)) + 1) / 2}


@pytest.mark.parametrize("config", [TINY, WIDER], ids=["64px", "128px"])
def test_generator_and_discriminator_shapes(config):
    torch.manual_seed(0)
    batch = inputs(config)
    generator = Generator(config)
    noise = torch.randn(2, config.noise_channels, config.side, config.side)
    with torch.no_grad():
        refined, mask = generator(**batch, noise=noise)
    assert refined.shape == (2, 3, config.side, config.side) and refined.dtype == torch.float32
    assert mask.shape == (2, 1, config.side, config.side)
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1

    discriminator = MultiScaleDiscriminator(config)
    outputs = discriminator(refined, torch.cat([batch["warped"], batch["source"]], dim=1))
    assert len(outputs) == config.discriminator_scales
    for scale, features in enumerate(outputs):
        logits = features[-1]
        expected = config.side // 2**scale // 2**config.discriminator_layers
        assert logits.shape[:2] == (2, 1) and abs(logits.shape[-1] - expected) <= 1
        assert all(f.dtype == torch.float32 for f in features)


def test_untrained_generator_returns_the_warp_unchanged():
    batch = inputs(TINY)
    refined, _ = Generator(TINY)(**batch)
    assert torch.equal(refined, batch["warped"].clamp(-1, 1))


def test_the_gate_keeps_the_warp_where_it_is_zero():
    torch.manual_seed(0)
    generator = Generator(TINY)
    torch.nn.init.normal_(generator.residual_head.weight, std=0.1)  # a generator that does change things
    batch = inputs(TINY)
    gate = torch.zeros(2, 1, 64, 64)
    gate[..., 16:48, 16:48] = 1.0
    with torch.no_grad():
        refined, mask = generator(**batch, gate=gate)
    outside = gate.expand(-1, 3, -1, -1) == 0
    assert torch.equal(refined[outside], batch["warped"][outside])
    assert not torch.equal(refined[~outside], batch["warped"][~outside])
    assert float(mask[gate == 0].abs().max()) == 0.0


def test_generator_runs_in_bfloat16_autocast():
    batch = inputs(TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        refined, _ = Generator(TINY)(**batch)
    assert refined.shape == (2, 3, 64, 64) and torch.isfinite(refined).all()


def test_vgg19_loads_torchvision_keys(tmp_path):
    # A state dict laid out as torchvision's vgg19() saves it (random weights: nothing is downloaded).
    features = vgg19_features(until=36)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # the classifier is ignored
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    perceptual = load_vgg19(path)
    assert torch.equal(perceptual.features[0].weight, state["features.0.weight"])
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(perceptual(image, image)) == 0.0
    other = torch.rand(1, 3, 64, 64, requires_grad=True)
    loss = perceptual(other, image)
    loss.backward()
    assert loss > 0 and other.grad is not None
    assert not any(p.requires_grad for p in perceptual.parameters())


def test_vgg_weights_of_another_network_are_refused(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, path)
    with pytest.raises(VGGWeightsError, match="not a torchvision VGG19"):
        load_vgg19(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(VGGWeightsError, match="not a torchvision VGG19 weights file"):
        load_vgg19(garbage)


def test_outside_disoccluded_areas_the_correction_is_only_smooth_shading():
    """detail_region="disoccluded": sharp changes only where the warp painted or uncovered pixels, so the
    refiner cannot move the edges (lids, lips, outline) the warp put where the rig asked."""
    from dataclasses import replace

    torch.manual_seed(0)
    limited = Generator(replace(TINY, detail_region="disoccluded"))
    anywhere = Generator(replace(TINY, detail_region="anywhere"))
    torch.nn.init.normal_(limited.residual_head.weight, std=0.05)  # a "trained" model that changes the picture
    anywhere.load_state_dict(limited.state_dict())
    batch = inputs(TINY, batch=1)
    batch["warped"] = batch["warped"] * 0.3  # no clamping at +-1 in the comparison
    batch["masks"] = torch.zeros_like(batch["masks"])
    batch["masks"][:, MASK_NAMES.index("painted"), 16:40, 16:40] = 1.0  # e.g. an opened mouth's cavity
    with torch.no_grad():
        sharp = anywhere(**batch)[0] - batch["warped"]
        smooth = limited(**batch)[0] - batch["warped"]

    def roughness(change: torch.Tensor) -> torch.Tensor:  # |discrete Laplacian| per pixel
        lap = 4 * change[..., 1:-1, 1:-1] - change[..., :-2, 1:-1] - change[..., 2:, 1:-1] \
            - change[..., 1:-1, :-2] - change[..., 1:-1, 2:]
        return lap.abs().mean(dim=1)[0]

    outside = torch.ones(62, 62, dtype=torch.bool)
    outside[10:44, 10:44] = False  # the painted square, grown by the dilation and the Laplacian's reach
    assert smooth.abs().mean() > 0.1 * sharp.abs().mean(), "shading corrections still get through"
    assert roughness(smooth)[outside].mean() < 0.1 * roughness(sharp)[outside].mean()
    assert torch.allclose(smooth[..., 20:36, 20:36], sharp[..., 20:36, 20:36], atol=1e-5), "full detail in the cavity"
