"""The neural region generator against the warp engine, on people it never saw (issue #12's measures).

    python bench/bench_regions.py [--checkpoint REGIONS.pt] [--videos DIR] [--photos DIR] [--out DIR]

1. Self-reenactment on every clip of --videos (default ../shared/eval-data/videos):
   frame 0 is the photo, the clip is captured into motion, and both engines
   render it. Scored on the eye and mouth patches, cut by the rig's target
   landmarks from the real and the generated frames alike:
     * closed eyes: real frames whose eye aspect ratio is under half the clip's median;
     * open mouth: real frames whose inner-lip gap is over 0.2 of the mouth's width;
   L1 (pixels 0..1, weighted by the paste mask) and SSIM (grey, over the patch); and L1 again on the
   patches cut where the real frame's tracked landmarks put them (the same real pixels whatever the rig
   draws: the figure to compare two rigs or captures by);
   and the whole frame (AKD, AED, L1 at 256 px, bench/quality_metrics.py) on every 6th frame.
2. On every photo of --photos that shows one face (and the bundled astronaut):
     * blink 1.0 re-detected by MediaPipe: eye aspect ratio as a fraction of the neutral frame's
       (closed under 25 %);
     * gaze_x and gaze_y +-1: how far the re-detected iris moved, as a fraction of how far the rig moved it.
3. A contact sheet per photo (--out/sheets): warp | neural crops of the eyes and the mouth at 100 %,
   for blink, gaze and talk, and per clip real | warp | neural for closed-eye and open-mouth frames.

Prints a markdown report and writes it to --out/regions.md with regions.json.
Everything written is pictures of evaluation footage: keep --out outside the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import enliven  # noqa: F401 - first: it keeps numpy's BLAS to one thread, as the enliven command does
import cv2
import numpy as np

from enliven import landmarks as lm
from enliven.analysis import analyze_image
from enliven.animator import Animator
from enliven.capture import FaceTracker
from enliven.engines.refine import DEFAULT_REGIONS
from enliven.engines.regions import cut_patch, paste_mask, patch_transform, region_specs
from enliven.errors import EnlivenError
from enliven.images import load_image, write_png
from enliven.neural.region_data import CLOSED_EYE_RATIO, OPEN_MOUTH_GAP
from enliven.shared.channels import CHANNEL_INDEX, default_vector

from bench_output import render_rate, showcase
from quality import read_frames, self_reenactment
from quality_metrics import Scorer

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval-data"
ASTRONAUT = REPO / "backend" / "assets" / "astronaut.png"
EXTRA_FRAMES = 12  # closed-eye and open-mouth frames scored per clip, at most, of each kind
CROP_SCALE = 1.0  # contact sheets show crops at 100 %


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two RGB uint8 patches (grey, 7 px Gaussian windows; Wang et al. 2004)."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda image: cv2.GaussianBlur(image, (7, 7), 1.5)
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())


def masked_l1(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float((np.abs(a.astype(np.float64) - b) / 255.0 * mask[..., None]).sum() / (3 * mask.sum()))


def values(**channels: float) -> np.ndarray:
    out = default_vector().astype(np.float64)
    for name, value in channels.items():
        out[CHANNEL_INDEX[name]] = value
    return out


# ---------------------------------------------------------------- self-reenactment


def score_clip(path: Path, checkpoint: Path | None, scorer: Scorer, sheets: Path) -> dict:
    clip = self_reenactment(path)
    points = clip.capture.landmarks
    found = np.isfinite(points).all(axis=(1, 2))
    eyes = np.array([(lm.eye_aspect_ratio(p, "right") + lm.eye_aspect_ratio(p, "left")) / 2 if ok else np.nan
                     for p, ok in zip(points, found)])
    gaps = np.array([lm.mouth_openness(p) if ok else np.nan for p, ok in zip(points, found)])
    closed = np.flatnonzero(eyes < CLOSED_EYE_RATIO * np.nanmedian(eyes))
    opened = np.flatnonzero(gaps > OPEN_MOUTH_GAP)
    pick = lambda frames: frames[np.linspace(0, len(frames) - 1, min(EXTRA_FRAMES, len(frames))).round().astype(int)] \
        if len(frames) else frames
    closed, opened = pick(closed[closed > 0]), pick(opened[opened > 0])
    frames = {**clip.frames, **read_frames(path, set(closed.tolist()) | set(opened.tolist()))}
    engines = {"warp": Animator(clip.subject), "neural": Animator(clip.subject, engine="refine", checkpoint=checkpoint)}
    rig = engines["warp"].engine.rig
    specs = region_specs()
    masks = {spec.name: paste_mask(spec) for spec in specs}
    rows: dict[str, list[dict]] = {"closed_eyes": [], "open_mouth": []}
    sheet_rows = []
    for kind, indices in (("closed_eyes", closed), ("open_mouth", opened)):
        for index in indices:
            target = rig.targets(clip.motion[index])
            rendered = {name: animator.render(clip.motion[index]) for name, animator in engines.items()}
            for spec in specs:
                if (spec.kind == "eye") != (kind == "closed_eyes"):
                    continue
                transform = patch_transform(target, spec)
                real = cut_patch(frames[index], transform, spec.side)
                # The same region cut where the real frame's tracked landmarks put it: the same real pixels
                # whatever the rig draws, so that two rigs (or captures) compare on one footing.
                at_real = patch_transform(points[index], spec)
                real_at_real = cut_patch(frames[index], at_real, spec.side)
                row = {"frame": int(index), "region": spec.name}
                crops = [real]
                for name, frame in rendered.items():
                    patch = cut_patch(frame, transform, spec.side)
                    row[f"{name}_l1"] = masked_l1(patch, real, masks[spec.name])
                    row[f"{name}_ssim"] = ssim(patch, real)
                    row[f"{name}_real_cut_l1"] = masked_l1(cut_patch(frame, at_real, spec.side), real_at_real,
                                                           masks[spec.name])
                    crops.append(patch)
                rows[kind].append(row)
                if len(sheet_rows) < 8 and spec.name != "left_eye":
                    sheet_rows.append(np.concatenate(crops, axis=1))
    whole = {name: [] for name in engines}
    for index in clip.targets:
        real = scorer.real(frames[index])
        for name, animator in engines.items():
            whole[name].append(scorer.score(real, animator.render(clip.motion[index])))
    if sheet_rows:
        width = max(r.shape[1] for r in sheet_rows)
        sheet = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in sheet_rows])
        write_png(sheets / f"clip_{path.stem}.png", cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
    return {"clip": path.stem, **rows,
            "whole": {name: {metric: float(np.nanmean([s[metric] for s in scores])) for metric in ("AKD", "AED", "L1")}
                      for name, scores in whole.items()}}


# ---------------------------------------------------------------- photos: blink and gaze


def iris_centres(points: np.ndarray) -> np.ndarray:
    return points[[lm.RIGHT_IRIS[0], lm.LEFT_IRIS[0]], :2]


def score_photo(path: Path, checkpoint: Path | None, sheets: Path) -> dict | None:
    image = load_image(path)
    if path != ASTRONAUT and np.array_equal(image, load_image(ASTRONAUT)):
        return None  # the bundled photo again
    try:
        subject = analyze_image(image)
    except EnlivenError as error:  # d8's glasses defeat MediaPipe's face detector: say so in the report
        return {"photo": path.stem, "error": error.message}
    if subject.faces_found > 1:
        return None  # group photos: issue #16 (0 found: the detector missed a face that fills the photo, as on
        # d8 behind its glasses, and the mesh found it on the whole photo)
    engines = {"warp": Animator(subject), "neural": Animator(subject, engine="refine", checkpoint=checkpoint)}
    rig = engines["warp"].engine.rig
    neutral = FaceTracker()(image)
    neutral_ear = (lm.eye_aspect_ratio(neutral, "right") + lm.eye_aspect_ratio(neutral, "left")) / 2
    result = {"photo": path.stem}
    poses = {"blink": values(blink_l=1.0, blink_r=1.0), "gaze_x+1": values(gaze_x=1.0), "gaze_x-1": values(gaze_x=-1.0),
             "gaze_y+1": values(gaze_y=1.0), "gaze_y-1": values(gaze_y=-1.0),
             "talk": values(jaw_open=0.6, smile_l=0.3, smile_r=0.3)}
    crops = []
    for pose, vector in poses.items():
        target = rig.targets(vector)
        wanted = np.linalg.norm(iris_centres(target) - iris_centres(subject.landmarks), axis=1).mean()
        row = []
        for name, animator in engines.items():
            frame = animator.render(vector)
            found = FaceTracker()(frame)
            if pose == "blink":
                ear = ((lm.eye_aspect_ratio(found, "right") + lm.eye_aspect_ratio(found, "left")) / 2
                       if found is not None else np.nan)
                result[f"{name}_blink_ear_ratio"] = float(ear / neutral_ear)
            elif pose.startswith("gaze"):
                moved = (np.linalg.norm(iris_centres(found) - iris_centres(neutral), axis=1).mean()
                         if found is not None else np.nan)
                result[f"{name}_{pose}_iris_fraction"] = float(moved / wanted)
            spec = region_specs()[2] if pose == "talk" else region_specs()[0]
            row.append(_crop(frame, target, spec))
        crops.append(np.concatenate(row, axis=1))
    width = max(c.shape[1] for c in crops)
    sheet = np.concatenate([np.pad(c, ((0, 4), (0, width - c.shape[1]), (0, 0))) for c in crops])
    write_png(sheets / f"photo_{path.stem}.png", sheet)
    return result


def _crop(frame: np.ndarray, target: np.ndarray, spec) -> np.ndarray:
    """The region at the photo's own resolution (100 %), upright: the patch transform without its scaling."""
    transform = patch_transform(target, spec)
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    side = int(round(spec.side / scale * CROP_SCALE))
    native = transform.copy()
    native[:, :2] *= CROP_SCALE / scale
    centre = cv2.invertAffineTransform(transform) @ np.array([(spec.side - 1) / 2, (spec.side - 1) / 2, 1.0])
    native[:, 2] = (side - 1) / 2 - native[:, :2] @ centre
    return cv2.warpAffine(frame, native, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def astronaut_sheet(checkpoint: Path | None, zoom: int = 3) -> np.ndarray:
    """warp | refine crops of the bundled (public-domain) astronaut, zoomed, one row per pose, labelled."""
    subject = analyze_image(load_image(ASTRONAUT))
    engines = (Animator(subject), Animator(subject, engine="refine", checkpoint=checkpoint))
    rig = engines[0].engine.rig
    rows = []
    for label, vector, spec in (("blink", values(blink_l=1.0, blink_r=1.0), region_specs()[0]),
                                ("half blink", values(blink_l=0.6, blink_r=0.6), region_specs()[0]),
                                ("gaze left", values(gaze_x=-1.0), region_specs()[0]),
                                ("talk", values(jaw_open=0.6, smile_l=0.3, smile_r=0.3), region_specs()[2]),
                                ("oo", values(jaw_open=0.3, pucker=0.8), region_specs()[2])):
        target = rig.targets(vector)
        crops = [cv2.resize(_crop(engine.render(vector), target, spec), None, fx=zoom, fy=zoom,
                            interpolation=cv2.INTER_NEAREST) for engine in engines]
        row = np.concatenate([crops[0], np.full((crops[0].shape[0], 4, 3), 255, np.uint8), crops[1]], axis=1)
        strip = np.zeros((18, row.shape[1], 3), np.uint8)
        cv2.putText(strip, f"{label}: warp | refine", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
        rows.append(np.concatenate([strip, row]))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows])


# ---------------------------------------------------------------- speed


def speed(checkpoint: Path | None, frames: int = 200) -> dict[str, float]:
    """Median render time per frame (no file writing) on the 512x512 astronaut over the showcase preset,
    which moves every channel, for both engines."""
    subject = analyze_image(load_image(ASTRONAUT))
    motion = showcase(frames)
    out = {}
    for name, animator in (("warp", Animator(subject)),
                           ("neural", Animator(subject, engine="refine", checkpoint=checkpoint))):
        out[f"{name}_ms"] = 1000 * render_rate(animator, motion)
        out[f"{name}_fps"] = 1000 / out[f"{name}_ms"]
    return out


# ---------------------------------------------------------------- report


def markdown(clips: list[dict], photos: list[dict]) -> str:
    lines = ["| clip | closed-eye L1 warp / neural | SSIM warp / neural | open-mouth L1 warp / neural | "
             "SSIM warp / neural | AKD warp / neural | AED warp / neural | L1 warp / neural |",
             "|---|---|---|---|---|---|---|---|"]
    total: dict[str, list[float]] = {}

    def pair(rows: list[dict], metric: str) -> str:
        if not rows:
            return "-"
        warp, neural = np.mean([r[f"warp_{metric}"] for r in rows]), np.mean([r[f"neural_{metric}"] for r in rows])
        return f"{warp:.4f} / {neural:.4f}"

    for clip in clips:
        for kind in ("closed_eyes", "open_mouth"):
            for row in clip[kind]:
                for key, value in row.items():
                    if key.endswith(("_l1", "_ssim")):
                        total.setdefault(f"{kind}:{key}", []).append(value)
        whole = clip["whole"]
        lines.append(f"| {clip['clip']} | {pair(clip['closed_eyes'], 'l1')} | {pair(clip['closed_eyes'], 'ssim')} | "
                     f"{pair(clip['open_mouth'], 'l1')} | {pair(clip['open_mouth'], 'ssim')} | "
                     + " | ".join(f"{whole['warp'][m]:.3f} / {whole['neural'][m]:.3f}" for m in ("AKD", "AED", "L1")) + " |")
    mean = lambda key: float(np.mean(total[key])) if key in total else float("nan")
    whole_mean = {name: {m: float(np.nanmean([c["whole"][name][m] for c in clips])) for m in ("AKD", "AED", "L1")}
                  for name in ("warp", "neural")}
    lines.append(f"| **all** | {mean('closed_eyes:warp_l1'):.4f} / {mean('closed_eyes:neural_l1'):.4f} | "
                 f"{mean('closed_eyes:warp_ssim'):.4f} / {mean('closed_eyes:neural_ssim'):.4f} | "
                 f"{mean('open_mouth:warp_l1'):.4f} / {mean('open_mouth:neural_l1'):.4f} | "
                 f"{mean('open_mouth:warp_ssim'):.4f} / {mean('open_mouth:neural_ssim'):.4f} | "
                 + " | ".join(f"{whole_mean['warp'][m]:.3f} / {whole_mean['neural'][m]:.3f}" for m in ("AKD", "AED", "L1"))
                 + " |")
    for kind, name in (("closed_eyes", "closed eyes"), ("open_mouth", "open mouth")):
        warp, neural = mean(f"{kind}:warp_l1"), mean(f"{kind}:neural_l1")
        change = 100 * (neural / warp - 1)
        lines.append(f"\n{name}: patch L1 {abs(change):.1f} % {'lower' if change <= 0 else 'higher'} with the neural engine "
                     f"({len(total.get(f'{kind}:warp_l1', []))} patches)")
        lines.append(f"  cut where the real frame's landmarks put it: warp {mean(f'{kind}:warp_real_cut_l1'):.4f}, "
                     f"neural {mean(f'{kind}:neural_real_cut_l1'):.4f}")
    lines += ["", "| photo | blink EAR / neutral, warp | neural | gaze iris moved / asked (x+1, x-1, y+1, y-1), warp | neural |",
              "|---|---|---|---|---|"]
    for photo in [p for p in photos if "error" in p]:
        lines.append(f"| {photo['photo']} | {photo['error']} | | | |")
    photos = [p for p in photos if "error" not in p]
    for photo in photos:
        gaze = lambda name: ", ".join(f"{photo[f'{name}_{g}_iris_fraction']:.2f}"
                                      for g in ("gaze_x+1", "gaze_x-1", "gaze_y+1", "gaze_y-1"))
        lines.append(f"| {photo['photo']} | {photo['warp_blink_ear_ratio']:.2f} | {photo['neural_blink_ear_ratio']:.2f} | "
                     f"{gaze('warp')} | {gaze('neural')} |")
    closed = {name: sum(photo[f"{name}_blink_ear_ratio"] < 0.25 for photo in photos) for name in ("warp", "neural")}
    lines.append(f"\nblink 1.0 reads as closed (EAR under 25 % of neutral): warp {closed['warp']} of {len(photos)}, "
                 f"neural {closed['neural']} of {len(photos)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help=f"region generators (default {DEFAULT_REGIONS})")
    parser.add_argument("--videos", type=Path, default=EVAL / "videos")
    parser.add_argument("--photos", type=Path, default=EVAL / "photos")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "enliven-regions")
    parser.add_argument("--clips", type=int, default=None, help="score only the first N clips")
    parser.add_argument("--speed-only", action="store_true", help="only the render speed at 512x512")
    parser.add_argument("--sheet", type=Path, default=None,
                        help="only write the bundled astronaut's warp | refine crops (blink, gaze, talk) to this PNG "
                             "(the picture in docs/measured.md: docs/regions.png)")
    args = parser.parse_args()
    if args.sheet is not None:
        write_png(args.sheet, astronaut_sheet(args.checkpoint))
        print(f"wrote {args.sheet}")
        return
    timing = speed(args.checkpoint)
    print("render at 512x512, median over the showcase preset: " + ", ".join(
        f"{name} {timing[f'{name}_ms']:.1f} ms ({timing[f'{name}_fps']:.0f} frames/s)" for name in ("warp", "neural")))
    if args.speed_only:
        return
    if args.out.resolve().is_relative_to(REPO):
        sys.exit("--out must be outside the repository: the sheets are pictures of evaluation footage.")
    sheets = args.out / "sheets"
    sheets.mkdir(parents=True, exist_ok=True)
    scorer = Scorer()
    clips = []
    for path in sorted(args.videos.glob("*.mp4"))[: args.clips]:
        print(f"clip {path.stem}", file=sys.stderr, flush=True)
        clips.append(score_clip(path, args.checkpoint, scorer, sheets))
    photos = []
    for path in [ASTRONAUT, *sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))]:
        print(f"photo {path.stem}", file=sys.stderr, flush=True)
        result = score_photo(path, args.checkpoint, sheets)
        if result is not None:
            photos.append(result)
    report = markdown(clips, photos)
    print(report)
    (args.out / "regions.md").write_text(report + "\n")
    (args.out / "regions.json").write_text(json.dumps({"clips": clips, "photos": photos}, indent=1))


if __name__ == "__main__":
    main()
