"""`enliven prepare` and `enliven train` on the command line (the refine engine's data and training)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import add_train_arguments
from .prepare import DEFAULT_SIDE


def add_commands(subparsers) -> None:
    prepare = subparsers.add_parser(
        "prepare", help="turn a folder of talking-face videos into a training dataset for the refine engine",
        description="Track the face in every clip, crop each clip around the head and store the frames with their "
                    "landmarks and person masks (memory-mappable .npy). Resumable: finished clips are skipped. "
                    "Clips with no face are skipped and reported.")
    prepare.add_argument("videos", type=Path, metavar="VIDEOS_DIR")
    prepare.add_argument("--out", type=Path, required=True, metavar="DATASET_DIR")
    prepare.add_argument("--side", type=int, default=DEFAULT_SIDE, help=f"stored frame side in pixels (default {DEFAULT_SIDE})")
    prepare.add_argument("--every", type=int, default=1, metavar="N", help="keep every Nth frame (default 1: all)")
    prepare.set_defaults(func=_run_prepare)

    train = subparsers.add_parser(
        "train", help="train the refine engine on a prepared dataset (CPU, GPU, or torchrun for several GPUs)",
        description="Train the refine engine's generator (GAN over the warp engine). Writes RUN_DIR/last.pt, "
                    "samples.png and loss.png as it goes. For several GPUs: torchrun --nproc_per_node N "
                    "-m enliven.neural.train DATASET_DIR --out RUN_DIR.")
    add_train_arguments(train)
    train.set_defaults(func=_run_train)


def _run_prepare(args) -> int:
    from .prepare import run_prepare

    return run_prepare(args)


def _run_train(args) -> int:
    try:
        from .train import run_train
    except ImportError as error:
        from ..errors import EnlivenError

        raise EnlivenError(f"Training needs PyTorch ({error}); install the 'neural' extra: "
                           "pip install 'enliven[neural]'.") from None
    return run_train(args)
