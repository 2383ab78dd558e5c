"""Mel spectrograms and Griffin-Lim, held to librosa's (the oracle) and to what a spectrogram must show."""
import numpy as np
import pytest
import torch

from genloom.data.spectrogram import MelScale

librosa = pytest.importorskip("librosa")

SCALE = MelScale(8000, hop=128, n_fft=512, mels=32)


def test_the_filter_bank_is_librosas_htk_bank():
    theirs = librosa.filters.mel(sr=8000, n_fft=512, n_mels=32, htk=True, norm=None, fmin=0.0, fmax=4000.0)
    np.testing.assert_allclose(SCALE.filterbank.numpy(), theirs, atol=1e-5)


def test_mel_power_is_librosas_melspectrogram_without_its_last_frame():
    waves = np.random.default_rng(0).standard_normal((2, 5120)).astype(np.float32)
    theirs = librosa.feature.melspectrogram(y=waves, sr=8000, n_fft=512, hop_length=128, n_mels=32, htk=True,
                                            norm=None, center=True, pad_mode="constant", power=2.0)
    ours = SCALE.power(torch.from_numpy(waves)).numpy()
    assert ours.shape == (2, 40, 32)  # 5,120 samples: 40 frames of 128
    np.testing.assert_allclose(ours, theirs[..., :40].transpose(0, 2, 1), rtol=1e-4, atol=1e-4 * theirs.max())


def test_griffin_lim_is_librosas_from_zero_phase():
    wave = np.random.default_rng(1).standard_normal(4096).astype(np.float32)
    magnitudes = np.abs(librosa.stft(wave, n_fft=512, hop_length=128, center=True, pad_mode="constant"))
    theirs = librosa.griffinlim(magnitudes, n_iter=16, hop_length=128, n_fft=512, center=True, length=4096,
                                init=None, pad_mode="constant", momentum=0.99)
    ours = SCALE.griffin_lim(torch.from_numpy(magnitudes)[None], 4096, iterations=16)[0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-3 * np.abs(theirs).max())


def test_a_tone_lights_the_band_of_its_frequency_and_comes_back_at_it():
    time = np.arange(4096) / 8000
    tone = torch.from_numpy(np.sin(2 * np.pi * 1000 * time).astype(np.float32))[None]
    levels = SCALE.decibels(tone)[0]
    centres = SCALE.filterbank.argmax(1).numpy() * 8000 / 512  # the frequency at each band's peak
    loudest = levels.mean(0).argmax().item()
    assert abs(centres[loudest] - 1000) < 130  # bands near 1 kHz are some 120 Hz wide
    back = SCALE.waves(levels[None], 4096)[0].numpy()
    spectrum = np.abs(np.fft.rfft(back))
    assert abs(np.argmax(spectrum) * 8000 / 4096 - 1000) < 60
    # where the tone is (within 30 dB of its loudest), its spectrogram is the tone's: Griffin-Lim found a phase that
    # fits the magnitudes
    loud = levels > levels.max() - 30
    assert (SCALE.decibels(torch.from_numpy(back)[None])[0] - levels)[loud].abs().mean() < 3.0
