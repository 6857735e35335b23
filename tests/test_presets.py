"""Motion presets: keys, sampling and the motions they make."""
import numpy as np
import pytest

from enliven.shared.channels import CHANNEL_INDEX, CHANNELS, default_vector, maximum_vector, minimum_vector
from enliven.shared.motion import MAX_FRAMES, MotionError
from enliven.shared.mouth import CLOSED_LIPS, MouthOpening
from enliven.shared.presets import (PRESETS, loopable_presets, preset_face_motions, preset_keys, preset_motion, preset_speaks,
                                    sample_keys)


def column(values: np.ndarray, name: str) -> np.ndarray:
    return values[:, CHANNEL_INDEX[name]]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_starts_and_ends_at_the_neutral_face(name):
    full = preset_motion(name).full()
    np.testing.assert_array_equal(full[0], default_vector())
    np.testing.assert_array_equal(full[-1], default_vector())
    # Keyed channels have a rest key on the first and the last frame, so a
    # preset placed after another on a timeline cannot inherit its values.
    last_frame = len(full) - 1
    for channel_name, keys in preset_keys(name).items():
        default = CHANNELS[CHANNEL_INDEX[channel_name]].default
        assert keys[0] == (0, default), channel_name
        assert keys[-1] == (last_frame, default), channel_name


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_stays_within_channel_ranges_and_moves(name):
    full = preset_motion(name, seed=3).full()
    assert np.all(full >= minimum_vector()) and np.all(full <= maximum_vector())
    assert np.ptp(full, axis=0).max() > 0, "the preset does nothing"


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_length_follows_its_duration_and_fps(name):
    motion = preset_motion(name, fps=30)
    assert motion.fps == 30
    assert motion.frame_count == round(PRESETS[name].duration_s * 30) + 1
    assert preset_motion(name, fps=30, duration_s=6.0).frame_count == 181


def test_blink_closes_both_eyes_fully_then_opens_them():
    full = preset_motion("blink").full()
    for eye in ("blink_l", "blink_r"):
        blink = column(full, eye)
        assert blink.max() == pytest.approx(1.0)
        closed_at = int(blink.argmax())
        assert 0.05 <= closed_at / 24 <= 0.15
        assert blink[-1] == 0


def test_nod_goes_down_and_up_twice():
    pitch = column(preset_motion("nod").full(), "head_pitch")
    assert pitch.min() == pytest.approx(-12.0) and pitch.max() == pytest.approx(6.0)
    # Down, up, down, up, back to level: four changes of direction.
    steps = np.diff(pitch)
    directions = np.sign(steps[np.abs(steps) > 1e-6])
    assert np.count_nonzero(np.diff(directions)) == 4


def test_look_around_leads_with_the_eyes_and_the_head_follows():
    full = preset_motion("look-around").full()
    gaze, yaw = column(full, "gaze_x"), column(full, "head_yaw")
    assert gaze.min() == pytest.approx(-0.8) and gaze.max() == pytest.approx(0.8)
    assert np.abs(yaw).max() == pytest.approx(8.0)
    # Turning toward the image's left, the head lags behind the eyes.
    assert int(np.argmax(gaze <= -0.79)) < int(np.argmax(yaw <= -7.9))


def test_idle_alive_is_the_same_for_a_seed_and_differs_between_seeds():
    first = preset_motion("idle-alive", seed=1).values
    np.testing.assert_array_equal(first, preset_motion("idle-alive", seed=1).values)
    assert not np.array_equal(first, preset_motion("idle-alive", seed=2).values)


def test_idle_alive_fills_the_requested_duration_with_blinks_and_breathing():
    full = preset_motion("idle-alive", duration_s=30.0, seed=5).full()
    assert len(full) == 30 * 24 + 1
    blink = column(full, "blink_l")
    # Count blink onsets: 30 s with one blink every 2-6 s.
    onsets = np.count_nonzero((blink[1:] > 0.5) & (blink[:-1] <= 0.5))
    assert 5 <= onsets <= 15
    breathing = column(full, "breathing")  # the chest and shoulders (where the photo shows them)
    assert 0.3 <= breathing.max() <= 0.5 and -0.5 <= breathing.min() <= -0.3
    pitch = column(full, "head_pitch")  # and a little head lift with each breath
    assert 0.4 <= pitch.max() <= 2.0 and -2.0 <= pitch.min() <= -0.4


def test_talk_opens_and_closes_the_mouth_repeatedly():
    jaw = column(preset_motion("talk").full(), "jaw_open")
    assert jaw[0] == 0 and jaw[-1] == 0
    assert 0.3 <= jaw.max() <= 0.6
    openings = np.count_nonzero((jaw[1:] > 0.2) & (jaw[:-1] <= 0.2))
    assert openings >= 6, "about five syllables a second over three seconds"


# d9's lips, as the rig measures them: wide open in the photo (0.70 mouth widths apart).
OPEN_MOUTH = MouthOpening(gap=0.70, opens=0.43, closes=0.74)


@pytest.mark.parametrize("name", ["talk", "showcase"])
def test_speech_fitted_to_an_open_mouth_closes_the_lips_between_syllables(name):
    loose = preset_motion(name, seed=2).full()
    fitted = preset_motion(name, seed=2, mouth=OPEN_MOUTH).full()
    jaw = column(fitted, "jaw_open")
    # It starts and ends at the photo's own mouth, like every preset ...
    assert jaw[0] == 0 and jaw[-1] == 0
    # ... and in between the lips come together (jaw_open -1 seals them) and part again on every syllable,
    # where the same preset for closed lips would only open the photo's mouth further.
    syllables = [frame for frame, value in preset_keys(name, seed=2)["jaw_open"] if value > 0]
    speaking = jaw[syllables[0]:syllables[-1] + 1]
    assert speaking.min() < -0.8 and speaking.max() < 0 and -1 <= jaw.min()
    openings = np.count_nonzero((speaking[1:-1] > speaking[:-2]) & (speaking[1:-1] >= speaking[2:]))
    assert openings >= (6 if name == "talk" else 3)
    # Nothing else changes: the blinks, glances, nods and smile are the photo-independent ones.
    others = [index for index in range(len(CHANNELS)) if index != CHANNEL_INDEX["jaw_open"]]
    np.testing.assert_array_equal(fitted[:, others], loose[:, others])


def test_the_presets_that_speak_are_talk_and_showcase():
    assert {name for name in PRESETS if preset_speaks(name)} == {"talk", "showcase"}
    assert not preset_speaks("tlak")  # refused where it is used, with the presets there are
    assert not preset_speaks(None)  # a motion file, not a preset


def test_the_lips_travel_in_an_analysis_summary_and_bad_ones_are_refused():
    """An analysis summary carries the photo's lips (MouthOpening.to_dict); what a client reads back is the
    same, and a summary without them (an older backend) or with anything but three finite numbers gives
    None: the speech is then keyed as written, never fitted to garbage."""
    assert MouthOpening.from_dict(OPEN_MOUTH.to_dict()) == OPEN_MOUTH
    for bad in (None, {}, {"gap": 0.7, "opens": 0.43}, {"gap": "wide", "opens": 0.43, "closes": 0.74},
                {"gap": float("nan"), "opens": 0.43, "closes": 0.74}, {"gap": 0.7, "opens": float("inf"), "closes": 1},
                [0.7, 0.43, 0.74]):
        assert MouthOpening.from_dict(bad) is None, bad


def test_speech_fitted_to_closed_lips_is_the_preset_as_keyed():
    np.testing.assert_array_equal(preset_motion("talk", mouth=CLOSED_LIPS).full(), preset_motion("talk").full())


def test_showcase_plays_blink_look_nod_smile_and_talk_in_that_order():
    full = preset_motion("showcase").full()
    seconds = len(full) / 24
    assert 7.0 <= seconds <= 9.0

    def first_frame(mask: np.ndarray) -> int:
        assert mask.any()
        return int(np.argmax(mask))

    blink = first_frame(column(full, "blink_l") > 0.9)
    look_left = first_frame(column(full, "gaze_x") < -0.5)
    look_right = first_frame(column(full, "gaze_x") > 0.5)
    nod = first_frame(column(full, "head_pitch") < -8)
    smile = first_frame((column(full, "smile_l") > 0.6) & (column(full, "smile_r") > 0.6))
    talk = first_frame(column(full, "jaw_open") > 0.2)
    assert blink < look_left < look_right < nod < smile < talk


def test_fixed_presets_stretch_to_a_requested_duration():
    normal = preset_keys("nod")["head_pitch"]
    slow = preset_keys("nod", duration_s=4.0)["head_pitch"]
    assert [value for _, value in slow] == [value for _, value in normal]
    assert slow[-1][0] == 2 * normal[-1][0]


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("fps", [5.0, 24.0, 60.0])
def test_preset_keys_are_whole_frames_one_per_frame_starting_at_rest(name, fps):
    for channel_name, keys in preset_keys(name, fps=fps).items():
        frames = [frame for frame, _ in keys]
        assert all(isinstance(frame, int) for frame in frames)
        assert frames == sorted(set(frames))
        # Even when keys crowd onto the same frames at low fps, the preset
        # still starts at rest.
        assert keys[0] == (0, CHANNELS[CHANNEL_INDEX[channel_name]].default)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(MotionError, match=r"unknown preset 'nodd' \(did you mean 'nod'.*showcase"):
        preset_keys("nodd")


def test_sample_keys_eases_between_keys_and_holds_outside_them():
    samples = sample_keys({"jaw_open": [(2, 0.0), (6, 1.0)], "head_yaw": [(3, 10.0)]}, 10)
    assert samples.shape == (10, len(CHANNELS)) and samples.dtype == np.float32
    jaw = column(samples, "jaw_open")
    assert jaw[:3].tolist() == [0.0, 0.0, 0.0]  # held before the first key
    assert jaw[6:].tolist() == [1.0] * 4  # held after the last key
    assert jaw[4] == pytest.approx(0.5)  # halfway
    # Ease in and out: slow near the keys, fastest in the middle.
    assert jaw[3] == pytest.approx(0.15625) and jaw[5] == pytest.approx(0.84375)
    assert column(samples, "head_yaw").tolist() == [10.0] * 10  # a single key holds
    assert column(samples, "smile_l").tolist() == [0.0] * 10  # unkeyed: default


def test_sample_keys_refuses_keys_out_of_order():
    with pytest.raises(MotionError, match="jaw_open"):
        sample_keys({"jaw_open": [(5, 0.0), (2, 1.0)]}, 8)


@pytest.mark.parametrize("name", ["talk", "idle-alive"])
def test_preset_keys_refuse_a_duration_past_the_frame_limit_before_building(name):
    # Blender's Insert Preset calls preset_keys: talk and idle-alive would key 1e308 s for ever.
    with pytest.raises(MotionError, match=f"more than the {MAX_FRAMES} frames"):
        preset_keys(name, fps=24, duration_s=1e308)
    with pytest.raises(MotionError, match="fps must be above 0 and at most 1000"):
        preset_keys(name, fps=1e308, duration_s=2)


def test_the_longest_preset_has_exactly_the_frame_limit():
    longest_s = (MAX_FRAMES - 1) / 24
    assert preset_motion("nod", fps=24, duration_s=longest_s).frame_count == MAX_FRAMES
    with pytest.raises(MotionError, match=r"at most 20833\.3 s at that rate"):
        preset_keys("nod", fps=24, duration_s=longest_s + 1 / 24)


# ---------------------------------------------------------------- seamless loops


def wrap_and_steps(frames: np.ndarray) -> tuple[float, np.ndarray]:
    """The difference from the last frame to the first (what a looping GIF
    shows at the wrap) and every ordinary frame-to-frame difference."""
    steps = np.abs(np.diff(frames, axis=0)).reshape(len(frames) - 1, -1).mean(axis=1)
    return float(np.abs(frames[-1] - frames[0]).mean()), steps


def _channel_units(full: np.ndarray) -> np.ndarray:
    # Each channel scaled by its range, so degrees do not outweigh blinks.
    return (full.astype(np.float64) - minimum_vector()) / (maximum_vector() - minimum_vector())


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("duration_s", [2.0, 4.5, 10.0, 13.3])
def test_a_loop_flows_from_its_last_frame_into_its_first(seed, duration_s):
    motion = preset_motion("idle-alive", fps=24, seed=seed, duration_s=duration_s, loop=True)
    assert motion.frame_count == round(duration_s * 24)  # one period: the repeat of frame 0 is left out
    wrap, steps = wrap_and_steps(_channel_units(motion.full()))
    assert wrap <= np.percentile(steps, 95) * (1 + 1e-9)  # no jump at the wrap (a breath's step there ties) ...
    assert wrap > 0  # ... and no repeated frame: the picture keeps moving through it


def test_without_loop_the_wrap_repeats_a_frame():
    # A plain preset ends on the frame it started with: played in a loop the
    # face stops for a frame, and breathing is cut short (the test above fails).
    motion = preset_motion("idle-alive", fps=24, seed=0, duration_s=4.5)
    wrap, steps = wrap_and_steps(_channel_units(motion.full()))
    assert wrap == 0 < np.median(steps)


@pytest.mark.parametrize("seed", [0, 3])
def test_loop_keys_end_where_they_start_with_whole_breaths(seed):
    keys = preset_keys("idle-alive", fps=30, seed=seed, duration_s=9.0, loop=True)
    for channel_name, channel_keys in keys.items():
        assert channel_keys[0][0] == 0 and channel_keys[-1][0] == 270, channel_name
        assert channel_keys[0][1] == channel_keys[-1][1], channel_name
    # 9 s is about two 4 s breaths: keys on the tops and bottoms, evenly spaced, between the loop's ends (the
    # last on the end itself where the loop starts at the bottom of a breath).
    breath_frames = [frame for frame, _ in keys["breathing"]][1:-1]
    assert len(breath_frames) in (3, 4) and np.ptp(np.diff(breath_frames)) <= 1
    # The last blink is over well before the end: the next round's first one does not follow at once.
    last_blink_end = max(frame for frame, value in keys["blink_l"][:-1])
    assert last_blink_end <= 270 - 0.5 * 30


def test_a_group_s_loops_breathe_out_of_step():
    """The faces of a group photo idling in a loop breathed in unison: each face's tempo rounds to the same
    whole number of breaths in the loop, and every loop started at the top of a breath in."""
    motions = preset_face_motions("idle-alive", [0, 1, 2], seed=3, duration_s=8.0, loop=True)
    peaks = [int(np.argmax(column(motion.full(), "breathing"))) for motion in motions.motions.values()]
    assert len(set(peaks)) == 3, peaks
    spread = max(peaks) - min(peaks)
    assert spread >= 12, peaks  # half a second or more apart: seen, not a frame's rounding


@pytest.mark.parametrize("duration_s", [0.0834, 0.125, 1.5])
@pytest.mark.parametrize("rate", [15, 40])
def test_a_very_short_loop_does_not_breathe_in_a_flicker(duration_s, rate):
    """A breath was forced into every loop: two frames alternated a whole breath in and out (255 levels apart
    on the chest), and a 1.5 s loop breathed at 40 a minute."""
    motion = preset_motion("idle-alive", fps=24, seed=0, duration_s=duration_s, loop=True, breaths_per_minute=rate)
    assert np.abs(column(motion.full(), "breathing")).max() == 0


def test_a_loop_plays_its_keys_at_the_wrap_where_they_are_not_mid_breath():
    """Head drift rests at 0 at a loop's ends, between drift keys either side: sampled as a breath keyed
    mid-way, its rest key was dropped and frame 0 turned the head up to 0.8 degrees, where Blender's curves
    (the same keys, a Cycles modifier) hold it at rest."""
    for seed in range(12):
        keys = preset_keys("idle-alive", fps=24, seed=seed, duration_s=8.0, loop=True)
        first = preset_motion("idle-alive", fps=24, seed=seed, duration_s=8.0, loop=True).full()[0]
        for name in ("head_yaw", "head_roll", "gaze_x", "blink_l"):
            assert first[CHANNEL_INDEX[name]] == pytest.approx(keys[name][0][1], abs=0.05), (seed, name)


@pytest.mark.parametrize("seed", range(4))
def test_a_loop_s_breath_runs_on_through_the_wrap(seed):
    """Each face's loop starts at its own point of a breath; keyed there with an ease in and out, the breath
    stalled at the wrap (its steps there a tenth of those beside them)."""
    breath = column(preset_motion("idle-alive", fps=24, seed=seed, duration_s=8.0, loop=True).full(), "breathing")
    steps = np.abs(np.diff(np.concatenate([breath, breath[:1]])))
    wrap = steps[-1]
    if abs(breath[0]) < 0.8 * np.abs(breath).max():  # (at the top or bottom of a breath it turns, slowly)
        assert wrap >= 0.5 * np.median(steps), (breath[0], wrap, np.median(steps))


def test_only_loopable_presets_loop():
    assert loopable_presets() == ["idle-alive"]
    with pytest.raises(MotionError, match="preset 'talk' cannot loop; presets that can: idle-alive"):
        preset_motion("talk", loop=True)
    with pytest.raises(MotionError, match="a loop needs at least 2 frames"):
        preset_motion("idle-alive", fps=24, duration_s=0.05, loop=True)


def breaths_per_minute(motion) -> float:
    """The breathing channel's rate: breaths in (upward crossings of its middle) per minute, from the
    first to the last."""
    breathing = column(motion.full(), "breathing").astype(np.float64)
    rising = np.flatnonzero((breathing[1:] > 0) & (breathing[:-1] <= 0)) + 1
    return 60.0 * motion.fps * (len(rising) - 1) / (rising[-1] - rising[0])


@pytest.mark.parametrize("rate", [12.0, 16.0, 20.0])
def test_idle_alive_breathes_at_the_rate_asked_for(rate):
    """Each face's tempo varies by at most 5% around the rate asked for (a group breathes out of step)."""
    for face in range(3):
        motion = preset_motion("idle-alive", duration_s=60.0, seed=4, face=face, breaths_per_minute=rate)
        assert rate * 0.94 <= breaths_per_minute(motion) <= rate * 1.06


def test_idle_alive_breathes_12_to_20_times_a_minute_by_default_and_each_face_its_own_way():
    motions = [preset_motion("idle-alive", duration_s=60.0, seed=9, face=face) for face in range(4)]
    rates = [breaths_per_minute(motion) for motion in motions]
    assert all(12.0 <= rate <= 20.0 for rate in rates)
    breathing = [column(motion.full(), "breathing") for motion in motions]
    assert all(not np.allclose(breathing[0], other, atol=0.05) for other in breathing[1:])


@pytest.mark.parametrize("rate", [12.0, 20.0])
def test_a_loop_at_any_breathing_rate_holds_whole_breaths_and_flows_at_the_wrap(rate):
    motion = preset_motion("idle-alive", fps=24, seed=2, duration_s=9.0, loop=True, breaths_per_minute=rate)
    keys = preset_keys("idle-alive", fps=24, seed=2, duration_s=9.0, loop=True, breaths_per_minute=rate)
    top = max(value for _, value in keys["breathing"])
    tops = [frame for frame, value in keys["breathing"] if value == top]
    assert abs(60.0 * len(tops) / 9.0 - rate) <= 0.25 * rate  # whole breaths, as near the rate as they allow
    wrap, steps = wrap_and_steps(_channel_units(motion.full()))
    assert 0 < wrap <= np.percentile(steps, 95)


def test_a_breathing_rate_is_for_presets_that_breathe_and_within_range():
    with pytest.raises(MotionError, match="preset 'nod' has no breathing rate; presets that breathe: idle-alive"):
        preset_keys("nod", breaths_per_minute=15)
    with pytest.raises(MotionError, match="breaths per minute must be from 4 to 40"):
        preset_keys("idle-alive", breaths_per_minute=0)


@pytest.mark.parametrize("duration_s", [0.5, 1.0, 1.9])
def test_a_short_idle_alive_still_breathes_at_the_usual_pace(duration_s):
    # Under about 2 s no whole breath fits, and the face was perfectly still (found by an exploratory pass).
    short = column(preset_motion("idle-alive", duration_s=duration_s, seed=0).full(), "breathing")
    long = column(preset_motion("idle-alive", duration_s=30.0, seed=0).full(), "breathing")
    assert np.abs(short).max() > 0.1
    assert np.abs(np.diff(short)).max() <= 1.5 * np.abs(np.diff(long)).max()  # no quicker than a breath
