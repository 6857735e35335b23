"""Speech to mouth motion: lip-sync from audio, and text to speech with phoneme timings."""
