"""Training the refine engine: `enliven train DATASET_DIR --out RUN_DIR`, or on several GPUs

    torchrun --nproc_per_node N -m enliven.neural.train DATASET_DIR --out RUN_DIR

(torchrun's environment variables switch on DistributedDataParallel; nothing
else changes: gloo on CPUs, NCCL on GPUs, one process per GPU, several nodes
through torchrun's own --nnodes/--rdzv options).

One step: the generator refines a batch of warped frames; the discriminator
learns real vs refined (after `gan_start_step`); the generator learns from L1,
perceptual (VGG19 with --vgg-weights), feature matching, adversarial, motion
and temporal consistency terms (enliven.neural.losses).

Run folder: last.pt (every checkpoint_every steps, at the end, and on
SIGTERM or Ctrl-C; written atomically), best.pt (with validation clips: the
generator that scored best on them so far, see `Trainer.validate`), loss.png (the loss curves), samples.png
(source | warp | refined | target on fixed examples), log.csv, and TensorBoard
logs in tb/ when the tensorboard package is installed.

`--resume` continues from last.pt with bit-for-bit the same schedule: which
examples a step uses and its noise depend only on (seed, step, rank).
"""
from __future__ import annotations

import argparse
import io
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..arguments import check_output_folder
from ..errors import EnlivenError, UsageError
from ..images import write_atomic
from .arguments import DEVICES, add_train_arguments
from .checkpoint import CheckpointError, config_of, load_checkpoint, save_checkpoint
from .config import RefineConfig, load_config, resumed_config
from .dataset import ExampleKey, PairDataset, StepBatches, collate_pairs
from .tensors import computes_in_bfloat16, to_image
from .prepare import DatasetError
from .run_folder import BEST, LAST, SAMPLES, check_run_folder
from .discriminator import MultiScaleDiscriminator
from .generator import Generator
from . import losses

# Called on rank 0 as progress(step, total steps, {loss name: value}) every config.log_every steps.
TrainProgress = Callable[[int, int, dict[str, float]], None]
SAMPLE_ROWS = 4
# Settings that may differ when resuming: they do not change which examples, noise or updates a step gets.
BOOKKEEPING_FIELDS = ("steps", "workers", "log_every", "sample_every", "checkpoint_every", "validate_every")
LOSS_NAMES = ("total", "l1", "l1_warp", "perceptual", "feature_matching", "adversarial", "motion", "temporal", "mask", "discriminator")
VALIDATION_NAMES = ("val_l1", "val_l1_warp", "val_strength")
# Correction strengths tried on the validation clips (0 = the warp alone, 1 = the generator's full correction).
STRENGTHS = np.linspace(0.0, 1.0, 21)


# ---------------------------------------------------------------- processes and devices


def distributed_setup(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) this joins the process group."""
    if device not in DEVICES:  # (the command line's --device refuses it; this is for other callers)
        raise UsageError(f"device must be one of {', '.join(DEVICES)}, not {device!r}.")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device == "cuda" and not use_cuda:
        raise EnlivenError("--device cuda was asked for but no CUDA GPU is usable here.")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, chosen


def autocast_dtype(config: RefineConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full float32. "auto": bfloat16 where the device computes in it (as the
    region training does), float16 on a GPU without it, float32 on other CPUs."""
    if config.precision == "fp32":
        return None
    if config.precision == "fp16":
        return torch.float16
    if config.precision == "bf16" or computes_in_bfloat16(device):
        return torch.bfloat16
    return torch.float16 if device.type == "cuda" else None


# ---------------------------------------------------------------- the trainer


class Trainer:
    """Owns the networks, optimisers, data and run folder. `run()` trains until config.steps or a stop request."""

    def __init__(self, dataset_dir: str | Path, run_dir: str | Path, config: RefineConfig | None = None,
                 resume: bool = False, vgg_weights: str | Path | None = None, device: str = "auto",
                 progress: TrainProgress | None = None, show_progress_bar: bool = True, steps: int | None = None,
                 workers: int | None = None, stop_when: Callable[[], bool] | None = None):
        """`stop_when`: asked after every step; True stops the run as request_stop() does (the service's cancel)."""
        self.run_dir = Path(run_dir)
        self.rank, self.world, self.device = distributed_setup(device)
        self.progress = progress
        self.show_progress_bar = show_progress_bar and self.rank == 0
        self.stop_requested = False
        self.interrupted = False  # stopped by Ctrl-C or SIGTERM (saved, and the command exits 130)
        self.stop_when = stop_when
        self.history: dict[str, list[float]] = {"step": [], "steps_per_s": [], **{name: [] for name in LOSS_NAMES}}
        self.validation_history: dict[str, list[float]] = {"step": [], **{name: [] for name in VALIDATION_NAMES}}
        self.best: dict[str, float] = {}  # the step, val_l1 and strength of best.pt
        self.step = 0

        checkpoint = None
        last = self.run_dir / LAST
        check_run_folder(self.run_dir, resume)
        if resume:
            checkpoint = load_checkpoint(last)
            saved = config_of(checkpoint, last)
            config = resumed_config(saved, config, BOOKKEEPING_FIELDS, last,
                                    "resume with its settings (no --config, --holdout or --validation), or start a "
                                    "new run folder.")
        config = config or RefineConfig()
        if steps is not None:
            config = replace(config, steps=steps)
        if workers is not None:
            config = replace(config, workers=workers)
        config.check()
        self.config = config

        torch.manual_seed(config.seed)  # the same initial weights on every rank (DDP also broadcasts them)
        self.generator = Generator(config).to(self.device)
        self.discriminator = MultiScaleDiscriminator(config).to(self.device)
        betas = (config.beta1, config.beta2)
        self.optimizer_generator = torch.optim.Adam(self.generator.parameters(), lr=config.lr_generator, betas=betas)
        self.optimizer_discriminator = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_discriminator,
                                                        betas=betas)
        self.amp_dtype = autocast_dtype(config, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.perceptual = None
        self.vgg_weights = None  # vgg.vgg_weights_record of the perceptual loss's weights; None: no perceptual loss
        if checkpoint is not None and "vgg_weights" in checkpoint:  # (checkpoints before it was recorded: as given)
            from .vgg import resumed_vgg_weights

            vgg_weights = resumed_vgg_weights(checkpoint["vgg_weights"],
                                              vgg_weights if config.weight_perceptual > 0 else None, last)
        if vgg_weights is not None and config.weight_perceptual > 0:
            from .vgg import load_vgg19, vgg_weights_record

            self.perceptual = load_vgg19(vgg_weights).to(self.device)
            self.vgg_weights = vgg_weights_record(vgg_weights)
        if checkpoint is not None:
            self._restore(checkpoint)
            self._adopt_saved_best()

        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.generator_ddp = nn.parallel.DistributedDataParallel(self.generator, device_ids=ids)
            self.discriminator_ddp = nn.parallel.DistributedDataParallel(self.discriminator, device_ids=ids)
        else:
            self.generator_ddp, self.discriminator_ddp = self.generator, self.discriminator

        self.dataset = PairDataset(dataset_dir, config)
        all_clips = self._all_clips(dataset_dir)
        for kind, clips in (("validation", config.validation), ("holdout", config.holdout)):
            unknown = [c for c in clips if c not in all_clips]  # (a mistyped holdout was trained on silently)
            if unknown:
                raise DatasetError(f"{kind} clip(s) {', '.join(unknown)} are not in the dataset '{dataset_dir}'.")
        self.validation = PairDataset(dataset_dir, config, clips=list(config.validation)) if config.validation else None
        self._validation_batches: list[dict[str, torch.Tensor]] | None = None  # made once, on first use
        preview_clips = [c for c in (*config.validation, *config.holdout) if c in all_clips] or None
        self.preview = PairDataset(dataset_dir, config, clips=preview_clips) if preview_clips else self.dataset
        self.tensorboard = self._tensorboard() if self.rank == 0 else None

    @staticmethod
    def _all_clips(dataset_dir) -> set[str]:
        from .prepare import read_index

        return set(read_index(Path(dataset_dir))["clips"])

    # ----- checkpoints

    def state(self) -> dict:
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_generator": self.optimizer_generator.state_dict(),
            "optimizer_discriminator": self.optimizer_discriminator.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "history": self.history,
            "validation_history": self.validation_history,
            "best": self.best,
            "vgg_weights": self.vgg_weights,
        }

    def _restore(self, checkpoint: dict) -> None:
        try:
            self.generator.load_state_dict(checkpoint["generator"])
            self.discriminator.load_state_dict(checkpoint["discriminator"])
            self.optimizer_generator.load_state_dict(checkpoint["optimizer_generator"])
            self.optimizer_discriminator.load_state_dict(checkpoint["optimizer_discriminator"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(f"last.pt in {self.run_dir} does not match the networks it names: "
                                  f"{str(error).splitlines()[0][:200]}") from None
        if checkpoint.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.step = int(checkpoint["step"])
        self.history = {key: list(values) for key, values in checkpoint.get("history", self.history).items()}
        self.validation_history = {key: list(values) for key, values
                                   in checkpoint.get("validation_history", self.validation_history).items()}
        self.best = dict(checkpoint.get("best", {}))

    def _adopt_saved_best(self) -> None:
        """best.pt may be newer than last.pt (validation runs more often than checkpoints): keep its score, so
        that a resumed run only replaces it with a better model."""
        path = self.run_dir / BEST
        if not path.exists():  # deleted: the next validation writes a new one (it said "wrote best.pt", never did)
            self.best = {}
            return
        saved = load_checkpoint(path).get("best", {})
        score = saved.get("val_l1", math.inf)
        if math.isfinite(score) and score < self.best.get("val_l1", math.inf):
            self.best = dict(saved)

    def save(self) -> Path | None:
        """Write last.pt (rank 0 only; every rank holds the same weights)."""
        if self.rank != 0:
            return None
        return save_checkpoint(self.run_dir / LAST, self.state())

    def request_stop(self) -> None:
        """Finish the current step, save and return from run() (SIGTERM, Ctrl-C, or a caller's cancel)."""
        self.stop_requested = True

    # ----- training

    def run(self) -> dict[str, float]:
        """Train from self.step to config.steps. Returns the last logged losses."""
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        previous_handlers = self._catch_signals()
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=StepBatches(self.step, config.steps, self.rank, config.batch_pairs),
            collate_fn=collate_pairs, num_workers=config.workers, persistent_workers=False,
            pin_memory=self.device.type == "cuda",
            multiprocessing_context=worker_start_method() if config.workers else None)
        bar = None
        if self.show_progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=config.steps, initial=self.step, unit="step", desc="training", file=sys.stderr,
                       dynamic_ncols=True)
        sums: dict[str, float] = {}
        logged: dict[str, float] = {}
        validated: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        try:
            for batch in loader:
                step_losses = self.train_step(batch)
                self.step += 1
                window_steps += 1
                for name, value in step_losses.items():
                    sums[name] = sums.get(name, 0.0) + value
                if bar is not None:
                    bar.update(1)
                if self.validation is not None and (self.step % config.validate_every == 0
                                                    or self.step == config.steps):
                    validated = self.validate()
                if self.step % config.log_every == 0 or self.step == config.steps:
                    elapsed = time.perf_counter() - window_start
                    logged = {name: value / window_steps for name, value in sums.items()}
                    logged["steps_per_s"] = window_steps / max(elapsed, 1e-9)
                    logged.update(validated)  # the latest validation scores ride along
                    self._log(logged, bar)
                    sums, window_start, window_steps = {}, time.perf_counter(), 0
                if self.rank == 0 and (self.step % config.sample_every == 0 or self.step == config.steps):
                    self.write_samples()
                    self.write_loss_curve()
                if self.step % config.checkpoint_every == 0:
                    self.save()
                if self._should_stop():
                    break
        finally:
            if bar is not None:
                bar.close()
            self._restore_signals(previous_handlers)
        self.save()
        if self.rank == 0:
            self.write_loss_curve()
        if self.tensorboard is not None:
            self.tensorboard.flush()
        return logged

    def _should_stop(self) -> bool:
        """Every rank must stop at the same step, or the others would wait forever in an all-reduce."""
        stop = self.stop_requested or (self.stop_when is not None and self.stop_when())
        if self.world == 1:
            return stop
        flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
        torch.distributed.all_reduce(flag)
        return bool(flag.item() > 0)

    def _catch_signals(self) -> dict:
        if threading_is_main():
            previous = {}
            for number in (signal.SIGTERM, signal.SIGINT):
                previous[number] = signal.signal(number, lambda *_: self._interrupt())
            return previous
        return {}

    def _interrupt(self) -> None:
        self.interrupted = True
        self.request_stop()

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def step_noise(self, batch_size: int) -> torch.Tensor | None:
        """This step's noise input: a function of (seed, step, rank) only, so resuming repeats it exactly."""
        if not self.config.noise_channels:
            return None
        generator = torch.Generator().manual_seed(hash_seed(self.config.seed, self.step, self.rank))
        side = self.config.side
        return torch.randn(batch_size, self.config.noise_channels, side, side, generator=generator).to(self.device)

    def gate(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return batch["face_gate"] if self.config.refine_region == "face" else None

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        config = self.config
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        warped, source, target = batch["warped"], batch["source"], batch["target"]
        condition = torch.cat([warped, source], dim=1)
        adversarial = self.step >= config.gan_start_step and (config.weight_gan > 0 or config.weight_feature_matching > 0)
        amp = dict(device_type=self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)
        self.generator.train()

        with torch.autocast(**amp):
            refined, mask = self.generator_ddp(warped, source, batch["displacement"], batch["masks"],
                                               self.step_noise(len(warped)), self.gate(batch))
        out: dict[str, float] = {}

        # Discriminator: real and refined in one forward pass (one DDP forward per backward).
        real_features = None
        if adversarial:
            self.discriminator.requires_grad_(True)
            with torch.autocast(**amp):
                both = self.discriminator_ddp(torch.cat([target, refined.detach()]), torch.cat([condition, condition]))
                real_logits = [scale[-1][: len(target)] for scale in both]
                fake_logits = [scale[-1][len(target):] for scale in both]
                loss_discriminator = losses.discriminator_loss(real_logits, fake_logits, config.gan_loss)
                real_features = [[f[: len(target)].detach() for f in scale] for scale in both]  # for feature matching
            self.optimizer_discriminator.zero_grad(set_to_none=True)
            self.scaler.scale(loss_discriminator).backward()
            self._clip(self.discriminator, self.optimizer_discriminator)
            self.scaler.step(self.optimizer_discriminator)
            out["discriminator"] = float(loss_discriminator.detach())

        # Generator.
        with torch.autocast(**amp):
            terms = {"l1": losses.l1_loss(refined, target)}
            if self.perceptual is not None:
                terms["perceptual"] = self.perceptual(refined.float(), target.float())
            if config.weight_motion > 0:
                terms["motion"] = losses.motion_consistency_loss(refined, source, batch["target_points"],
                                                                 batch["source_points"], config.motion_patch)
            if config.weight_temporal > 0:
                terms["temporal"] = losses.temporal_consistency_loss(refined, target)
            terms["mask"] = losses.mask_sparsity_loss(mask)
            if adversarial:
                # The bare module, frozen: no discriminator gradients, and no DDP reduction for them.
                self.discriminator.requires_grad_(False)
                fake_features = self.discriminator(refined, condition)
                terms["adversarial"] = losses.generator_adversarial_loss([s[-1] for s in fake_features], config.gan_loss)
                terms["feature_matching"] = losses.feature_matching_loss(real_features, fake_features)
            weights = {"l1": config.weight_l1, "perceptual": config.weight_perceptual, "motion": config.weight_motion,
                       "temporal": config.weight_temporal, "mask": config.weight_mask, "adversarial": config.weight_gan,
                       "feature_matching": config.weight_feature_matching}
            total = sum(weights[name] * value for name, value in terms.items())
        self.optimizer_generator.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self._clip(self.generator, self.optimizer_generator)
        self.scaler.step(self.optimizer_generator)
        self.scaler.update()
        self.discriminator.requires_grad_(True)
        out.update({name: float(value.detach()) for name, value in terms.items()})
        out["l1_warp"] = float(losses.l1_loss(warped, target))  # the baseline the refiner must beat
        out["total"] = float(total.detach())
        if not math.isfinite(out["total"]):
            raise EnlivenError(f"Training diverged at step {self.step} (loss is {out['total']}); lower the learning "
                               "rates or use --config with precision fp32, and resume from the last checkpoint.")
        return out

    def _clip(self, network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.config.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(network.parameters(), self.config.grad_clip)

    # ----- validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Score the generator on fixed pairs of the validation clips (never trained on) and keep the best.

        The score is the L1 error of warp + strength * correction, with the
        strength in 0..1 fitted here: a generator trained on a few faces is
        partly right and partly overfitted on a new one, and shrinking its
        correction toward the warp keeps the part that carries over. best.pt
        is written (rank 0) whenever that score improves; it carries the
        strength, which the refine engine applies when making frames.
        """
        if self._validation_batches is None:
            self._validation_batches = []
            for index in range(self.config.validation_pairs):
                clip, source, *targets = self.validation.choose(ExampleKey(2 * 10**6 + index, 0, 0))
                # The plain example (not mirrored or recoloured), as the engine will see it.
                self._validation_batches.append(self.validation.example(clip, source, targets))
        self.generator.eval()
        errors = np.zeros(len(STRENGTHS))
        strengths = torch.tensor(STRENGTHS, dtype=torch.float32, device=self.device).view(-1, 1, 1, 1, 1)
        for example in self._validation_batches:
            inputs = {k: v.to(self.device) for k, v in example.items()}
            warped, target = inputs["warped"], inputs["target"]
            refined, _ = self.generator(warped, inputs["source"], inputs["displacement"], inputs["masks"],
                                        self.generator.inference_noise(len(warped), self.device), self.gate(inputs))
            blended = warped + strengths * (refined.float() - warped)  # (strengths, B, C, H, W)
            errors += (blended - target).abs().mean(dim=(1, 2, 3, 4)).cpu().numpy()
        self.generator.train()
        errors /= len(self._validation_batches)
        errors = np.where(np.isfinite(errors), errors, np.inf)  # a diverged generator never wins (s = 0 is finite)
        best_index = int(np.argmin(errors))
        scores = {"val_l1": float(errors[best_index]), "val_l1_warp": float(errors[0]),
                  "val_strength": float(STRENGTHS[best_index])}
        if self.rank == 0:
            self.validation_history["step"].append(float(self.step))
            for name, value in scores.items():
                self.validation_history[name].append(value)
            if self.tensorboard is not None:
                for name, value in scores.items():
                    self.tensorboard.add_scalar(f"validation/{name}", value, self.step)
            if scores["val_l1"] < self.best.get("val_l1", math.inf):
                self.best = {"step": float(self.step), "val_l1": scores["val_l1"], "strength": scores["val_strength"]}
                save_checkpoint(self.run_dir / BEST, {**self.state(), "strength": scores["val_strength"]})
        return scores

    # ----- reporting

    def _log(self, logged: dict[str, float], bar) -> None:
        if self.rank != 0:
            return
        self.history["step"].append(float(self.step))
        for name in self.history:
            if name != "step":
                self.history[name].append(float(logged.get(name, float("nan"))))
        if bar is not None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in logged.items() if k in ("total", "l1", "val_l1", "discriminator", "steps_per_s")})
        log = self.run_dir / "log.csv"
        names = ["step", "steps_per_s", *LOSS_NAMES]
        new = not log.exists()
        with log.open("a") as file:
            if new:
                file.write(",".join(names) + "\n")
            file.write(",".join(f"{self.history[n][-1]:.6g}" for n in names) + "\n")
        if self.tensorboard is not None:  # the validation scores have their own section (validate)
            for name, value in logged.items():
                if name not in VALIDATION_NAMES:
                    self.tensorboard.add_scalar(f"train/{name}", value, self.step)
        if self.progress is not None:
            self.progress(self.step, self.config.steps, dict(logged))

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the tensorboard package is optional
            return None
        return SummaryWriter(str(self.run_dir / "tb"))

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """Rows of source | warp | refined | target on fixed examples (held-out clips when there are any)."""
        rows = []
        self.generator.eval()
        for row in range(SAMPLE_ROWS):
            example = self.preview[ExampleKey(10**6 + row, 0, 0)]
            inputs = {k: v[:1].to(self.device) for k, v in example.items()}
            refined, _ = self.generator(inputs["warped"], inputs["source"], inputs["displacement"], inputs["masks"],
                                        self.generator.inference_noise(1, self.device), self.gate(inputs))
            rows.append(np.concatenate([to_image(inputs[k][0]) for k in ("source", "warped")]
                                       + [to_image(refined[0]), to_image(inputs["target"][0])], axis=1))
        self.generator.train()
        return np.concatenate(rows, axis=0)

    def write_samples(self) -> None:
        from ..images import write_png

        grid = self.sample_grid()
        write_png(self.run_dir / SAMPLES, grid)
        if self.tensorboard is not None:
            self.tensorboard.add_image("samples", grid, self.step, dataformats="HWC")

    def write_loss_curve(self) -> None:
        if len(self.history["step"]) < 2:
            return
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
        steps = self.history["step"]
        for name in LOSS_NAMES:
            values = np.array(self.history[name], dtype=np.float64)
            if np.isfinite(values).any():
                axis.plot(steps, values, label=name, linewidth=1)
        for name in ("val_l1", "val_l1_warp"):
            if self.validation_history[name]:
                axis.plot(self.validation_history["step"], self.validation_history[name], label=name, linewidth=2,
                          linestyle="--")
        axis.set_yscale("symlog", linthresh=1e-2)
        axis.set_xlabel("step")
        axis.set_title(f"refine engine training ({self.config.preset}, side {self.config.side})")
        axis.legend(fontsize=7, ncol=3)
        axis.grid(alpha=0.3)
        figure.tight_layout()
        image = io.BytesIO()
        figure.savefig(image, format="png")
        plt.close(figure)
        write_atomic(self.run_dir / "loss.png", image.getvalue())  # (a full disk left loss.partial.png behind)


def worker_start_method() -> str:
    """How data loader workers start: never by forking this process, which may be the server with its ZeroMQ
    and job threads running (a fork copies locks other threads hold). A fork server (or spawn, on Windows)
    starts them clean; the dataset they receive is its folder, not its frames (PairDataset.__getstate__)."""
    import multiprocessing

    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def hash_seed(*numbers: int) -> int:
    return int(np.random.SeedSequence(list(numbers)).generate_state(1, dtype=np.uint32)[0])


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------- command line


def run_train(args: argparse.Namespace) -> int:
    check_output_folder(args.out)  # before any work: a path part that is a file, a read-only folder
    config = load_config(args.config) if args.config else None
    if args.holdout is not None:
        config = replace(config or RefineConfig(), holdout=tuple(args.holdout))
    if args.validation is not None:
        config = replace(config or RefineConfig(), validation=tuple(args.validation))
    trainer = Trainer(args.dataset, args.out, config, resume=args.resume, vgg_weights=args.vgg_weights,
                      device=args.device, steps=args.steps, workers=args.workers)
    logged = trainer.run()
    if trainer.rank == 0:
        summary = ", ".join(f"{k} {v:.4g}" for k, v in logged.items())
        print(f"step {trainer.step}/{trainer.config.steps}" + (f": {summary}" if summary else "")
              + f"\nwrote {args.out / 'last.pt'}")
        if trainer.best:
            best = trainer.best
            print(f"best on the validation clips: step {best['step']:.0f}, L1 {best['val_l1']:.4f} at correction "
                  f"strength {best['strength']:.2f} (the warp alone: {trainer.validation_history['val_l1_warp'][0]:.4f}), "
                  f"in {args.out / 'best.pt'}")  # (written now or by an earlier session of the run)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return interrupted_exit(trainer.interrupted, trainer.step, args.out)


def interrupted_exit(interrupted: bool, step: int, run_dir: Path,
                     how_to_resume: str = "--resume goes on from there") -> int:
    """The exit code of a training command: 130 when Ctrl-C or SIGTERM stopped it (after saving), as for any
    other interrupted command, so that a script can tell a finished run from a stopped one; else 0."""
    if not interrupted:
        return 0
    print(f"enliven: interrupted at step {step}; saved in {run_dir / 'last.pt'} ({how_to_resume})", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enliven.neural.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except EnlivenError as error:
        print(f"enliven: error: {error.message}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
