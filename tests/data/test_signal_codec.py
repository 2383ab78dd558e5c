"""SignalCodec: crops and padding, the two representations, the sample files, and what it refuses."""
import json

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

import genloom as gl
from genloom.data.codec import fitted_codec
from genloom.data.provenance import check_provenance
from genloom.data.signal_codec import SignalCodec
from genloom.data.signals import Signals
from genloom.errors import GenloomError


@pytest.fixture(scope="module")
def recordings(tones):
    return gl.load_data(tones)


def test_a_waveform_round_trips_through_its_encoding(recordings):
    codec = fitted_codec(recordings, {"representation": "waveform"})
    x = codec.encode(recordings.values)
    assert x.shape == (48, 1, 2048) and x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() == 1  # scaled by the training range
    back = codec.decode(x)
    np.testing.assert_allclose(np.stack(back.waves), np.stack(recordings.values.waves), atol=1e-5)


def test_recordings_are_cropped_at_their_end_and_padded_with_silence():
    codec = SignalCodec("waveform", length=16)
    codec.fit(gl.Dataset("signal", Signals([np.linspace(-1, 1, 30, dtype=np.float32)], 8000), "ramp"))
    short, long = np.full(5, 0.5, np.float32), np.linspace(-1, 1, 30, dtype=np.float32)
    decoded = codec.decode(codec.encode(Signals([short, long], 8000))).waves
    np.testing.assert_allclose(decoded[0], [0.5] * 5 + [0.0] * 11, atol=1e-6)
    np.testing.assert_allclose(decoded[1], long[:16], atol=1e-6)


def test_the_default_length_holds_nine_in_ten_and_halves_cleanly():
    lengths = np.arange(1000, 11000, 100)  # 100 recordings of 1,000 to 10,900 samples
    signals = Signals([np.sin(np.arange(n) / 3).astype(np.float32) for n in lengths], 8000)
    codec = fitted_codec(gl.Dataset("signal", signals, "varied"), {})
    assert codec.representation == "mel" and codec.length == 10240  # the 90th percentile, 9,910, up to 8 x 128
    assert codec.layout.shape == (1, 80, 32)


def test_a_spectrogram_encoding_spans_its_range_and_sounds_like_the_recording(recordings):
    codec = fitted_codec(recordings, {"mels": 16})
    x = codec.encode(recordings.values)
    assert x.shape == (48, 1, 16, 16) and x.max() == 1 and x.min() >= -1
    low = recordings.labels == recordings.class_names.index("low")
    bands = x[torch.from_numpy(low)].mean((0, 1, 2)).argmax().item()
    assert bands < x[torch.from_numpy(~low)].mean((0, 1, 2)).argmax().item()  # a low tone lights a lower band
    back = codec.decode(x[:2])
    for wave, original in zip(back.waves, recordings.values.waves[:2]):
        peak = lambda w: np.argmax(np.abs(np.fft.rfft(w))) * 8000 / len(w)  # noqa: E731
        # Griffin-Lim loses the phase, and the pitch within a band (16 bands: some 250 Hz apart at 1.5 kHz)
        assert abs(peak(wave) - peak(original)) < 125


def test_the_fitted_codec_survives_its_json(recordings):
    codec = fitted_codec(recordings, {"mels": 16})
    again = SignalCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert torch.equal(again.encode(recordings.values[:3]), codec.encode(recordings.values[:3]))
    assert again.layout == codec.layout and again.class_names == ["high", "low"]


def test_series_are_waveforms_without_a_rate(tmp_path):
    data = gl.Dataset("signal", Signals([np.arange(40, dtype=np.float32) * k for k in (1, 2)]), "lines")
    codec = fitted_codec(data, {})
    assert codec.representation == "waveform" and codec.length == 40 and codec.layout.shape == (1, 40)
    assert codec.preview_suffixes == (".png",)
    with pytest.raises(GenloomError, match="a mel spectrogram needs a sample rate, and these series have none"):
        fitted_codec(data, {"representation": "mel"})
    with pytest.raises(GenloomError, match=r"series without a sample rate cannot be WAV files \(x.wav\); write "
                                           "them to an .npy"):
        codec.save_samples(codec.decode(codec.encode(data.values)), tmp_path / "x.wav")
    codec.save_samples(codec.decode(codec.encode(data.values)), tmp_path / "lines.png")  # drawn as lines
    assert Image.open(tmp_path / "lines.png").size[0] > 40


@pytest.mark.parametrize("options, message", [
    ({"length": 512}, "a length of 512 samples is shorter than the networks' receptive field of 8 spectrogram "
                      "frames (1024 samples at 8,000 Hz) or not a whole number of frames of 128: use --length 1024"),
    ({"length": 1100}, "not a whole number of frames of 128: use --length 1152"),
    ({"length": 8, "representation": "waveform"}, "a length of 8 samples is shorter than the networks' receptive "
                                                  "field (16 samples): use --length 16 or more"),
    ({"mels": 200}, "mels must be at most 128"),
    ({"representation": "cepstrum"}, "unknown signal representation 'cepstrum'; use one of mel, waveform"),
])
def test_impossible_options_are_refused(recordings, options, message):
    with pytest.raises(GenloomError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fitted_codec(recordings, options)


def test_recordings_at_another_rate_are_refused(recordings):
    codec = fitted_codec(recordings, {"representation": "waveform"})
    with pytest.raises(GenloomError, match="these recordings are at 16,000 Hz; the model's are at 8,000 Hz: load "
                                           "them with sample_rate=8000"):
        codec.encode(Signals(recordings.values.waves[:2], 16000))


def test_samples_are_written_as_wav_files_one_wav_an_array_and_spectrograms(recordings, tmp_path):
    codec = fitted_codec(recordings, {"representation": "waveform"})
    signals = recordings.values[:3]
    provenance = {"generator": "test"}
    codec.save_samples(signals, tmp_path / "wavs", provenance)
    files = sorted((tmp_path / "wavs").glob("*.wav"))
    assert [f.name for f in files] == ["000000.wav", "000001.wav", "000002.wav"]
    read, rate = soundfile.read(files[1], dtype="float32")
    assert rate == 8000 and np.abs(read - signals.waves[1]).max() < 1e-4  # 16-bit PCM
    assert check_provenance(files[1]) == ({"generator": "test", "index": 1, "file": "000001.wav",
                                           "content_sha256": check_provenance(files[1])[0]["content_sha256"]}, True)
    codec.save_samples(signals, tmp_path / "reel.wav")
    assert soundfile.info(tmp_path / "reel.wav").frames == 3 * 2048 + 2 * 2000  # a quarter second between them
    codec.save_samples(signals, tmp_path / "all.npy")
    np.testing.assert_allclose(np.load(tmp_path / "all.npy"), np.stack(signals.waves))
    codec.save_samples(signals, tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").mode == "RGB"
    with pytest.raises(GenloomError, match="is a folder with files in it; write the recordings to a new or empty"):
        codec.save_samples(signals, tmp_path / "wavs")
    with pytest.raises(GenloomError, match="cannot write signal samples to x.csv"):
        codec.save_samples(signals, tmp_path / "x.csv")


def test_labels_are_checked_against_the_classes(recordings):
    codec = fitted_codec(recordings, {"mels": 16})
    assert codec.label_ids(["low", 0]).tolist() == [1, 0]
    with pytest.raises(GenloomError, match="unknown label 'middle'; known: high, low"):
        codec.label_ids(["middle"])
