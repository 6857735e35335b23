"""`enliven prepare` and `enliven train` on the command line (the refine engine's data and training)."""
from __future__ import annotations

from pathlib import Path

from ..arguments import number_in, whole_number_in
from .arguments import DEVICES, add_train_arguments
from .prepare import DEFAULT_SIDE
from .region_config import KINDS


def add_commands(subparsers) -> None:
    prepare = subparsers.add_parser(
        "prepare", help="turn a folder of talking-face videos into a training dataset for the refine engine",
        description="Track the face in every clip, crop each clip around the head and store the frames with their "
                    "landmarks and person masks (memory-mappable .npy). Resumable: finished clips are skipped. "
                    "Clips with no face are skipped and reported.")
    prepare.add_argument("videos", type=Path, metavar="VIDEOS_DIR")
    prepare.add_argument("--out", type=Path, required=True, metavar="DATASET_DIR")
    prepare.add_argument("--side", type=whole_number_in(64, 1024), default=DEFAULT_SIDE,
                         help=f"stored frame side in pixels, 64 to 1024 (default {DEFAULT_SIDE})")
    prepare.add_argument("--every", type=whole_number_in(1, 1000), default=1, metavar="N",
                         help="keep every Nth frame (default 1: all)")
    prepare.set_defaults(func=_run_prepare)

    train = subparsers.add_parser(
        "train", help="train the refine engine on a prepared dataset (CPU, GPU, or torchrun for several GPUs)",
        description="Train the refine engine's generator (GAN over the warp engine). Writes RUN_DIR/last.pt, "
                    "samples.png and loss.png as it goes. For several GPUs: torchrun --nproc_per_node N "
                    "-m enliven.neural.train DATASET_DIR --out RUN_DIR.")
    add_train_arguments(train)
    train.set_defaults(func=_run_train)

    regions = subparsers.add_parser(
        "train-regions", help="train the eye and mouth generators of the refine engine on a prepared dataset",
        description="Draw examples from a dataset made by `enliven prepare` (once, into RUN_DIR/bank), then train "
                    "one generator for the eyes and one for the mouth. Writes RUN_DIR/last.pt (resumable), "
                    "RUN_DIR/best.pt (lowest validation error; pass it to --checkpoint), samples.png and "
                    "scores.json. Put a persons.json ({\"clip\": \"person\"}) in the dataset folder so people "
                    "with many clips do not dominate. For several GPUs: torchrun --nproc_per_node N "
                    "-m enliven.cli train-regions ...")
    regions.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    regions.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    regions.add_argument("--config", default=None, metavar="PRESET_OR_JSON",
                         help="cpu (default: about an hour on a 2-core CPU), gpu, or a JSON file of overrides")
    regions.add_argument("--examples", type=whole_number_in(1, 10**7), default=None,  # None: a bank already drawn as it is
                         help="examples drawn into the bank on the first run (default 12000)")
    regions.add_argument("--minutes", type=number_in(0.01, 10**6), default=None,
                         help="stop (saving last.pt and best.pt) after this many minutes of training")
    regions.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA when present), cpu or cuda")
    regions.add_argument("--workers", type=whole_number_in(1, 1024), default=None,
                         help="processes that draw the bank (default: one per CPU core)")
    regions.add_argument("--init", type=Path, default=None, metavar="MODEL",
                         help="start from this model's generators instead of from scratch (fine-tuning, e.g. "
                              "the shipped backend/assets/regions/regions.pt; ignored when RUN_DIR/last.pt resumes)")
    regions.add_argument("--only", choices=KINDS, default=None,
                         help="train this region kind's generator only; the other is --init's, unchanged")
    regions.set_defaults(func=_run_train_regions)


def _run_prepare(args) -> int:
    from .prepare import run_prepare

    return run_prepare(args)


def _run_train_regions(args) -> int:
    _need_torch()
    from .region_train import run_train_regions

    return run_train_regions(args)


def _need_torch() -> None:
    """A clear error, not a traceback, where the 'neural' extra is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        from ..errors import EnlivenError

        raise EnlivenError(f"Training needs PyTorch ({error}); install the 'neural' extra: "
                           "pip install 'enliven[neural]'.") from None


def _run_train(args) -> int:
    _need_torch()
    from .train import run_train

    return run_train(args)
