"""Reading recordings and series: rates, channels, labels, and the files that are not recordings."""
import numpy as np
import pytest
import soundfile

import genloom as gl
from genloom.data.signals import Signals, as_signals, resampled
from genloom.errors import GenloomError
from tests.conftest import TONE_SAMPLES, write_tones


def test_a_folder_of_class_folders_reads_as_labelled_recordings(tones):
    data = gl.load_data(tones)
    assert data.kind == "signal" and data.class_names == ["high", "low"]
    assert len(data) == 48 and data.values.rate == 8000
    assert np.bincount(data.labels).tolist() == [24, 24]
    assert all(len(wave) == TONE_SAMPLES and wave.dtype == np.float32 for wave in data.values.waves)
    assert "48 recordings" in repr(data)


def test_recordings_at_other_rates_are_resampled_to_the_common_rate_with_a_notice(tmp_path, capsys):
    folder = write_tones(tmp_path / "mixed", count=3)
    time = np.arange(3200) / 16000
    soundfile.write(folder / "low" / "fast.wav", np.sin(2 * np.pi * 300 * time), 16000)
    data = gl.load_data(folder)
    assert "1 of 7 recordings resampled to 8,000 Hz (from 16,000 Hz)" in capsys.readouterr().err
    fast = next(wave for wave in data.values.waves if len(wave) == 1600)  # 0.2 s, now at 8 kHz
    spectrum = np.abs(np.fft.rfft(fast))  # the tone keeps its pitch at the new rate
    assert abs(np.argmax(spectrum) * 8000 / len(fast) - 300) < 10


def test_a_sample_rate_asked_for_resamples_every_recording(tones):
    data = gl.load_data(tones, sample_rate=4000)
    assert data.values.rate == 4000 and len(data.values.waves[0]) == TONE_SAMPLES // 2
    assert data.source["sample_rate"] == 4000


def test_stereo_recordings_are_mixed_down_with_a_notice(tmp_path, capsys):
    folder = tmp_path / "stereo"
    folder.mkdir()
    left = np.linspace(-0.5, 0.5, 800)
    soundfile.write(folder / "a.wav", np.stack([left, -left + 0.2], axis=1), 8000)
    soundfile.write(folder / "b.wav", left, 8000)
    data = gl.load_data(folder)
    assert "1 of 2 recordings mixed down from several channels to mono" in capsys.readouterr().err
    np.testing.assert_allclose(data.values.waves[0], 0.1, atol=1e-4)  # the mean of the two channels
    assert data.labels is None


def test_a_corrupt_recording_is_named(tmp_path):
    folder = write_tones(tmp_path / "bad", count=2)
    (folder / "low" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nothing")
    with pytest.raises(GenloomError, match=r"broken\.wav is not a readable audio file .*convert it to WAV or FLAC"):
        gl.load_data(folder)


def test_recordings_beside_class_folders_are_refused(tmp_path):
    folder = write_tones(tmp_path / "loose", count=2)
    soundfile.write(folder / "stray.wav", np.zeros(800), 8000)
    with pytest.raises(GenloomError, match=r"holds recordings \(stray.wav, ...\) beside class sub-folders"):
        gl.load_data(folder)


def test_one_recording_asks_for_its_folder(tones):
    with pytest.raises(GenloomError, match="is one recording; a model learns from many: give the folder"):
        gl.load_data(tones / "low" / "000.wav")


def test_a_two_dimensional_npy_is_series_without_a_rate(tmp_path):
    series = np.cumsum(np.random.default_rng(0).standard_normal((30, 64)), axis=1)
    np.save(tmp_path / "sensors.npy", series)
    data = gl.load_data(tmp_path / "sensors.npy")
    assert data.kind == "signal" and data.values.rate is None and len(data) == 30
    np.testing.assert_allclose(data.values.waves[3], series[3], rtol=1e-6)
    assert "30 series" in repr(data)


def test_a_sample_rate_is_refused_for_images_and_is_the_rate_of_series(tmp_path):
    with pytest.raises(GenloomError, match="a sample rate applies to recordings; digits holds image data"):
        gl.load_data("digits", sample_rate=8000)
    np.save(tmp_path / "sensors.npy", np.zeros((3, 20)) + np.arange(20))
    assert gl.load_data(tmp_path / "sensors.npy", sample_rate=100).values.rate == 100


def test_resampling_keeps_a_tone_and_its_duration():
    time = np.arange(8000) / 8000
    wave = np.sin(2 * np.pi * 440 * time).astype(np.float32)
    faster = resampled(wave, 8000, 22050)
    assert len(faster) == 22050 and faster.dtype == np.float32
    assert abs(np.argmax(np.abs(np.fft.rfft(faster))) - 440) <= 1  # one second: bin k is k Hz


def test_signals_index_like_arrays_and_refuse_what_is_not_mono():
    signals = as_signals([np.zeros(5), np.ones(7), np.full(3, 2.0)])
    assert isinstance(signals, Signals) and [len(w) for w in signals[np.array([2, 0])].waves] == [3, 5]
    with pytest.raises(GenloomError, match=r"signal #0 has shape \(2, 5\); give one 1-D array a signal"):
        as_signals([np.zeros((2, 5))])
    with pytest.raises(GenloomError, match="signal #1 holds NaN"):
        as_signals([np.zeros(4), np.array([0.0, np.nan])])


def test_spoken_digits_follows_the_datasets_own_split():
    train, test = gl.load_data("spoken_digits"), gl.load_data("spoken_digits-test")
    assert (len(train), len(test)) == (2700, 300) and train.values.rate == 8000
    assert np.bincount(test.labels).tolist() == [30] * 10 and train.class_names == [str(d) for d in range(10)]
