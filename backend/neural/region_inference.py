"""Running the trained region generators on a frame (used by enliven.engines.refine.RefineEngine)."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..device import detect_device
from ..engines.palette import Palette
from ..engines.regions import RegionInputs, paste_correction, paste_mask, region_specs
from ..errors import CheckpointError
from .checkpoint import load_checkpoint
from .config import ConfigError
from .region_config import KINDS, REGION_FORMAT, RegionConfig
from .region_generator import RegionGenerator
from .tensors import bfloat16_autocast


def load_region_generators(path: str | Path, device: torch.device) -> tuple[dict[str, RegionGenerator], RegionConfig, int]:
    """({kind: generator in eval mode}, config, step) from a `train-regions` checkpoint (weights_only)."""
    payload = load_checkpoint(path, map_location="cpu", expected_format=REGION_FORMAT)
    try:
        config = RegionConfig.from_dict(payload["config"])
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"'{path}' holds a configuration this Enliven cannot use: {error}") from None
    generators = {}
    for spec in region_specs(config.eye_side, config.mouth_side):
        if spec.kind in generators:
            continue
        generator = RegionGenerator(config, spec.side)
        try:
            generator.load_state_dict(payload[spec.kind]["generator"])
        except (RuntimeError, KeyError, TypeError) as error:
            raise CheckpointError(f"'{path}': the {spec.kind} generator's weights do not fit its configuration "
                                  f"({str(error).splitlines()[0][:200]}).") from None
        generators[spec.kind] = generator.to(device).eval()
    if set(generators) != set(KINDS):
        raise CheckpointError(f"'{path}' lacks a generator for {', '.join(set(KINDS) - set(generators))}.")
    return generators, config, int(payload["step"])


def shared_corrector(checkpoint: str | Path, device: str = "auto") -> "RegionCorrector":
    """One RegionCorrector per model file (as it is now) and device, shared by every engine that uses it:
    a group photo's faces, each with its own engine, need the networks in memory (or on the GPU) once."""
    path = Path(checkpoint).resolve()
    return _corrector(path, path.stat().st_mtime_ns, device)


@functools.lru_cache(maxsize=4)
def _corrector(path: Path, modified_ns: int, device: str) -> "RegionCorrector":
    return RegionCorrector(path, device=device)


class RegionCorrector:
    """The eye and mouth generators, loaded once; `correct` pastes their corrections into a frame."""

    def __init__(self, checkpoint: str | Path, device: str = "auto"):
        info = detect_device(device)
        self.device = torch.device("cuda" if info.kind == "cuda" else "cpu")
        self.generators, self.config, self.step = load_region_generators(checkpoint, self.device)
        if self.device.type == "cpu":  # about a fifth faster on one CPU thread at these sizes
            self.generators = {kind: g.to(memory_format=torch.channels_last) for kind, g in self.generators.items()}
        self.specs = region_specs(self.config.eye_side, self.config.mouth_side)
        self.masks = {spec.kind: torch.from_numpy(paste_mask(spec))[None, None].to(self.device) for spec in self.specs}
        self.noise = {kind: generator.inference_noise(1, self.device) for kind, generator in self.generators.items()}
        self.autocast = bfloat16_autocast(self.device)  # bfloat16 where the CPU computes in it: both networks 20 -> 14 ms
        # One thread beside the caller's, so that the eye and mouth networks run at once (see _generate_on_cpu).
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="enliven-regions", initializer=torch.set_num_threads,
                                         initargs=(1,))

    def correct(self, frame: np.ndarray, regions: list[RegionInputs],
                limit: tuple[int, int, int, int] | None = None, palette: Palette | None = None,
                weights: list[np.ndarray | None] | None = None) -> None:
        """Correct `frame` (uint8, in place) in each region, inside the box `limit`; regions of one kind run as
        one batch. With the photo's `palette`, corrections take its colours (grey in a black-and-white photo:
        the model learned on colour footage). `weights`, one per region (None: all of it), scales a region's
        correction pixel by pixel ((S, S) in its patch)."""
        weights = weights if weights is not None else [None] * len(regions)
        if len(weights) != len(regions):
            raise ValueError(f"{len(weights)} weights for {len(regions)} regions")
        numbers = [(kind, [i for i, inputs in enumerate(regions) if inputs.spec.kind == kind]) for kind in self.generators]
        numbers = [(kind, batch) for kind, batch in numbers if batch]
        batches = [(kind, [regions[i] for i in batch]) for kind, batch in numbers]
        if self.device.type == "cpu":
            corrections = self._generate_on_cpu(batches)
        else:
            corrections = [self._generate(kind, batch) for kind, batch in batches]
        for (_, batch), batch_corrections in zip(numbers, corrections):
            if palette is not None:
                batch_corrections = palette.paint(batch_corrections)
            for i, correction in zip(batch, batch_corrections):
                if weights[i] is not None:
                    correction = correction * weights[i][..., None]
                paste_correction(frame, np.ascontiguousarray(correction), regions[i].transform, limit)

    def _generate_on_cpu(self, batches: list[tuple[str, list[RegionInputs]]]) -> list[np.ndarray]:
        """Each kind's network on one CPU thread of its own: the eyes' on the worker while the mouth's runs
        here. Patches this small run worst split over threads: two threads a network were faster only on an
        otherwise idle machine (the astronaut 23 against 25 ms a frame) and far slower when other work holds
        the other core (37 against 26: PNG writers during `generate`, a group photo's other faces, training),
        where two networks side by side just take turns (13.0 against 13.6 ms for both)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            beside = [self.worker.submit(self._generate, kind, batch) for kind, batch in batches[:-1]]
            here = [self._generate(*batches[-1])] if batches else []
            return [job.result() for job in beside] + here
        finally:
            torch.set_num_threads(threads)

    def _generate(self, kind: str, batch: list[RegionInputs]) -> np.ndarray:
        """(B, S, S, 3) float32: the corrections of one kind's regions, in levels, through the paste mask.
        Thread-safe (inference mode and autocast are per thread), so it may run on the worker."""
        def stack(name: str, image: bool) -> torch.Tensor:
            array = np.stack([getattr(inputs, name) for inputs in batch])
            tensor = torch.from_numpy(array).permute(0, 3, 1, 2).float()
            return (tensor / 127.5 - 1.0 if image else tensor).to(self.device)

        with torch.inference_mode(), torch.autocast(**self.autocast):
            warped = stack("warped", True)
            noise = self.noise[kind].expand(len(batch), -1, -1, -1) if self.noise[kind] is not None else None
            corrected = self.generators[kind](warped, stack("source", True), stack("target_shape", False),
                                              stack("source_shape", False), self.masks[kind], noise)
            return ((corrected.float() - warped) * 127.5).permute(0, 2, 3, 1).cpu().numpy()
