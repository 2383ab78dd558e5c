"""What the signal metrics read: spectrograms of recordings whatever the model learnt, noise as loud as the data,
and a picture of one recording of each class."""
import numpy as np
from PIL import Image

import genloom as gl
from genloom.data.codec import fitted_codec
from genloom.data.signals import Signals
from genloom.metrics.signals import feature_input, spectrogram_comparison, white_noise


def test_features_read_spectrograms_of_recordings_in_either_representation(tones):
    data = gl.load_data(tones)
    waveform = fitted_codec(data, {"representation": "waveform"})
    mel = fitted_codec(data, {"mels": 32})
    for codec in (waveform, mel):
        x = feature_input(codec, data.values[:4])
        assert x.shape == (4, 1, 16, 32) and -1 <= x.min() and x.max() <= 1
    series = gl.Dataset("signal", Signals([np.arange(50, dtype=np.float32) * k for k in (1, 3)]), "lines")
    assert feature_input(fitted_codec(series, {}), series.values).shape == (2, 1, 50)  # series: as themselves


def test_white_noise_is_as_loud_as_the_recordings():
    loud = Signals([np.full(4000, 0.5, np.float32), np.full(3000, -0.5, np.float32)], 8000)
    noise = white_noise(loud, seed=0)
    assert [len(w) for w in noise.waves] == [4000, 3000]
    assert abs(np.sqrt(np.mean(np.concatenate(noise.waves) ** 2)) - 0.5) < 0.01
    assert abs(np.corrcoef(noise.waves[0][:-1], noise.waves[0][1:])[0, 1]) < 0.05  # white: no memory


def test_the_comparison_shows_one_recording_of_each_class_on_both_sides(tones, tmp_path):
    data = gl.load_data(tones)
    codec = fitted_codec(data, {"mels": 16})
    path = spectrogram_comparison(codec, data.values, data.labels, data.values[::-1], data.labels[::-1],
                                  tmp_path / "compare.png")
    width, height = Image.open(path).size
    assert width < height * 1.5  # two classes: two columns of two rows
