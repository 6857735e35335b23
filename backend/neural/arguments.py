"""`enliven train`'s arguments, apart from the trainer: both the `enliven` command
(neural/commands.py) and `python -m enliven.neural.train` (torchrun) define them
from here, and the trainer never imports the command line that drives it."""
from __future__ import annotations

import argparse
from pathlib import Path


DEVICES = ("auto", "cpu", "cuda")  # --device of train and train-regions


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="made by `enliven prepare`")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="checkpoints, samples, loss curves")
    parser.add_argument("--config", metavar="PRESET|JSON", help="'small' (default, CPU), 'large' (GPU) or a JSON file "
                                                                "of settings (see enliven.neural.config)")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt exactly where it stopped")
    parser.add_argument("--steps", type=int, help="train until this many steps in all (overrides the config)")
    parser.add_argument("--holdout", nargs="*", metavar="CLIP", help="clip names to leave out of training")
    parser.add_argument("--validation", nargs="*", metavar="CLIP",
                        help="clip names to leave out of training and score on as it trains; writes RUN_DIR/best.pt, "
                             "the best generator on them, with its correction strength fitted there")
    parser.add_argument("--vgg-weights", type=Path, metavar="PATH",
                        help="torchvision VGG19 weights file for the perceptual loss (never downloaded)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--workers", type=int, help="data loader processes (overrides the config)")
