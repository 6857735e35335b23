"""Training the region generator (`enliven train-regions`): one U-Net for the eyes, one for the mouth.

    enliven train-regions DATASET_DIR --out RUN_DIR [--config cpu|gpu|FILE] [--minutes M]
                          [--init MODEL [--only eye|mouth]]

1. The first run draws a bank of examples from the prepared dataset
   (enliven.neural.region_data: the warp engine's own rendering of a source frame
   driven by a target frame's captured motion, and the real target frame).
   A few people are set aside as validation: never trained on, scored every checkpoint. RUN_DIR/bank/bank.json
   records what the bank was drawn from; a later run uses the bank only when it asks for the same.
2. Each step trains both region kinds on a batch from the bank: L1 inside the
   paste mask, then (after gan_start_step) a conditional PatchGAN with hinge
   loss and feature matching.
3. RUN_DIR/last.pt is written atomically every checkpoint_every steps and at the
   end (a stopped run resumes from it); RUN_DIR/best.pt keeps the generators
   with the lowest validation L1; RUN_DIR/samples.png shows warp | generated | real.

With --init the generators start from a trained model's weights (fine-tuning: the shipped model on today's
warp, or on your own footage); --only then trains one kind and carries the other over unchanged.

Under torchrun each rank draws its own batches (seeded by rank) and DDP averages
the gradients; rank 0 writes the files.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..arguments import check_output_folder
from ..engines.regions import paste_mask
from ..errors import CheckpointError, UsageError
from ..images import write_atomic, write_png
from .checkpoint import config_of, save_checkpoint
from .config import resumed_config
from .discriminator import PatchDiscriminator
from .losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss
from .prepare import DatasetError
from .region_config import BOOKKEEPING_FIELDS, CPU, KINDS, REGION_FORMAT, RegionConfig, load_region_config
from .region_data import PERSONS_FILE, BankConfig, build_bank, check_bank, load_bank, region_spec_of, unnamed_clips
from .region_generator import RegionGenerator
from .run_folder import BEST, LAST, check_run_folder
from .tensors import bfloat16_autocast
from .train import distributed_setup, hash_seed, interrupted_exit, threading_is_main

VALIDATION_PEOPLE = 4  # people of the bank set aside, never trained on
VALIDATION_EXAMPLES = 160  # per kind, scored every checkpoint


def to_images(array: np.ndarray) -> torch.Tensor:
    """uint8 (B, S, S, C) -> float (B, C, S, S) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_shapes(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float() / 255.0


class KindTrainer:
    """The generator, discriminator and optimisers of one region kind, with its slice of the bank."""

    def __init__(self, kind: str, bank: dict[str, np.ndarray], config: RegionConfig, device: torch.device, world: int):
        self.kind, self.config, self.device = kind, config, device
        self.spec = region_spec_of(kind, config.eye_side, config.mouth_side)
        people = np.unique(bank["person"])
        # A tenth of the people, at most VALIDATION_PEOPLE, never trained on; with a single person
        # (a smoke test) validation scores training examples instead.
        held_count = min(VALIDATION_PEOPLE, len(people) // 10)
        self.held_out_people = held_count
        held = people[np.random.default_rng(config.seed).permutation(len(people))[:held_count]]
        is_held = np.isin(bank["person"], held)
        self.train_index = np.flatnonzero(~is_held)
        pool = np.flatnonzero(is_held) if held_count else self.train_index
        # Spread over the pool: the bank is ordered by clip, so its first examples would be one person's.
        self.validation_index = pool[np.unique(np.linspace(0, len(pool) - 1, min(VALIDATION_EXAMPLES, len(pool)))
                                               .round().astype(int))] if len(pool) else pool
        self.bank = bank
        self.mask = torch.from_numpy(paste_mask(self.spec))[None, None].to(device)
        self.generator = RegionGenerator(config, self.spec.side).to(device)
        self.discriminator = PatchDiscriminator(9, config.discriminator_channels, config.discriminator_layers).to(device)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), config.lr_generator, (config.beta1, config.beta2))
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), config.lr_discriminator,
                                            (config.beta1, config.beta2))
        self.g, self.d = self.generator, self.discriminator
        self.autocast = bfloat16_autocast(device, config.precision == "auto")  # forward passes; losses, steps in float32
        if world > 1:
            self.g = DistributedDataParallel(self.generator)
            self.d = DistributedDataParallel(self.discriminator)

    def batch(self, index: np.ndarray, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        out = {name: to_images(self.bank[name][index]) for name in ("warped", "source", "real")}
        out.update({name: to_shapes(self.bank[name][index]) for name in ("target_shape", "source_shape")})
        if rng is not None and self.config.augment_colour:
            # The same recolouring for the warp, the source and the answer: skin tones and lighting vary.
            size = (len(index), 3, 1, 1)
            gain = torch.from_numpy(1 + self.config.augment_colour * rng.uniform(-1, 1, size)).float()
            offset = torch.from_numpy(self.config.augment_colour * rng.uniform(-1, 1, size)).float()
            for name in ("warped", "source", "real"):
                out[name] = ((out[name] + 1) * gain - 1 + offset).clamp(-1, 1)
        return {name: value.to(self.device) for name, value in out.items()}

    def generate(self, batch: dict[str, torch.Tensor], noise: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(**self.autocast):
            fake = self.g(batch["warped"], batch["source"], batch["target_shape"], batch["source_shape"], self.mask, noise)
        return fake.float()

    def discriminate(self, discriminator: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
        with torch.autocast(**self.autocast):
            features = discriminator(images)
        return [feature.float() for feature in features]

    @torch.no_grad()
    def generate_as_rendered(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The generator's patches as the engine makes them: eval mode, the fixed inference noise."""
        self.generator.eval()
        try:
            with torch.autocast(**self.autocast):  # as the refine engine runs it, unless precision is fp32
                fake = self.generator(batch["warped"], batch["source"], batch["target_shape"], batch["source_shape"],
                                      self.mask, self.generator.inference_noise(len(batch["warped"]), self.device))
            return fake.float()
        finally:
            self.generator.train()

    def masked_l1(self, image: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return ((image - real).abs() * self.mask).mean() / self.mask.mean()

    def step(self, batch: dict[str, torch.Tensor], noise: torch.Tensor | None, adversarial: bool) -> dict[str, float]:
        config = self.config
        fake = self.generate(batch, noise)
        condition = torch.cat([batch["warped"], batch["target_shape"]], dim=1)
        logs = {}
        if adversarial:
            both = self.discriminate(self.d, torch.cat([torch.cat([condition, batch["real"]], 1),
                                                        torch.cat([condition, fake.detach()], 1)]))
            half = len(fake)
            loss_d = discriminator_loss([both[-1][:half]], [both[-1][half:]], "hinge")
            self.optimizer_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.optimizer_d.step()
            logs["d"] = float(loss_d.detach())
        l1 = self.masked_l1(fake, batch["real"])
        loss = config.weight_l1 * l1
        if adversarial:
            for parameter in self.discriminator.parameters():
                parameter.requires_grad_(False)
            fake_features = self.discriminate(self.discriminator, torch.cat([condition, fake], 1))
            with torch.no_grad():
                real_features = self.discriminate(self.discriminator, torch.cat([condition, batch["real"]], 1))
            for parameter in self.discriminator.parameters():
                parameter.requires_grad_(True)
            adversarial_loss = generator_adversarial_loss([fake_features[-1]], "hinge")
            matching = feature_matching_loss([real_features], [fake_features])
            loss = loss + config.weight_gan * adversarial_loss + config.weight_feature_matching * matching
            logs.update(gan=float(adversarial_loss.detach()), fm=float(matching.detach()))
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_g.step()
        logs["l1"] = float(l1.detach())
        return logs

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Masked L1 of the generated and of the warped patches on the held-out people, and on those of
        their examples the bank flags (closed eyes, open mouths)."""
        if not len(self.validation_index):
            return {}
        batch = self.batch(self.validation_index, None)
        fake = self.generate_as_rendered(batch)
        per_example = lambda image: ((image - batch["real"]).abs() * self.mask).mean(dim=(1, 2, 3)) / self.mask.mean()
        generated, warped = per_example(fake), per_example(batch["warped"])
        flagged = torch.from_numpy(self.bank["flag"][self.validation_index]).to(self.device)
        out = {"val_l1": float(generated.mean()), "val_warp_l1": float(warped.mean())}
        if flagged.any():
            out.update(val_flag_l1=float(generated[flagged].mean()), val_flag_warp_l1=float(warped[flagged].mean()))
        return out

    def samples(self, count: int = 6) -> np.ndarray:
        """Rows of warp | generated | real | source for held-out examples (uint8 RGB)."""
        index = self.validation_index[np.linspace(0, len(self.validation_index) - 1, count).round().astype(int)]
        batch = self.batch(index, None)
        fake = self.generate_as_rendered(batch)
        rows = [torch.cat([batch["warped"][i], fake[i], batch["real"][i], batch["source"][i]], dim=2) for i in range(len(index))]
        grid = torch.cat(rows, dim=1)
        return ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()

    def state(self) -> dict:
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "optimizer_generator": self.optimizer_g.state_dict(),
                "optimizer_discriminator": self.optimizer_d.state_dict()}

    def restore(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer_g.load_state_dict(state["optimizer_generator"])
        self.optimizer_d.load_state_dict(state["optimizer_discriminator"])


@dataclass
class TrainingResult:
    step: int
    scores: dict[str, float]  # the last validation scores (rank 0)
    generators: dict[str, RegionGenerator]  # per region kind, as trained (none for a run already finished)
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM (saved first)
    written: tuple[str, ...] = ()  # the checkpoints this call wrote (last.pt, best.pt); none: nothing to do


def train_regions(dataset_dir: Path | None, run_dir: Path, config: RegionConfig | None = None,
                  examples: int | None = None, minutes: float | None = None, device: str = "auto", log=print,
                  workers: int = 1, init: Path | None = None, only: str | None = None) -> TrainingResult:
    """Train (or resume) in `run_dir`. `config`: None for the cpu preset, or a resumed run's own settings; a
    resumed run takes only the bookkeeping of a config given. `dataset_dir` may be None when RUN_DIR/bank already
    holds the examples; a bank there must have been drawn from `dataset_dir` with `examples` (when given; else
    12000 for a new bank); `workers` processes draw them. A new run starts from the generators of the model `init` when given, and
    trains only the kind `only` when given (the other keeps `init`'s weights); a resumed run keeps its `only`."""
    from .checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    last = run_dir / LAST
    # (no --resume: a last.pt resumes; a folder with only an earlier run's best.pt is never overwritten)
    check_run_folder(run_dir, resume=last.exists())
    saved = load_checkpoint(last, expected_format=REGION_FORMAT) if last.exists() else None
    if saved is not None:
        if only is not None and only != saved.get("only"):
            raise UsageError(f"'{run_dir}' was started training {saved.get('only') or 'both kinds'}; resume it as it "
                             "was, or train into a new RUN_DIR.")
        only, init = saved.get("only"), None  # the weights come from last.pt
        config = resumed_config(config_of(saved, last, RegionConfig.from_dict), config, BOOKKEEPING_FIELDS, last,
                                "resume with its settings (leave --config out), or train into a new RUN_DIR.")
    config = config or CPU
    if saved is not None and saved["step"] >= config.steps:  # nothing to do (the result's `written` says so)
        return TrainingResult(int(saved["step"]), {}, {})
    if only is not None and only not in KINDS:
        raise UsageError(f"--only takes one of {', '.join(KINDS)}, not '{only}'.")
    if only is not None and saved is None and init is None:
        raise UsageError("--only trains one region kind and keeps the other as a model has it: give that model "
                         "with --init.")
    initial = initial_weights(Path(init), config) if init is not None else None  # checked before the bank is drawn
    rank, world, chosen = distributed_setup(device)
    if config.threads:
        torch.set_num_threads(config.threads)
    bank_dir = run_dir / "bank"
    wanted = BankConfig(examples=examples or BankConfig.examples, eye_side=config.eye_side,
                        mouth_side=config.mouth_side, seed=config.seed)
    if all((bank_dir / f"{kind}.npz").exists() for kind in KINDS):
        record = check_bank(bank_dir, dataset_dir, wanted, examples_given=examples is not None)
        if rank == 0:
            log(f"using the {record['examples']} examples already drawn from {record['dataset']} in {bank_dir}"
                if record else f"using the examples already drawn in {bank_dir}")
    else:
        if dataset_dir is None:
            raise DatasetError(f"'{bank_dir}' has no examples yet: give the dataset to draw them from.")
        if rank == 0:
            log(f"drawing {wanted.examples} examples from {dataset_dir} into {bank_dir} (once, {workers} processes)")
            unnamed = unnamed_clips(Path(dataset_dir))
            if unnamed:
                shown = ", ".join(unnamed[:5]) + (f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else "")
                log(f"warning: {PERSONS_FILE} names no person for {len(unnamed)} of the dataset's clips ({shown}); "
                    "each counts as its own person (its keys are clip names: the video's file name without "
                    "its extension)")
            drawing_started = time.monotonic()
            build_bank(Path(dataset_dir), bank_dir, wanted, progress=_every_tenth(log), workers=workers)
            log(f"drew {wanted.examples} examples in {time.monotonic() - drawing_started:.0f} s")
        if world > 1:
            torch.distributed.barrier()
    torch.manual_seed(config.seed)
    banks = {kind: load_bank(bank_dir / f"{kind}.npz") for kind in KINDS}
    for kind, bank in banks.items():  # (a bank drawn before banks had a record: its patches must fit the networks)
        side = region_spec_of(kind, config.eye_side, config.mouth_side).side
        if bank["real"].shape[1] != side:
            raise DatasetError(f"'{bank_dir}' holds {kind} patches of {bank['real'].shape[1]} pixels, this run's "
                               f"config makes {side}: delete '{bank_dir}' to draw the examples again, or train into "
                               "a new RUN_DIR.")
    trainers = {kind: KindTrainer(kind, banks.pop(kind), config, chosen, world) for kind in KINDS}
    if rank == 0 and not trainers[KINDS[0]].held_out_people:
        log("warning: fewer than 10 people in the dataset, so none is held out: the validation scores and the "
            "choice of best.pt are made on examples the networks train on (they say how well it fits, not how "
            "well it does on a new face)")
    step, best, history = 0, math.inf, []
    checkpointed = None  # the step last.pt holds
    if saved is not None:
        step, best, history = int(saved["step"]), float(saved.get("best", math.inf)), list(saved.get("history", []))
        checkpointed = step
        if not (run_dir / BEST).exists():  # deleted: the next checkpoint writes a new one
            best = math.inf
        for kind, trainer in trainers.items():
            trainer.restore(saved[kind])
        log(f"resuming at step {step}" + (f", training the {only} generator only" if only else ""))
        del saved
    elif initial is not None:
        for kind, trainer in trainers.items():
            trainer.generator.load_state_dict(initial[kind])
        log(f"starting from the generators of {init}" + (f", training the {only} generator only" if only else ""))
    training = [kind for kind in KINDS if only in (None, kind)]
    stop = {"now": False}
    # Ctrl-C and SIGTERM (a scheduler's stop) end the run after the step in progress, saved like its end.
    caught = (signal.SIGINT, signal.SIGTERM) if threading_is_main() else ()
    previous = {number: signal.signal(number, lambda *_: stop.update(now=True)) for number in caught}
    started = time.monotonic()
    scores: dict[str, float] = {}
    written: set[str] = set()

    def save(path: Path, with_training_state: bool, best_score: float) -> None:
        payload = {"step": step, "config": config.to_dict(), "best": best_score, "history": history, "only": only}
        for kind, trainer in trainers.items():
            payload[kind] = trainer.state() if with_training_state else {"generator": trainer.generator.state_dict()}
        save_checkpoint(path, payload, checkpoint_format=REGION_FORMAT)
        written.add(path.name)

    if initial is not None and step == 0 and rank == 0:
        # The model started from is the first candidate for best.pt: a fine-tune may only make it worse.
        scores, best = _checkpoint(trainers, run_dir, step, best, save, log)
        checkpointed = step
    try:
        while step < config.steps and not stop["now"]:
            if minutes is not None and time.monotonic() - started > 60 * minutes:
                break
            rng = np.random.default_rng(hash_seed(config.seed, step, rank))
            logs = {"step": step}
            for kind in training:
                trainer = trainers[kind]
                index = rng.choice(trainer.train_index, config.batch)
                noise = (torch.randn(config.batch, config.noise_channels, trainer.spec.side, trainer.spec.side,
                                     generator=torch.Generator().manual_seed(hash_seed(config.seed, step, rank, 1)))
                         .to(chosen) if config.noise_channels else None)
                for name, value in trainer.step(trainer.batch(index, rng), noise, step >= config.gan_start_step).items():
                    logs[f"{kind}_{name}"] = value
            step += 1
            if rank == 0 and step % config.log_every == 0:
                history.append(logs)
                log(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items()))
            if rank == 0 and (step % config.checkpoint_every == 0 or step == config.steps):
                scores, best = _checkpoint(trainers, run_dir, step, best, save, log)
                checkpointed = step
        if rank == 0 and step != checkpointed:  # stopped between checkpoints (--minutes, Ctrl-C, SIGTERM)
            scores, best = _checkpoint(trainers, run_dir, step, best, save, log)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return TrainingResult(step, scores, {kind: trainer.generator for kind, trainer in trainers.items()}, stop["now"],
                          tuple(name for name in (LAST, BEST) if name in written))


def initial_weights(model: Path, config: RegionConfig) -> dict[str, dict]:
    """Each kind's generator weights from a `train-regions` model (read with weights_only), for fine-tuning,
    checked against networks of the configuration's sizes (the optimisers and discriminators start afresh)."""
    from .checkpoint import load_checkpoint

    payload = load_checkpoint(model, map_location="cpu", expected_format=REGION_FORMAT)
    weights = {}
    for kind in KINDS:
        try:
            weights[kind] = payload[kind]["generator"]
            side = region_spec_of(kind, config.eye_side, config.mouth_side).side
            RegionGenerator(config, side).load_state_dict(weights[kind])
        except (RuntimeError, KeyError, TypeError) as error:
            raise CheckpointError(f"'{model}': its {kind} generator does not fit this configuration's networks "
                                  f"({str(error).splitlines()[0][:200]}); fine-tune with the config it was "
                                  "trained with.") from None
    return weights


def _checkpoint(trainers, run_dir: Path, step: int, best: float, save, log) -> tuple[dict[str, float], float]:
    scores = {}
    for kind, trainer in trainers.items():
        scores.update({f"{kind}_{k}": v for k, v in trainer.validate().items()})
    log("validation " + " ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    # Validation L1 relative to the warp's, summed over the kinds: below 2 means better than the warp.
    total = sum(scores.get(f"{kind}_val_l1", 0.0) / max(scores.get(f"{kind}_val_warp_l1", 1.0), 1e-9)
                for kind in trainers)
    better = total < best
    best = min(best, total)
    # last.pt first: stopped between the two (a full disk, a kill), the folder resumes (a run holding only
    # best.pt is an earlier run's, which a new one never overwrites); a missing best.pt is written again.
    save(run_dir / LAST, with_training_state=True, best_score=best)
    if better:
        save(run_dir / BEST, with_training_state=False, best_score=best)
    sheet = np.concatenate([_pad_to(trainer.samples(), 4 * 96) for trainer in trainers.values()], axis=0)
    # Atomic, and an OSError naming the file when it cannot be written (cv2.imwrite failed silently).
    write_png(run_dir / "samples.png", sheet)
    write_atomic(run_dir / "scores.json", json.dumps({"step": step, **scores}, indent=1).encode())
    return scores, best


def _every_tenth(log):
    """A progress callback that logs each time another tenth of the work is done (work may come in chunks)."""
    logged_tenths = 0

    def progress(done: int, total: int) -> None:
        nonlocal logged_tenths
        if done * 10 // total > logged_tenths:
            logged_tenths = done * 10 // total
            log(f"  {done} / {total} examples")
    return progress


def _pad_to(image: np.ndarray, width: int) -> np.ndarray:
    return np.pad(image, ((0, 0), (0, max(0, width - image.shape[1])), (0, 0)))


def _summary(result: TrainingResult, run_dir: Path) -> str:
    """What the run wrote, and its last scores; or that it had nothing to do (it said "wrote last.pt and
    best.pt" when it wrote neither)."""
    if not result.written:
        return (f"{run_dir} is already trained to step {result.step}: nothing to do (a --config with more steps "
                "trains it on)")
    return (f"wrote {' and '.join(str(run_dir / name) for name in result.written)}; validation: "
            + ", ".join(f"{k} {v:.4f}" for k, v in result.scores.items()))


def run_train_regions(args: argparse.Namespace) -> int:
    check_output_folder(args.out)  # before any work (drawing the bank can take many minutes)
    # No --config: the cpu preset for a new run, the run's own settings for one that resumes.
    config = load_region_config(args.config) if args.config is not None else None
    result = train_regions(args.dataset, args.out, config, examples=args.examples, minutes=args.minutes,
                           device=args.device, log=lambda line: print(line, file=sys.stderr, flush=True),
                           workers=args.workers or os.cpu_count() or 1, init=args.init, only=args.only)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    if rank == 0:  # (rank 0 writes the files)
        print(_summary(result, Path(args.out)))
    # (train-regions has no --resume: the same command again goes on from last.pt)
    return interrupted_exit(result.interrupted, result.step, args.out, "the same command again goes on from there")
