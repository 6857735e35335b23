"""Speech to mouth motion: lip-sync from audio, and text to speech with phoneme timings.

Modules, in the order the data flows:
  audio       decode any audio file or video sound track, in blocks (ffmpeg); write WAV
  acoustic    per-frame features (level, voicing, LPC formants) -> mouth curves, model-free
  tts         eSpeak NG text to speech with exact phoneme timings (libespeak-ng via ctypes)
  phonemes    timed phonemes -> visemes -> mouth curves (coarticulation by dominance blending)
  lipsync     mouth curves -> Motion (anticipation, closures, strength); the entry points
              lipsync_audio, lipsync_samples and lipsync_phonemes
  liveliness  optional head motion and blinks while talking
  commands    the `enliven lipsync` and `enliven say` subcommands (add_commands)
  errors      AudioError, NoSpeechError, SpeechSynthesisError

Nothing is imported here, so that registering the commands stays cheap.
"""
