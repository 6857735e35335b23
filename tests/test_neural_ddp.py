"""Two-process DistributedDataParallel training on CPU (gloo), started the way torchrun starts it:
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT in the environment, nothing else different."""
from __future__ import annotations

import os
import socket
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.multiprocessing as mp  # noqa: E402

from conftest import channel_values  # noqa: E402
from enliven.neural.checkpoint import load_checkpoint  # noqa: E402
from enliven.neural.config import RefineConfig  # noqa: E402
from enliven.neural.generator import Generator  # noqa: E402
from enliven.neural.prepare import add_clip, clip_from_animation  # noqa: E402

TINY = RefineConfig(side=64, generator_channels=8, generator_downsamples=2, generator_max_channels=16,
                    generator_res_blocks=1, generator_groups=4, discriminator_channels=8, discriminator_layers=2,
                    discriminator_scales=2, batch_pairs=1, sources_per_clip=2, gan_start_step=0, steps=2,
                    log_every=1, sample_every=10**6, checkpoint_every=10**6)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, dataset: str, run: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from enliven.neural.train import Trainer

    trainer = Trainer(dataset, run, TINY, device="cpu", show_progress_bar=False)
    assert trainer.world == world and trainer.rank == rank
    trainer.run()
    torch.save({"generator": trainer.generator.state_dict(), "discriminator": trainer.discriminator.state_dict(),
                "step": trainer.step}, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, subject):
    out = tmp_path_factory.mktemp("dataset")
    ramp = np.linspace(0.0, 1.0, 4)
    add_clip(out, "talking", clip_from_animation(subject, [channel_values(jaw_open=0.6 * t) for t in ramp], side=96))
    return out


def test_two_ranks_train_to_identical_weights(dataset, tmp_path):
    mp.spawn(_rank_main, args=(2, _free_port(), str(dataset), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["step"] == ranks[1]["step"] == 2
    for network in ("generator", "discriminator"):
        first, second = ranks[0][network], ranks[1][network]
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first), f"{network} weights differ between ranks"
    # Training moved the weights, and rank 0 wrote the checkpoint.
    torch.manual_seed(TINY.seed)
    initial = Generator(TINY).state_dict()
    assert any(not torch.equal(initial[k], ranks[0]["generator"][k]) for k in initial)
    saved = load_checkpoint(tmp_path / "run" / "last.pt")
    assert saved["step"] == 2
    assert all(torch.equal(saved["generator"][k], ranks[0]["generator"][k]) for k in initial)


def test_ranks_draw_different_examples(dataset):
    from enliven.neural.dataset import ExampleKey, PairDataset

    data = PairDataset(dataset, replace(TINY, sources_per_clip=4))
    draws = {rank: [data.choose(ExampleKey(step, rank, 0)) for step in range(6)] for rank in range(2)}
    assert draws[0] != draws[1]
