"""The capture solver is the rig's inverse: landmarks the rig made solve back to the channels that made them."""
from __future__ import annotations

import numpy as np
import pytest

from enliven.rig import Rig
from enliven.solver import Solver, SolverSettings, rig_for_reference
from enliven.shared.channels import CHANNEL_INDEX, CHANNEL_NAMES, CHANNELS, GROUPS, maximum_vector, minimum_vector

from conftest import channel_values

BODY = [CHANNEL_INDEX[name] for name in GROUPS["body"]]

# Degrees for the head angles, face widths for head_x/y, channel units for the rest.
TOLERANCE = {"head_yaw": 0.02, "head_pitch": 0.02, "head_roll": 0.02, "head_x": 1e-3, "head_y": 1e-3}
EXPRESSION_TOLERANCE = 0.025  # the ridge pulls weak channels very slightly toward 0


@pytest.fixture(scope="module")
def rig(subject):
    return Rig(subject.landmarks, subject.pose)


@pytest.fixture(scope="module")
def solver(rig):
    return Solver(rig)


def _assert_recovered(solved: np.ndarray, expected: np.ndarray, label: str = "") -> None:
    for index, name in enumerate(CHANNEL_NAMES):
        tolerance = TOLERANCE.get(name, EXPRESSION_TOLERANCE)
        assert abs(solved[index] - expected[index]) <= tolerance, (
            f"{label}{name}: solved {solved[index]:+.4f}, expected {expected[index]:+.4f}")


def test_neutral_landmarks_solve_to_defaults(solver, subject):
    assert np.abs(solver.solve(subject.landmarks)).max() < 1e-6


def test_round_trip_of_random_motions_over_every_channel(solver, rig):
    rng = np.random.default_rng(7)
    low, high = minimum_vector().astype(np.float64), maximum_vector().astype(np.float64)
    for trial in range(25):
        values = rng.uniform(low, high)  # every face channel at once, anywhere in its range
        values[list(BODY)] = 0.0  # the body moves no face landmark: a face solver cannot see it
        solved = solver.solve(rig.targets(values))
        _assert_recovered(solved, values, f"trial {trial}: ")


@pytest.mark.parametrize("channel", [c for c in CHANNELS if c.group != "body"], ids=lambda c: c.name)
def test_round_trip_of_each_channel_at_its_extremes(solver, rig, channel):
    for value in {channel.minimum, channel.maximum} - {channel.default}:
        values = channel_values(**{channel.name: value})
        _assert_recovered(solver.solve(rig.targets(values)), values, f"{channel.name}={value:g}: ")


def test_results_stay_inside_channel_ranges_for_impossible_landmarks(solver, rig):
    # An eye closed "twice over" and a jaw opened past the rig's reach: clamped, not extrapolated.
    values = channel_values(blink_l=1.0, jaw_open=1.0)
    overdone = rig.targets(values) + 1.5 * (rig.targets(values) - rig.targets(channel_values()))
    solved = solver.solve(overdone)
    assert np.all(solved >= minimum_vector() - 1e-9) and np.all(solved <= maximum_vector() + 1e-9)
    assert solved[CHANNEL_NAMES.index("blink_l")] == pytest.approx(1.0)
    assert solved[CHANNEL_NAMES.index("jaw_open")] == pytest.approx(1.0)


def test_noise_does_not_wake_up_channels(solver, rig, subject):
    rng = np.random.default_rng(3)
    values = channel_values(head_yaw=10.0, jaw_open=0.5)
    noisy = rig.targets(values) + rng.normal(0.0, 0.3, (478, 3))  # a third of a pixel, like a tracker
    solved = solver.solve(noisy)
    assert solved[CHANNEL_NAMES.index("head_yaw")] == pytest.approx(10.0, abs=0.5)
    assert solved[CHANNEL_NAMES.index("jaw_open")] == pytest.approx(0.5, abs=0.05)
    others = [i for i, name in enumerate(CHANNEL_NAMES) if name not in ("head_yaw", "jaw_open")]
    assert np.abs(solved[others]).max() < 0.1


def test_relative_to_a_reference_frame(rig):
    # A reference that already smiles: the same smile solves to 0, the neutral face to a frown-ish value.
    smiling = rig.targets(channel_values(smile_l=0.6, smile_r=0.6))
    relative = Solver(rig_for_reference(smiling))
    assert np.abs(relative.solve(smiling)).max() < 1e-6
    assert relative.solve(rig.targets(channel_values()))[CHANNEL_NAMES.index("smile_l")] < -0.2


def test_fit_error_is_reported_in_pixels(solver, rig):
    values = channel_values(head_roll=12.0, brow_l=0.7)
    assert solver.residual(rig.targets(values), values) == pytest.approx(0.0, abs=1e-9)
    assert solver.residual(rig.targets(values) + [3.0, 4.0, 0.0], values) == pytest.approx(5.0)


def test_bad_input_is_refused(solver):
    with pytest.raises(ValueError):
        solver.solve(np.zeros((68, 2)))
    with pytest.raises(ValueError):
        solver.solve(np.full((478, 3), np.nan))


def test_settings_are_used(rig):
    loose = Solver(rig, SolverSettings(ridge=1.0))
    values = channel_values(brow_inner_up=0.5)
    # A strong ridge shrinks the answer toward the neutral face.
    assert loose.solve(rig.targets(values))[CHANNEL_NAMES.index("brow_inner_up")] < 0.4


def test_lips_parted_more_than_the_jaw_drops_solve_to_an_open_mouth(rig):
    """Real talkers part their lips more than the rig's jaw_open drops the chin for it. From a photo with
    sealed lips (most portraits), jaw_open's sealing side barely moves a landmark, and the linear fit used
    it alongside the opening side at no cost: on a real clip's widest-open frame opening 0.8 and sealing 1.0,
    a value of -0.2, the lips drawn sealed where the real ones were 57 px apart. The answer must be one the
    rig draws: the lips apart."""
    import enliven.landmarks as lm

    sealed = Solver(rig_for_reference(rig.targets(channel_values(jaw_open=-1.0))))
    still = sealed.rig.targets(channel_values())
    opened = sealed.rig.targets(channel_values(jaw_open=0.7))
    observed = opened.copy()
    lips = sorted(set(sum(lm.LIPS_UPPER_RINGS + lm.LIPS_LOWER_RINGS, ())))
    rest = np.setdiff1d(np.arange(len(observed)), lips)
    observed[rest] = still[rest] + 0.3 * (opened[rest] - still[rest])  # the chin and jaw drop a third as far
    solved = sealed.solve(observed)
    drawn = sealed.rig.targets(solved)
    assert solved[CHANNEL_INDEX["jaw_open"]] > 0.2
    assert lm.signed_lip_gap(drawn) > 0.4 * lm.signed_lip_gap(observed), (
        f"jaw_open {solved[CHANNEL_INDEX['jaw_open']]:+.2f}: lip gap drawn {lm.signed_lip_gap(drawn):.3f} "
        f"of {lm.signed_lip_gap(observed):.3f}")


def test_a_sealed_photos_closed_mouth_reads_as_its_own(rig):
    """From a photo with sealed lips, jaw_open's sealing side moves no landmark perceptibly (the lips already
    meet): closed lips must read as the photo's own, 0, not anywhere down to -1 (a captured curve that jumps
    to -1 whenever the mouth shuts, the same lips drawn either way)."""
    sealed = Solver(rig_for_reference(rig.targets(channel_values(jaw_open=-1.0))))
    rng = np.random.default_rng(5)
    for smile in (0.0, 0.3, -0.3):
        # Lips pressed a little harder (the rig's own sealing of them), and a tracker's noise.
        pressed = sealed.rig.targets(channel_values(jaw_open=-1.0, smile_l=smile, smile_r=smile))
        jaw = sealed.solve(pressed + rng.normal(0.0, 0.3, (478, 3)))[CHANNEL_INDEX["jaw_open"]]
        assert -1e-9 <= jaw < 0.1  # (the noise can open the lips a hair; nothing reads as sealing)



def test_a_blink_is_captured_against_a_reference_with_nearly_shut_eyes(rig):
    """Against a reference frame whose eyes are nearly shut, a blink moves the landmarks very little there;
    but it is still the performer's blink, and drives another photo's eyes: the one-sided blink channel stays
    in the fit (left out as unreadable, shut eyes read 0)."""
    narrow = Solver(rig_for_reference(rig.targets(channel_values(blink_l=0.85, blink_r=0.85))))
    solved = narrow.solve(rig.targets(channel_values(blink_l=1.0, blink_r=1.0)))
    assert solved[CHANNEL_INDEX["blink_l"]] > 0.5 and solved[CHANNEL_INDEX["blink_r"]] > 0.5
