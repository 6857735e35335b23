"""The person over the background: what a moving head or body uncovers, and how the moved person is
composited over it. The background plate (the photo's region with the person inpainted away, the backdrop's
grain mirrored in, or its pattern carried on where it has one) is made once per subject; each frame blends the moved person over the photo as it was,
or over the plate where the person moved away. numpy, OpenCV and Numba only: no state, no I/O."""
from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .compiled import compiled

PERSON_EPSILON = 1e-3  # a person mask value below this is no person, above 1 minus it all person
PLATE_SIDE = 256  # background plates are inpainted at most this large
MIRROR_SIDE = 1024  # the backdrop's grain is mirrored into a plate at most this large (and scaled up) ...
PLATE_GRAIN = 2.0  # ... the grain being what differs from a Gaussian mean this wide (pixels)
GRAIN_SPREAD = 2.5  # ... held to this many times its spread
GRAIN_BLURS = (0.0, 0.5, 0.7, 0.9, 1.2, 1.6, 2.0)  # Gaussians that may make made-up grain as coarse as the photo's
GRAIN_TRIAL_SIDE = 256  # pixels: the corner of the made-up noise each of those is tried on
MIRROR_PASSES = 3  # a pixel mirrored into the hole again takes what that one took, this many times over
PATTERN_BAND = 0.08  # a patterned backdrop's pattern is carried this far into the hole (of the plate's side) ...
PATTERN = 2.0  # ... where its pattern (Gaussian means 1 and 4 plate pixels wide apart, levels) has this median,
PATTERN_RING = 0.08  # on a ring this wide (of the plate's side) around the hole, and outweighs its grain,
ORIENTED = 0.7  # and its gradients line up this well (structure tensor coherence, median)
FSR_MARGIN = 16  # plate pixels the image is mirrored out by for the reconstruction
MEMBRANE_DIRECT = 6000  # a hole of more pixels is filled exactly only near its edge ...
MEMBRANE_BAND = 12  # ... within this many pixels of it (membrane_filled)
LACKING_REACH = 4.0  # plate pixels: how far around a pixel its detail is weighed against the backdrop's
GRAIN_NEAR = 3.0  # plate pixels: how far around a pixel made-up grain reads the backdrop's grain strength,
GRAIN_AWAY = 2.0  # ... from this far beyond the person's outline on (nearer, hair strands read as grain)
BODY_MEAN = 2.5  # plate pixels: the body's plate is filled from the backdrop's Gaussian mean this wide ...
BODY_TEXTURE_BAND = 0.08  # ... and its texture mirrored in this far (of the plate's side), fading out by twice as far,
FINE_TEXTURE = (0.3, 0.6)  # ... where its detail within a pixel is this much of it (none at the first, all at the second)
ISOTROPIC = (0.65, 0.4)  # ... and its gradients line up this little (structure tensor coherence: none, all),
TEXTURE_REACH = 3.0  # plate pixels: how far around a pixel the backdrop's texture is read for that,
TEXTURE_AREA = 8.0  # ... and how wide an area of it must be such texture


def background_plate(pixels: np.ndarray, mask: np.ndarray, grain: bool = True, pattern: bool = True,
                     membrane: bool = True, made_up_grain_from: float | None = None) -> np.ndarray:
    """`pixels` with the person (`mask` > 0.05, grown a little) inpainted away: what shows where a moving head
    or body uncovers the backdrop.

    The hole is filled by the smoothest surface that meets the backdrop all round its edge (`membrane_filled`),
    done at most PLATE_SIDE large and scaled back. OpenCV's inpainting (Telea's), used before, carries the
    colours at the hole's edge inward along their gradients: a dark object touching the person (a black tile
    above bald_guys #7's head, his own cast shadow beside his ear) ran into the backdrop a moving head
    uncovers as a hard-edged wedge or blob; the membrane spreads it into a soft smudge that fades away from
    where it touches. Without `membrane`, Telea's fill (the breathing body's plate: see body_layer.py).

    That fill is smooth: on a grainy or textured backdrop (an old print, a wall) the uncovered band showed as
    a smooth, painted-looking strip. So the backdrop's grain is added to it, taken from the backdrop itself,
    mirrored across the edge of the inpainted area (each pixel of it takes the grain of the backdrop pixel as
    far beyond the edge, so the grain runs on without a seam). Without `grain`, the smooth fill. With
    `made_up_grain_from` (pixels; the body's plate, whose lean uncovers bands tens of pixels wide), the grain
    is made up instead (`made_up_grain`: as strong as the backdrop's grain nearest each pixel), none within
    that distance of the hole's edge, full from twice as far; nearer the edge, the hole is filled from the
    backdrop's local mean and the backdrop's own texture is mirrored in (`body_texture`).

    A smooth fill does not carry a striped backdrop (boards, blinds) on (Telea's made pale streaks fanning out
    from the person's outline, and a turning head left a halo of them beside it, which the mirrored grain
    bent into chevrons). With `pattern`, where the backdrop around the person has a pattern with a direction
    (`patterned`), the band of the hole that a moving head can uncover is filled again by frequency-selective
    reconstruction (OpenCV's xphoto FSR), which carries the pattern on into it; grain is mirrored in (or made
    up) only where that came out smoother than the backdrop. It takes 0.3-2.0 s a face, so other backdrops
    (plain, grainy, foliage), where it does no better, keep the membrane."""
    height, width = mask.shape
    scale = min(1.0, PLATE_SIDE / max(height, width))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    hole = cv2.dilate((cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0.05).astype(np.uint8),
                      np.ones((7, 7), np.uint8))
    # The grain is mirrored at most MIRROR_SIDE large (on a larger region, finer grain is not seen) ...
    detail_scale = min(1.0, MIRROR_SIDE / max(height, width))
    detail_size = (max(2, round(width * detail_scale)), max(2, round(height * detail_scale)))
    body = made_up_grain_from is not None
    if body:  # filled from the backdrop's local mean, its texture mirrored in on top (below)
        mean = np.clip(local_mean(small, hole, BODY_MEAN) + 0.5, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(mean, hole, 5, cv2.INPAINT_TELEA)
        filled[hole == 0] = small[hole == 0]
    else:
        filled = membrane_filled(small, hole) if membrane else cv2.inpaint(small, hole, 5, cv2.INPAINT_TELEA)
    lacking = None  # with the pattern continued: how much of the backdrop's detail each plate pixel lacks
    if pattern and hole.any() and not hole.all() and patterned(small, hole):
        filled = pattern_continued(small, hole, filled, max(3, round(PATTERN_BAND * max(size))))
        lacking = cv2.resize(detail_lacking(filled, hole), detail_size, interpolation=cv2.INTER_LINEAR)
    plate = cv2.resize(filled, detail_size, interpolation=cv2.INTER_LINEAR)
    if grain and hole.any() and not hole.all():
        sharp = pixels if detail_scale == 1 else cv2.resize(pixels, detail_size, interpolation=cv2.INTER_AREA)
        sharp = sharp.astype(np.float32)
        hole = cv2.resize(hole, detail_size, interpolation=cv2.INTER_NEAREST)
        if body:
            grain_in = body_texture(sharp, hole, size, detail_scale / scale, made_up_grain_from * detail_scale,
                                    lacking)
        else:
            # The backdrop's grain: its difference from its own local mean (the person left out of that mean).
            detail = sharp - local_mean(sharp, hole, PLATE_GRAIN)
            # Grain, not edges: the backdrop's edges mirrored would draw odd shapes, so the detail is held to
            # the grain's own spread (its median absolute deviation over the backdrop).
            spread = GRAIN_SPREAD * 1.4826 * np.median(np.abs(detail[hole == 0]))
            np.clip(detail, -spread, spread, out=detail)
            if lacking is not None:  # grain only where the continued pattern came out smoother than the backdrop
                detail *= lacking[..., None]  # (mirrored over a continued stripe, it bent the stripes into chevrons)
            grain_in = mirrored_into(detail, hole)
        plate = np.clip(plate + grain_in + 0.5, 0, 255).astype(np.uint8)
    # ... and the plate scaled to the region's size.
    return plate if detail_scale == 1 else cv2.resize(plate, (width, height), interpolation=cv2.INTER_LINEAR)


def local_mean(pixels: np.ndarray, hole: np.ndarray, width: float) -> np.ndarray:
    """`pixels`' Gaussian mean `width` wide outside `hole` ((H, W), nonzero inside), the hole left out of it
    (float32; in the hole, the mean of the backdrop around it)."""
    backdrop = (hole == 0).astype(np.float32)
    weight = np.maximum(cv2.GaussianBlur(backdrop, (0, 0), width), 1e-3)
    mean = cv2.GaussianBlur(pixels.astype(np.float32) * backdrop.reshape(*hole.shape, *(1,) * (pixels.ndim - 2)),
                            (0, 0), width)
    return mean / weight.reshape(mean.shape[:2] + (1,) * (mean.ndim - 2))


def body_texture(sharp: np.ndarray, hole: np.ndarray, plate_size: tuple[int, int], factor: float,
                 made_up_from: float, lacking: np.ndarray | None) -> np.ndarray:
    """(H, W, C) float32: the texture of the body's plate in its `hole` ((H, W) uint8, nonzero inside), added
    to a fill of the backdrop's BODY_MEAN-wide mean (`factor`: detail pixels to a plate pixel, at `plate_size`):
    the backdrop's own texture (its difference from that mean) mirrored in across the hole's edge, within
    BODY_TEXTURE_BAND of the plate's side (what a body moves far enough to uncover), each pixel held to
    GRAIN_SPREAD times the spread of the backdrop's texture nearest it (so a plain wall takes no edge of
    a door frame beside it); deeper in, grain made up as strong (`made_up_grain`, from `made_up_from`
    detail pixels into the hole on). Mirrored only as far as the backdrop near the edge is fine texture with
    no direction (`fine_texture`); elsewhere (stripes, a face, a shirt) the smooth fill, with grain made up
    from `made_up_from` on. Where a pattern was carried on, only as much as it lacks (`lacking`).

    A smooth fill with made-up grain, used before, painted foliage beside a head as a grey crescent, mottled
    with black and white specks (2008_001322 #1): Telea carried a bright gap between leaves that touched the
    outline in as a pale streak, and noise with the backdrop's fine detail is no leaf. The backdrop's own
    texture mirrored runs on from the edge without a seam, in its own colours. But mirrored whatever it was,
    the astronaut's flag (soft red and white stripes) beside her shoulder came out as fragmented white
    streaks fanning out from it and a bright blob by the helmet, and 2008_002506 #2's neighbours' shirt and
    hair as mirrored fragments between the men."""
    detail = sharp - local_mean(sharp, hole, BODY_MEAN * factor)
    spread = grain_spread_near(detail, hole, plate_size)
    bound = (GRAIN_SPREAD * spread)[..., None]
    np.clip(detail, -bound, bound, out=detail)
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 5)
    band = BODY_TEXTURE_BAND * max(hole.shape)
    fine = mirrored_into(fine_texture(sharp, hole, factor)[..., None], hole)[..., 0]
    near = np.clip(2.0 - depth / band, 0.0, 1.0)  # within the band, fading out by twice as far
    mirrored = near * fine
    if lacking is not None:  # (mirrored over a continued stripe, it bent the stripes into chevrons)
        mirrored *= lacking
    texture = mirrored_into(detail, hole) * mirrored[..., None]
    made_up = np.clip(depth / made_up_from - 1.0, 0.0, 1.0) * (1.0 - fine * near)
    if lacking is not None:  # made up only where the continued pattern came out smoother than the backdrop
        made_up *= lacking
    if made_up.any():
        texture += made_up_grain(sharp - local_mean(sharp, hole, PLATE_GRAIN), hole, plate_size, made_up)
    return texture


def fine_texture(sharp: np.ndarray, hole: np.ndarray, factor: float) -> np.ndarray:
    """(H, W) float32 0-1: how much the backdrop (`sharp` outside `hole`) around each pixel is fine texture
    with no direction (foliage, grain), which mirrored across the outline looks like more of it, rather than
    structure (a flag's stripes, a face beside, a door frame), which mirrored draws fans of streaks. Fine:
    its detail within a pixel (the difference from a 1-pixel mean) is FINE_TEXTURE of its detail within
    BODY_MEAN (medians near the outline: foliage 0.73, s12's print 0.76; the astronaut's backdrop 0.48, its
    flag and 2008_002506's shirts and faces 0.15-0.4); with no direction: its gradients' coherence (as
    `patterned` reads it, twice as far around) under ISOTROPIC (foliage 0.31; a flag's stripes, a lace
    curtain, a door frame 0.6-0.95). Both read TEXTURE_REACH plate pixels around a pixel, and the weight
    averaged over TEXTURE_AREA: a few pixels of fine texture amid structure (an eye, glasses) do not count."""
    grey = sharp.mean(axis=2)
    reach = TEXTURE_REACH * factor
    coarse = grey - local_mean(grey, hole, BODY_MEAN * factor)
    finest = grey - local_mean(grey, hole, 1.0)
    fraction = np.sqrt(local_mean(finest**2, hole, reach) / (local_mean(coarse**2, hole, reach) + 1.0))
    smooth = local_mean(grey, hole, 0.7 * factor)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    outline = cv2.dilate(hole, np.ones((5, 5), np.uint8)) > 0  # not the person's own outline
    gx[outline], gy[outline] = 0.0, 0.0
    xx, yy, xy = (local_mean(v, hole, 2 * reach) for v in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((xx - yy) ** 2 + 4 * xy**2) / (xx + yy + 1e-3)
    low, high = FINE_TEXTURE
    weight = np.clip((fraction - low) / (high - low), 0.0, 1.0)
    low, high = ISOTROPIC
    weight *= np.clip((coherence - low) / (high - low), 0.0, 1.0)
    return local_mean(weight, hole, TEXTURE_AREA * factor)


def grain_like(detail: np.ndarray, backdrop: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, C) float32 noise with the fine detail of `detail` where `backdrop` is true: the same colour
    covariance, and as coarse (the blur whose neighbouring pixels correlate as the backdrop's do). Random,
    not taken from the backdrop: mirrored over a band tens of pixels wide, a backdrop's own detail showed as
    mirrored objects (a sign's letters reversed, 2008_001322). (Palette.grain_at, the grain of painted eyes
    and mouths, is one grey level of single-pixel noise read by a 3x3 blur: on s12's backdrop 3.2 levels,
    where the detail a plate lacks, what a 2-pixel Gaussian removes, has 7.6 and is coarser.)"""
    samples = detail[backdrop].reshape(-1, detail.shape[2]).astype(np.float64)
    if len(samples) < 16:
        return np.zeros_like(detail, np.float32)
    colour = np.linalg.cholesky(np.cov(samples.T) + 1e-6 * np.eye(detail.shape[2]))

    def neighbour_correlation(values: np.ndarray, where: np.ndarray) -> float:
        both = where[:, 1:] & where[:, :-1]
        a, b = values[:, 1:][both], values[:, :-1][both]
        return float(np.corrcoef(a, b)[0, 1]) if both.sum() > 16 else 0.0

    target = neighbour_correlation(detail.mean(axis=2), backdrop)
    noise = np.random.default_rng(seed).standard_normal(detail.shape).astype(np.float32)
    noise -= cv2.GaussianBlur(noise, (0, 0), PLATE_GRAIN)  # the same band of detail as the backdrop's
    # The finest blur that makes the noise as coarse as the backdrop's grain, found on a corner of the noise:
    # the corner reads its correlation as well, and trying the blurs on the whole noise of a 1024 px plate
    # took 0.2-0.35 s of the plate's making.
    corner = noise[:GRAIN_TRIAL_SIDE, :GRAIN_TRIAL_SIDE]
    for blur in GRAIN_BLURS:
        trial = cv2.GaussianBlur(corner, (0, 0), blur) if blur else corner
        if neighbour_correlation(trial.mean(axis=2), np.ones(trial.shape[:2], bool)) >= target:
            break
    coarse = cv2.GaussianBlur(noise, (0, 0), blur) if blur else noise
    mean, spread = cv2.meanStdDev(coarse)
    coarse = (coarse - mean.ravel().astype(np.float32)) / np.maximum(spread.ravel(), 1e-6).astype(np.float32)
    return cv2.transform(coarse, colour.astype(np.float32))  # each pixel's noise given the backdrop's colours


def made_up_grain(detail: np.ndarray, hole: np.ndarray, plate_size: tuple[int, int],
                  strength: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 grain for the `hole` ((H, W) uint8, nonzero inside) of a backdrop whose fine detail
    is `detail` (the backdrop's difference from its local mean): made up by grain_like, as strong around each
    pixel as the backdrop's own grain nearest it (`grain_spread_near`), times `strength` (H, W) 0-1.

    Local, not the whole backdrop's: a plain wall beside a lace curtain took the curtain's grain where a lean
    uncovered it (2008_001322 #0), and held to the whole backdrop's spread, the curtain's grain came out at
    half its strength."""
    spread = grain_spread_near(detail, hole, plate_size)
    if not spread.any():  # a backdrop without grain
        return np.zeros_like(detail, np.float32)
    # Grain, not edges: the backdrop's detail is held to GRAIN_SPREAD times its grain's own spread around it.
    bound = (GRAIN_SPREAD * spread)[..., None]
    grain = grain_like(np.clip(detail, -bound, bound), hole == 0)
    unit = float(np.sqrt(np.square(grain).mean(axis=2).mean()))  # grain_like's own strength, over the channels
    if unit <= 1e-6:
        return np.zeros_like(detail, np.float32)
    grain *= (spread * strength / unit)[..., None]
    return np.clip(grain, -bound, bound)


def grain_spread_near(detail: np.ndarray, hole: np.ndarray, plate_size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32, levels: the spread (standard deviation) of the backdrop's grain (`detail` where `hole`
    is 0) about GRAIN_NEAR plate pixels (at `plate_size`) around each pixel, read robustly as 1.25 times its
    mean absolute value (a Gaussian's ratio; an edge weighs less in it than in the root mean square). Inside
    `hole`, carried in from its edge by Telea's fill: the grain of the backdrop nearest each pixel."""
    backdrop = (hole == 0).astype(np.float32)
    magnitude = np.abs(detail).mean(axis=2) * backdrop
    small_magnitude, small_backdrop = (cv2.resize(v, plate_size, interpolation=cv2.INTER_AREA)
                                       for v in (magnitude, backdrop))
    away = 2 * round(GRAIN_AWAY) + 1
    small_backdrop = cv2.erode((small_backdrop > 0.99).astype(np.float32), np.ones((away, away), np.uint8))
    small_magnitude *= small_backdrop
    weight = cv2.GaussianBlur(small_backdrop, (0, 0), GRAIN_NEAR)
    known = weight > 0.05
    if not known.any():  # a backdrop too thin to read away from the outline: its grain as a whole
        overall = 1.2533 * float(magnitude.sum() / max(backdrop.sum(), 1.0))
        return np.full(hole.shape, overall, np.float32)
    spread = np.zeros_like(weight)
    spread[known] = 1.2533 * cv2.GaussianBlur(small_magnitude, (0, 0), GRAIN_NEAR)[known] / weight[known]
    spread = cv2.inpaint(spread, (~known).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return cv2.resize(spread, hole.shape[::-1], interpolation=cv2.INTER_LINEAR)


def membrane_filled(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`pixels` (H, W, C) with `hole` ((H, W), nonzero inside) filled by the solution of Laplace's equation
    there, the known pixels around it the boundary: each hole pixel is the mean of its four neighbours, the
    smoothest surface that meets the backdrop all round the hole. A hole touching the image's border takes no
    value from beyond it."""
    inside = hole.astype(bool)
    if not inside.any() or inside.all():
        return pixels.copy()
    filled = _membrane(pixels.reshape(*inside.shape, -1).astype(np.float64), inside)
    return np.clip(filled + 0.5, 0, 255).astype(pixels.dtype).reshape(pixels.shape)


def _membrane(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """membrane_filled on float (H, W, C) values. A sparse solve (SuperLU) of a 256 px plate's whole hole took
    0.2-0.3 s, so a large hole is solved exactly only on the band within MEMBRANE_BAND pixels of its edge,
    which is what a moving head uncovers; deeper, the membrane of the image at half the size (made the same
    way), which a membrane's smoothness keeps close there: within 1 level of the whole solve on the
    astronaut's, d9's and d19's plates, 7 in bald_guys #7's sharp-edged shadow; 40-56 ms against 170-310."""
    unknown = inside
    if inside.sum() > MEMBRANE_DIRECT:
        height, width = inside.shape
        half_height, half_width = (height + 1) // 2, (width + 1) // 2
        padding = ((0, 2 * half_height - height), (0, 2 * half_width - width))
        # Half size: a pixel is known if any of its four is, and is their known ones' mean (a hole grown
        # instead pushed its edge out, onto more of a dark object touching it: 7 levels darker within).
        known = np.pad(~inside, padding, mode="edge").astype(np.float64)
        known_values = np.pad(values, (*padding, (0, 0)), mode="edge") * known[..., None]
        half_known = known.reshape(half_height, 2, half_width, 2).sum(axis=(1, 3))
        half_values = known_values.reshape(half_height, 2, half_width, 2, -1).sum(axis=(1, 3))
        half_values /= np.maximum(half_known, 1)[..., None]
        half_inside = half_known == 0
        coarse = cv2.resize(_membrane(half_values, half_inside).astype(np.float32),
                            (2 * half_width, 2 * half_height), interpolation=cv2.INTER_LINEAR)
        deep = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3) > MEMBRANE_BAND
        values = values.copy()
        values[deep] = coarse.reshape(2 * half_height, 2 * half_width, -1)[:height, :width][deep]
        unknown = inside & ~deep
    height, width = unknown.shape
    ys, xs = np.nonzero(unknown)
    count = ys.size
    number = np.full((height, width), -1, np.int64)
    number[ys, xs] = np.arange(count)
    neighbours = np.zeros(count)
    known_sum = np.zeros((count, values.shape[2]))
    rows, columns = [np.arange(count)], [np.arange(count)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = ys + dy, xs + dx
        on_image = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        neighbours += on_image
        which, ny, nx = np.nonzero(on_image)[0], ny[on_image], nx[on_image]
        other = number[ny, nx]
        is_unknown = other >= 0
        rows.append(which[is_unknown])
        columns.append(other[is_unknown])
        np.add.at(known_sum, which[~is_unknown], values[ny[~is_unknown], nx[~is_unknown]])
    weights = np.concatenate([neighbours, -np.ones(sum(r.size for r in rows[1:]))])
    laplacian = scipy.sparse.csc_matrix((weights, (np.concatenate(rows), np.concatenate(columns))),
                                        shape=(count, count))
    solve = scipy.sparse.linalg.factorized(laplacian)
    filled = values.copy()
    filled[ys, xs] = np.stack([solve(known_sum[:, channel]) for channel in range(values.shape[2])], axis=1)
    return filled


def head_plate(subject, pattern: bool = True) -> np.ndarray:
    """The background plate of a subject's head region: what the warp engine shows where the head moves
    away (made once per engine; frame_workers makes each face's once and hands it to every worker)."""
    x0, y0, x1, y1 = subject.head_region
    return background_plate(np.ascontiguousarray(subject.image[y0:y1, x0:x1]), subject.mask.astype(np.float32),
                            pattern=pattern)


def patterned(pixels: np.ndarray, hole: np.ndarray) -> bool:
    """Whether the backdrop on a ring around `hole` ((H, W) uint8, nonzero inside) shows a pattern with a
    direction (boards, stripes, blinds, shelves; a single straight edge, such as a door frame's, is too
    little of the ring to count):

    * its structure between 1 and 4 pixels (the difference of Gaussian means that wide, over the colour
      channels) has a median of at least PATTERN levels, and more than its grain (the difference from the
      1-pixel mean): plain studio backdrops read 0.3-0.7, patterned ones 2-16; an old print's grain (s12,
      the astronaut with noise of 12 levels added) is finer than its structure, and it keeps its grain;
    * its gradients line up (the structure tensor's coherence, 4 pixels around each point, has a median of
      at least ORIENTED): a striped wall reads 0.96; foliage and lace curtains 0.39, which the
      reconstruction turned into smooth blobs, where the mirrored grain looks like leaves and lace."""
    side = max(hole.shape)
    reach = max(1, round(PATTERN_RING * side))
    ring = (cv2.dilate(hole, np.ones((2 * reach + 1,) * 2, np.uint8)) > 0) & (hole == 0)
    if not ring.any():
        return False
    values = pixels.astype(np.float32)
    fine = cv2.GaussianBlur(values, (0, 0), 1.0)

    def typical(difference: np.ndarray) -> float:  # over the colour channels, the ring's median
        return float(np.median(np.abs(difference).reshape(*hole.shape, -1).mean(axis=2)[ring]))

    grain, pattern = typical(values - fine), typical(fine - cv2.GaussianBlur(values, (0, 0), 4.0))
    if pattern < PATTERN or pattern <= grain:
        return False
    grey = fine.reshape(*hole.shape, -1).mean(axis=2)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    xx, yy, xy = (cv2.GaussianBlur(v, (0, 0), 4.0) for v in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((xx - yy) ** 2 + 4 * xy**2) / (xx + yy + 1e-6)
    return bool(np.median(coherence[ring]) >= ORIENTED)


def pattern_continued(pixels: np.ndarray, hole: np.ndarray, filled: np.ndarray, band: int) -> np.ndarray:
    """`filled` (`pixels` with `hole` inpainted) with the band of the hole within `band` pixels of its edge
    filled again by OpenCV's frequency-selective reconstruction, which carries the backdrop's pattern into
    it. Deeper in the hole, which no head moves far enough to uncover, `filled` stays (to a level: the
    reconstruction rounds what it keeps, as it does the backdrop), and the reconstruction treats it as
    known: its cost grows with the pixels it must make."""
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
    deep = depth > band
    seeded = pixels.copy()
    seeded[deep] = filled[deep]
    known = ((hole == 0) | deep).astype(np.uint8)
    # Mirrored out by a margin first: blocks cut off by the image's edge came out as flat patches of a
    # wrong colour (a green square on a suit at the bottom of 2008_001322's face 1).
    pad = FSR_MARGIN
    seeded = cv2.copyMakeBorder(seeded, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    known = cv2.copyMakeBorder(known, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    out = np.zeros_like(seeded)
    cv2.xphoto.inpaint(seeded, known, out, cv2.xphoto.INPAINT_FSR_FAST)
    return out[pad:-pad, pad:-pad]


def detail_lacking(filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """(H, W) float32 0-1: how much smoother than the backdrop (`filled` outside `hole`) `filled` is around
    each pixel: 1 where it has none of the backdrop's typical detail (where the carried pattern has faded,
    and deeper in the hole), 0 where it has as much (a board carried on)."""
    values = filled.astype(np.float32)
    detail = np.abs(values - cv2.GaussianBlur(values, (0, 0), PLATE_GRAIN)).reshape(*hole.shape, -1).mean(axis=2)
    typical = max(float(np.median(detail[hole == 0])), 1e-3)
    return np.clip(1.0 - cv2.GaussianBlur(detail, (0, 0), LACKING_REACH) / typical, 0.0, 1.0)


def mirrored_into(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`values` ((H, W, C)) inside `hole` ((H, W) uint8, nonzero inside) taken from outside it, mirrored across
    its edge: a pixel of the hole takes the value of the pixel as far beyond the hole's nearest edge point.
    Off the grid, the grid's edge mirrors it back; where it lies in the hole (far inside a wide one), it takes
    what that pixel took, if anything. Outside the hole, 0."""
    height, width = hole.shape
    out = np.zeros_like(values)
    if hole.all() or not hole.any():
        return out
    _, nearest = cv2.distanceTransformWithLabels(hole, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    outside = np.flatnonzero(hole.ravel() == 0)  # label k names the k-th pixel outside the hole, row by row
    ys, xs = np.nonzero(hole)
    edge = outside[nearest[ys, xs] - 1]
    mirror_y = _reflected(2 * (edge // width) - ys, height)
    mirror_x = _reflected(2 * (edge % width) - xs, width)
    has = hole == 0  # pixels that hold a value to give
    for _ in range(MIRROR_PASSES):
        usable = has[mirror_y, mirror_x] & ~has[ys, xs]
        if not usable.any():
            break
        source = values if not has[ys, xs].any() else np.where(hole[..., None] > 0, out, values)
        out[ys[usable], xs[usable]] = source[mirror_y[usable], mirror_x[usable]]
        has[ys[usable], xs[usable]] = True
    return out


def _reflected(positions: np.ndarray, size: int) -> np.ndarray:
    """Grid positions off a grid of `size` mirrored back onto it at its first and last pixel."""
    period = 2 * max(size - 1, 1)
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - folded)


SEEN_BAND = 16  # rows: remap_where_seen computes each band of this many rows from its first to its last seen column


def remap_where_seen(texture: np.ndarray, maps: tuple[np.ndarray, np.ndarray | None], moved_mask: np.ndarray,
                     still_mask: np.ndarray, interpolation: int) -> np.ndarray:
    """cv2.remap(texture, *maps, interpolation) with the border replicated, computed only where
    blend_over_background will show it: where the moved or the still person is (either mask at least
    PERSON_EPSILON). Elsewhere its pixels are left undefined: blend_over_background puts the photo there.
    Each pixel is remapped exactly as one remap of the whole box remaps it, so frames are the same to the
    level. (Bicubic remapping is most of a group photo's frame: its heads' and bodies' boxes hold about 6.6
    million pixels a frame on bald_guys, of which the backdrop, where nothing moved is shown, is a third.)"""
    seen = (moved_mask >= PERSON_EPSILON) | (still_mask >= PERSON_EPSILON)
    height, width = seen.shape
    out = np.empty((height, width) + texture.shape[2:], texture.dtype)
    starts = np.arange(0, height, SEEN_BAND)
    for y0, columns in zip(starts, np.logical_or.reduceat(seen, starts, axis=0)):
        seen_columns = np.flatnonzero(columns)
        if not len(seen_columns):
            continue
        rows, cols = slice(y0, y0 + SEEN_BAND), slice(seen_columns[0], seen_columns[-1] + 1)
        band_maps = [None if map_ is None else map_[rows, cols] for map_ in maps]
        out[rows, cols] = cv2.remap(texture, *band_maps, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out


def blend_over_background(warped: np.ndarray, moved_mask: np.ndarray, original: np.ndarray,
                          source_mask: np.ndarray, plate: np.ndarray | None) -> np.ndarray:
    """The moved person (`warped`, `moved_mask`) over the background, in place in `warped`: where neither
    the moved nor the still person is, the photo as it was (`original`, whose person is `source_mask`);
    at the person's edge and where it moved away, blended over the photo, or over `plate` as far as the
    person uncovered it. With no `plate` (a frame with alpha) the person is left unblended: its alpha
    carries the edge, and the background it uncovered is transparent."""
    moved_mask = np.ascontiguousarray(moved_mask, np.float32)
    source_mask = np.ascontiguousarray(source_mask, np.float32)
    if plate is None:
        still = (moved_mask < PERSON_EPSILON) & (source_mask < PERSON_EPSILON)
        cv2.copyTo(original, still.view(np.uint8), warped)  # (numpy's copyto with where= is 40x slower)
        return warped
    # One compiled pass over the box: OpenCV's weighted mixes of the whole box, then copied where the masks
    # said, took twice as long (on bald_guys' 13 faces these blends were a sixth of a group frame).
    _blend_pixels(warped, moved_mask, original, source_mask, plate)
    return warped


@compiled()
def _blend_pixels(warped: np.ndarray, moved_mask: np.ndarray, original: np.ndarray, source_mask: np.ndarray,
                  plate: np.ndarray) -> None:
    """blend_over_background's pixels, rounded as OpenCV's blendLinear rounds (which this replaced)."""
    one, half, epsilon = np.float32(1.0), np.float32(0.5), np.float32(PERSON_EPSILON)
    normalise = np.float32(1.0) / np.float32(1.0 + 1e-5)  # blendLinear's (w1 + w2 + 1e-5)
    height, width = moved_mask.shape
    for y in range(height):
        for x in range(width):
            moved, was = moved_mask[y, x], source_mask[y, x]
            if moved < epsilon and was < epsilon:  # no person, still or moved: the photo as it was
                for c in range(3):
                    warped[y, x, c] = original[y, x, c]
            elif moved < one - epsilon:  # the person's edge, or where it moved away
                # Relative to how much person the pixel had: a half-hair edge pixel that the
                # person left is fully background now, or a faint outline would stay behind.
                uncovered = min(max((was - moved) / max(was, epsilon), np.float32(0.0)), one)
                for c in range(3):
                    background = np.float32(np.uint8(min(
                        (original[y, x, c] * (one - uncovered) + plate[y, x, c] * uncovered) * normalise + half,
                        np.float32(255.0))))
                    warped[y, x, c] = np.uint8(min((warped[y, x, c] * moved + background * (one - moved)) * normalise
                                                   + half, np.float32(255.0)))
