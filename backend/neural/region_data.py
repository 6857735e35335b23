"""Training examples for the region generator, made once from a prepared dataset (`enliven prepare`).

An example is what the region generator sees at render time, and what it
should have made:
  * a clip's SOURCE frame plays the photo (a Subject from its stored landmarks and
    mask: no face analysis here) and a WarpEngine animates it;
  * a TARGET frame of the same clip is solved into channel values (as capture does)
    and the warp engine renders them: exactly what inference sees;
  * every region (both eyes, the mouth) is cut out of that rendering by the rig's
    target landmarks, and out of the REAL target frame by the same transform: the
    answer. The source frame gives the identity patches.

The examples are drawn once into a "bank" (one .npz of uint8 arrays per region kind),
so training reads memory, not the warp engine: on a 2-core CPU the warp engine would
otherwise cost more than the networks. Drawing weights people, not clips (a person with
24 clips counts as one), and oversamples what the warp engine cannot paint: closed eyes
and open mouths.
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import landmarks as lm
from ..images import atomic_file, write_atomic
from ..engines.regions import RegionSpec, cut_patch, region_inputs, region_specs, source_region
from .dataset import WarpEngineCache
from .prepare import ClipArrays, DatasetError, load_clip, read_index

PERSONS_FILE = "persons.json"  # optional, in the dataset folder: {"clip name": "person", ...}
BANK_RECORD = "bank.json"  # beside a bank: the dataset and BankConfig it was drawn with
CLOSED_EYE_RATIO = 0.5  # a frame's eyes are closed under this fraction of its clip's median eye aspect ratio
OPEN_MOUTH_GAP = 0.2  # a mouth is open over this inner-lip gap, as a fraction of the mouth's width
ENGINE_CACHE = 64
BANK_CHUNK = 64  # draws a worker renders at a time: consecutive ones mostly share a source frame (one engine)


@dataclass(frozen=True)
class BankConfig:
    examples: int = 12000  # frames drawn; each gives two eye patches and one mouth patch
    closed_eye_share: float = 0.3  # of the draws, targets with closed eyes
    open_mouth_share: float = 0.3  # of the draws, targets with an open mouth
    sources_per_clip: int = 6  # distinct source frames ("photos") per clip
    eye_side: int = 64
    mouth_side: int = 96
    seed: int = 0


@dataclass
class ClipStats:
    closed: np.ndarray  # indices of the frames with closed eyes
    open_mouth: np.ndarray  # indices of the frames with an open mouth
    sources: np.ndarray  # frames that may play the photo: eyes open


def clip_stats(clip: ClipArrays, sources_per_clip: int) -> ClipStats:
    points = np.asarray(clip.landmarks)
    eyes = np.array([(lm.eye_aspect_ratio(p, "right") + lm.eye_aspect_ratio(p, "left")) / 2 for p in points])
    gaps = np.array([lm.mouth_openness(p) for p in points])
    median = float(np.median(eyes))
    open_eyes = np.flatnonzero(eyes >= 0.8 * median)
    picks = open_eyes[np.linspace(0, len(open_eyes) - 1, min(sources_per_clip, len(open_eyes))).round().astype(int)]
    return ClipStats(np.flatnonzero(eyes < CLOSED_EYE_RATIO * median), np.flatnonzero(gaps > OPEN_MOUTH_GAP),
                     np.unique(picks))


def read_persons(dataset_dir: Path, names: list[str]) -> dict[str, str]:
    """Clip -> person. Without a persons.json every clip is its own person."""
    path = Path(dataset_dir) / PERSONS_FILE
    if not path.exists():
        return {name: name for name in names}
    try:
        persons = json.loads(path.read_text())
    except ValueError as error:
        raise DatasetError(f"'{path}' is not valid JSON ({error}); it should map clip names to people.") from None
    if not isinstance(persons, dict):
        raise DatasetError(f"'{path}' must hold a JSON object mapping clip names to people.")
    return {name: str(persons.get(name, name)) for name in names}


def unnamed_clips(dataset_dir: Path) -> list[str]:
    """The dataset's clips that its persons.json (if it has one) names no person for: each is counted as its own
    person. (Keys written as file names, "take1.mp4" for the clip "take1", match nothing, and nothing said so.)"""
    path = Path(dataset_dir) / PERSONS_FILE
    if not path.exists():
        return []
    names = _clips_of(dataset_dir)
    read_persons(dataset_dir, [])  # refuses a file that is not a JSON object, as drawing would
    persons = json.loads(path.read_text())
    return [name for name in names if name not in persons]


class ExampleDrawer:
    """Draws (clip, source, target) triples and renders their region inputs and answers."""

    def __init__(self, dataset_dir: Path, config: BankConfig, clips: list[str] | None = None):
        self.config = config
        index = read_index(dataset_dir)
        names = clips if clips is not None else list(index["clips"])
        self.clips = {name: load_clip(dataset_dir, name) for name in names}
        self.stats = {name: clip_stats(clip, config.sources_per_clip) for name, clip in self.clips.items()}
        self.names = [name for name in names if len(self.stats[name].sources) and len(self.clips[name].frames) > 1]
        if not self.names:
            raise DatasetError(f"No clips in '{dataset_dir}' with enough frames to draw examples from.")
        self.persons = persons = read_persons(dataset_dir, self.names)
        self.people = sorted(set(persons.values()))
        self.clips_of = {person: [n for n in self.names if persons[n] == person] for person in self.people}
        self.specs = region_specs(config.eye_side, config.mouth_side)
        self.engines = WarpEngineCache(ENGINE_CACHE)

    def draw(self, rng: np.random.Generator) -> tuple[str, int, int]:
        person = self.people[int(rng.integers(len(self.people)))]
        names = self.clips_of[person]
        lengths = np.array([len(self.clips[n].frames) for n in names], np.float64)
        name = names[int(rng.choice(len(names), p=lengths / lengths.sum()))]
        stats = self.stats[name]
        source = int(rng.choice(stats.sources))
        roll = rng.random()
        if roll < self.config.closed_eye_share and len(stats.closed):
            target = int(rng.choice(stats.closed))
        elif roll < self.config.closed_eye_share + self.config.open_mouth_share and len(stats.open_mouth):
            target = int(rng.choice(stats.open_mouth))
        else:
            target = int(rng.integers(len(self.clips[name].frames)))
        return name, source, target

    def example(self, name: str, source: int, target: int) -> list[dict[str, np.ndarray]]:
        """Per region spec: its inputs and the real patch."""
        engine, solver = self.engines.get(self.clips[name], name, source)
        clip = self.clips[name]
        warped = engine.render_with_fields(solver.solve(np.asarray(clip.landmarks[target], np.float64)),
                                           keep_fields=False)
        real = np.asarray(clip.frames[target])
        out = []
        for spec in self.specs:
            inputs = region_inputs(spec, warped.frame, warped.target_landmarks,
                                   source_region(spec, engine.subject.image, engine.subject.landmarks))
            out.append({"warped": inputs.warped, "source": inputs.source, "real": cut_patch(real, inputs.transform, spec.side),
                        "target_shape": _to_u8(inputs.target_shape), "source_shape": _to_u8(inputs.source_shape)})
        return out


def _to_u8(shape: np.ndarray) -> np.ndarray:
    return np.round(shape * 255).astype(np.uint8)


def build_bank(dataset_dir: Path, out: Path, config: BankConfig = BankConfig(),
               progress: Callable[[int, int], None] | None = None, workers: int = 1) -> dict[str, Path]:
    """Draw `config.examples` examples and write one bank per region kind: OUT/eye.npz, OUT/mouth.npz.

    Each bank holds uint8 arrays warped, source, real (B, S, S, 3), target_shape and source_shape
    (B, S, S, 3), and `closed` / `open` flags (B,) for the oversampled kinds. `workers` processes render
    the examples (the warp engine is the cost: about 27 examples a second per core); the bank is the
    same whatever their number."""
    drawer = ExampleDrawer(dataset_dir, config)
    rng = np.random.default_rng(config.seed)
    # Rendered grouped by source frame, so each warp engine is built once (building one costs more than
    # rendering with it); training draws from the bank at random, so the order does not matter there.
    draws = sorted(drawer.draw(rng) for _ in range(config.examples))
    if workers <= 1 or len(draws) <= BANK_CHUNK:
        chunks = [_render_draws(drawer, draws, progress)]
    else:
        chunks = _render_in_processes(Path(dataset_dir), config, draws, workers, progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / BANK_RECORD).unlink(missing_ok=True)  # written last: a bank half replaced never has an old record
    paths = {}
    for kind in ("eye", "mouth"):
        path = out / f"{kind}.npz"
        keys = chunks[0][kind].keys()
        write_npz(path, {key: np.concatenate([chunk[kind][key] for chunk in chunks]) for key in keys})
        paths[kind] = path
    write_atomic(out / BANK_RECORD, json.dumps({"dataset": str(Path(dataset_dir).resolve()),
                                                "clips": _clips_of(dataset_dir), **asdict(config)}, indent=1).encode())
    return paths


def check_bank(bank_dir: Path, dataset_dir: Path | None, wanted: BankConfig, examples_given: bool) -> dict | None:
    """The record of the bank already drawn in `bank_dir` (None for one drawn before banks had a record), or a
    DatasetError naming how it differs from the bank a run asks for: drawn from another dataset, at other
    patch sides, or (when `examples_given`) with another number of examples. (It was used whatever was asked.)"""
    path = Path(bank_dir) / BANK_RECORD
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        drawn = {name: record[name] for name in ("examples", "eye_side", "mouth_side")}
        drawn["dataset"] = record["dataset"]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"'{path}' is not a bank record written by `enliven train-regions` ({error}); delete "
                           f"'{bank_dir}' to draw the examples again.") from None
    asked = {"eye_side": wanted.eye_side, "mouth_side": wanted.mouth_side}
    if dataset_dir is not None:
        # The same dataset is the same clips, wherever it is now (a run folder copied to another machine, a
        # disk mounted elsewhere); a record without its clips names the dataset by its path.
        if "clips" in record:
            drawn["clips"] = record["clips"]
            asked["clips"] = _clips_of(dataset_dir)
        else:
            asked["dataset"] = str(Path(dataset_dir).resolve())
    if examples_given:
        asked["examples"] = wanted.examples
    differences = [f"{name} {drawn[name]} -> {value}" if name != "clips" else f"the dataset {drawn['dataset']} -> "
                   f"{Path(dataset_dir).resolve()}, whose clips differ" for name, value in asked.items()
                   if drawn[name] != value]
    if differences:
        raise DatasetError(f"'{bank_dir}' holds {drawn['examples']} examples drawn otherwise than this run asks "
                           f"({', '.join(differences)}): give what it was drawn with, delete '{bank_dir}' to draw "
                           "them again, or train into a new RUN_DIR.")
    return record


def _clips_of(dataset_dir: Path) -> list[str]:
    return sorted(read_index(Path(dataset_dir))["clips"])


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez's file (np.load reads it), complete or absent: on a full disk an OSError naming `path`, and no
    partial file left. (np.savez left its partial file, and its zip open, which printed a second error later.)"""
    with atomic_file(path) as stream, zipfile.ZipFile(stream, "w") as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as entry:  # (np.savez's zip64: banks over 4 GB)
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def _render_draws(drawer: ExampleDrawer, draws: list[tuple[str, int, int]],
                  progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The examples of `draws`, per region kind: {kind: {array name: stacked arrays}}."""
    banks: dict[str, dict[str, list]] = {"eye": {}, "mouth": {}}
    for number, (name, source, target) in enumerate(draws):
        stats = drawer.stats[name]
        for spec, item in zip(drawer.specs, drawer.example(name, source, target)):
            bank = banks[spec.kind]
            for key, value in item.items():
                bank.setdefault(key, []).append(value)
            flagged = stats.closed if spec.kind == "eye" else stats.open_mouth
            bank.setdefault("flag", []).append(bool(np.isin(target, flagged)))
            bank.setdefault("person", []).append(drawer.people.index(drawer.persons[name]))
        if progress:
            progress(number + 1, len(draws))
    return {kind: {key: np.stack(values) for key, values in bank.items()} for kind, bank in banks.items()}


_worker_drawer: ExampleDrawer | None = None  # one per worker process, made by _start_worker


def _start_worker(dataset_dir: Path, config: BankConfig) -> None:
    import cv2

    global _worker_drawer
    cv2.setNumThreads(1)  # one process per core already
    _worker_drawer = ExampleDrawer(dataset_dir, config)


def _render_chunk(draws: list[tuple[str, int, int]]) -> dict[str, dict[str, np.ndarray]]:
    return _render_draws(_worker_drawer, draws)


def _render_in_processes(dataset_dir: Path, config: BankConfig, draws: list[tuple[str, int, int]], workers: int,
                         progress: Callable[[int, int], None] | None) -> list[dict[str, dict[str, np.ndarray]]]:
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from .train import worker_start_method

    pieces = [draws[start:start + BANK_CHUNK] for start in range(0, len(draws), BANK_CHUNK)]
    context = multiprocessing.get_context(worker_start_method())
    chunks, done = [], 0
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(dataset_dir, config)) as pool:
        for piece, chunk in zip(pieces, pool.map(_render_chunk, pieces)):  # in order: the same bank as one process
            chunks.append(chunk)
            done += len(piece)
            if progress:
                progress(done, len(draws))
    return chunks


def load_bank(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise DatasetError(f"'{path}' is not a region bank made by `enliven train-regions` ({error}).") from None


def region_spec_of(kind: str, eye_side: int, mouth_side: int) -> RegionSpec:
    return next(spec for spec in region_specs(eye_side, mouth_side) if spec.kind == kind)
