"""Training examples for the refine engine, made from a prepared dataset (enliven.neural.prepare).

An example is a PAIR of neighbouring target frames of one clip, both
animated from the same source frame of that clip, exactly as the refine
engine will animate a photo:
  * the source frame is treated as the photo: a Subject built from its stored
    landmarks and person mask (no face analysis at training time), and a
    WarpEngine on it (cached: a few source frames per clip);
  * each target's landmarks are solved for channel values against the
    source's rig (enliven.solver, as capture does), and the warp engine
    renders those values (WarpEngine.render_with_fields);
  * everything is cropped to the head region at the model's side
    (enliven.engines.crops.crop_inputs), and the real target frame the same way.

Which clip, source and target an example uses is a pure function of
(seed, step, rank, slot): training resumes bit for bit without saving any
data-loader state, and DDP ranks draw different examples with no sampler.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import landmarks as lm
from ..analysis import Subject, head_region_box
from ..engines.crops import crop_inputs, to_crop_points
from ..engines.background import head_plate
from ..engines.warp import WarpEngine
from ..geometry import estimate_head_pose
from ..solver import Solver
from .config import RefineConfig
from .tensors import to_tensor
from .prepare import ClipArrays, DatasetError, load_clip, read_index

# Landmarks whose surroundings the motion-consistency term compares: the face mesh, thinned, and the lips in full.
MOTION_LANDMARKS = np.unique(np.concatenate([np.arange(0, 468, 6), lm.LIPS_UPPER_OUTER, lm.LIPS_LOWER_OUTER]))
ENGINE_CACHE = 512  # warp engines (one per source frame) kept per process: about 1 MB each at 256 px


@dataclass(frozen=True)
class ExampleKey:
    step: int
    rank: int
    slot: int


def subject_from_frame(clip: ClipArrays, index: int, name: str) -> Subject:
    """A stored frame as a photo ready for the warp engine (the stored landmarks and mask: no MediaPipe)."""
    image = np.ascontiguousarray(clip.frames[index])
    points = np.asarray(clip.landmarks[index], dtype=np.float32)
    region = head_region_box(points, image.shape)
    x0, y0, x1, y1 = region
    mask = np.asarray(clip.masks[index][y0:y1, x0:x1], dtype=np.float32) / 255.0
    face_box = (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max()))
    return Subject(image=image, image_hash=f"{name}:{index}", landmarks=points,
                   pose=estimate_head_pose(points.astype(np.float64)), face_box=face_box, faces_found=1,
                   face_index=0, head_region=region, mask=mask)


class WarpEngineCache:
    """Warp engines (with their solvers) of stored source frames, the most recently used kept: building one
    costs more than rendering a frame with it."""

    def __init__(self, size: int = ENGINE_CACHE):
        self.size = size
        self._engines: OrderedDict[tuple[str, int], tuple[WarpEngine, Solver]] = OrderedDict()

    def get(self, clip: ClipArrays, name: str, source: int) -> tuple[WarpEngine, Solver]:
        key = (name, source)
        if key not in self._engines:
            # Its plate without the backdrop's pattern carried on (engines.background): training renders eye
            # and mouth patches, which never show the band a head uncovers, and drawing examples builds
            # thousands of engines, at up to 2 s each with it.
            subject = subject_from_frame(clip, source, name)
            engine = WarpEngine(subject, plate=head_plate(subject, pattern=False))
            self._engines[key] = (engine, Solver(engine.rig))
            while len(self._engines) > self.size:
                self._engines.popitem(last=False)
        self._engines.move_to_end(key)
        return self._engines[key]


class PairDataset(torch.utils.data.Dataset):
    """Indexed by ExampleKey; returns a dict of tensors with a leading dimension of 2 (the two neighbours)."""

    def __init__(self, dataset_dir: str | Path, config: RefineConfig, clips: list[str] | None = None):
        self.dataset_dir = Path(dataset_dir)
        self.config = config
        index = read_index(self.dataset_dir)
        left_out = set(config.holdout) | set(config.validation)
        names = clips if clips is not None else [c for c in index["clips"] if c not in left_out]
        if not names:
            raise DatasetError(f"No clips left to train on in '{dataset_dir}' (all held out or for validation?).")
        self.names = names
        self.clips = {name: load_clip(self.dataset_dir, name) for name in names}
        usable = {name: clip for name, clip in self.clips.items() if len(clip.frames) > config.neighbour_gap}
        if not usable:
            raise DatasetError(f"The clips in '{dataset_dir}' are too short for neighbour pairs.")
        self.names = list(usable)
        lengths = np.array([len(self.clips[n].frames) for n in self.names], dtype=np.float64)
        self.clip_weights = lengths / lengths.sum()  # every frame equally likely
        self.sources = {n: np.unique(np.linspace(0, len(self.clips[n].frames) - 1, config.sources_per_clip).round()
                                     .astype(int)) for n in self.names}
        self._engines = WarpEngineCache()

    def __getstate__(self) -> dict:
        """What a DataLoader worker process gets: the dataset's folder and choices, not its frames (memory-mapped
        here; pickling them would copy every frame into every worker) nor its warp engines."""
        state = dict(self.__dict__)
        state["clips"], state["_engines"] = None, WarpEngineCache()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.clips = {name: load_clip(self.dataset_dir, name) for name in self.names}

    def __len__(self) -> int:  # a nominal epoch: every stored frame once
        return int(sum(len(c.frames) for c in self.clips.values()))

    def choose(self, key: ExampleKey) -> tuple[str, int, int, int]:
        """(clip, source frame, first target, second target) for this key: a pure function of the seed and key."""
        rng = np.random.default_rng([self.config.seed, key.step, key.rank, key.slot])
        name = self.names[int(rng.choice(len(self.names), p=self.clip_weights))]
        source = int(rng.choice(self.sources[name]))
        count = len(self.clips[name].frames)
        first = int(rng.integers(0, count - self.config.neighbour_gap))
        return name, source, first, first + self.config.neighbour_gap

    def engine(self, name: str, source: int) -> tuple[WarpEngine, Solver]:
        return self._engines.get(self.clips[name], name, source)

    def __getitem__(self, key: ExampleKey) -> dict[str, torch.Tensor]:
        name, source, *targets = self.choose(key)
        return self.augment(self.example(name, source, targets), key)

    def augment(self, example: dict[str, torch.Tensor], key: ExampleKey) -> dict[str, torch.Tensor]:
        """Mirror and recolour an example (both frames of the pair alike), as a function of its key.

        A few clips are a few faces: without this the generator learns where
        *their* hair and shadows were and paints them onto new faces.
        """
        rng = np.random.default_rng([self.config.seed, key.step, key.rank, key.slot, 1])
        flip = self.config.augment_flip and rng.random() < 0.5
        gain = 1.0 + self.config.augment_colour * rng.uniform(-1, 1, 3)
        offset = self.config.augment_colour * rng.uniform(-1, 1, 3)
        out = dict(example)
        if flip:
            for name in ("warped", "source", "target", "displacement", "masks", "face_gate"):
                out[name] = out[name].flip(-1)
            out["displacement"] = out["displacement"] * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
            for name in ("target_points", "source_points"):
                out[name] = out[name] * torch.tensor([-1.0, 1.0])
        if self.config.augment_colour:
            gain_t = torch.tensor(gain, dtype=torch.float32).view(1, 3, 1, 1)
            offset_t = torch.tensor(offset, dtype=torch.float32).view(1, 3, 1, 1)
            for name in ("warped", "source", "target"):
                out[name] = ((out[name] + 1) * gain_t - 1 + offset_t).clamp(-1, 1)
        return out

    def example(self, name: str, source: int, targets: list[int]) -> dict[str, torch.Tensor]:
        engine, solver = self.engine(name, source)
        clip = self.clips[name]
        side = self.config.side
        x0, y0, x1, y1 = engine.region
        source_points = to_crop_points(engine, engine.subject.landmarks[MOTION_LANDMARKS], side)
        items = []
        for target in targets:
            values = solver.solve(np.asarray(clip.landmarks[target], dtype=np.float64))
            warped = engine.render_with_fields(values)
            inputs = crop_inputs(engine, warped, side)
            real = cv2.resize(np.ascontiguousarray(clip.frames[target][y0:y1, x0:x1]), (side, side),
                              interpolation=cv2.INTER_AREA)
            target_points = to_crop_points(engine, warped.target_landmarks[MOTION_LANDMARKS], side)
            items.append({
                "warped": to_tensor(inputs.warped),
                "source": to_tensor(inputs.source),
                "displacement": torch.from_numpy(inputs.displacement.transpose(2, 0, 1).copy()),
                "masks": torch.from_numpy(inputs.masks.transpose(2, 0, 1).copy()),
                "face_gate": torch.from_numpy(inputs.face_gate[None].copy()),
                "target": to_tensor(real),
                # grid_sample units: pixel centres at (2 i + 1) / side - 1
                "target_points": torch.from_numpy((2 * target_points + 1) / side - 1),
                "source_points": torch.from_numpy((2 * source_points + 1) / side - 1),
            })
        return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def collate_pairs(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pairs -> one batch; items 2k and 2k+1 are neighbours."""
    return {k: torch.cat([e[k] for e in examples]) for k in examples[0]}


class StepBatches(torch.utils.data.Sampler):
    """The keys of each step's batch, from `start_step` on: resuming continues the same sequence."""

    def __init__(self, start_step: int, steps: int, rank: int, batch_pairs: int):
        self.start_step, self.steps, self.rank, self.batch_pairs = start_step, steps, rank, batch_pairs

    def __iter__(self):
        for step in range(self.start_step, self.steps):
            yield [ExampleKey(step, self.rank, slot) for slot in range(self.batch_pairs)]

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)
