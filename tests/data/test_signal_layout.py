"""The pieces families take from a signal layout: mu-law tokens (held to librosa's), the Gaussian likelihood (held
to torch.distributions), and which tokens each representation gets."""
import math

import numpy as np
import pytest
import torch

from genloom.data.image_layout import PixelTokens
from genloom.data.signal_layout import MuLawTokens, SignalLayout, inverse_mu_law, mu_law

librosa = pytest.importorskip("librosa")


def test_mu_law_levels_are_librosas_rounded_where_it_takes_the_level_above():
    x = np.linspace(-1, 1, 20001)
    ours = mu_law(torch.from_numpy(x)).numpy()
    theirs = librosa.mu_compress(x, mu=255, quantize=True) + 128  # librosa's levels run from -128
    # the same companding; librosa puts a value in the level at or above it, we in the nearest
    assert ((theirs - ours >= 0) & (theirs - ours <= 1)).all() and 0.45 < (ours == theirs).mean() < 0.55
    assert ours.min() == 0 and ours.max() == 255


def test_mu_law_spends_its_levels_near_silence_and_round_trips_within_a_level():
    x = torch.linspace(-1, 1, 4001)
    back = inverse_mu_law(mu_law(x))
    quiet, loud = x.abs() < 0.01, x.abs() > 0.9
    assert (back - x)[quiet].abs().max() < 3e-4 and (back - x)[loud].abs().max() < 0.03
    # the expansion is librosa's
    companded = 2 * torch.arange(256) / 255 - 1
    np.testing.assert_allclose(inverse_mu_law(torch.arange(256)).numpy(),
                               librosa.mu_expand(companded.numpy(), mu=255, quantize=False), atol=1e-6)


def test_a_waveform_gets_mu_law_tokens_and_a_spectrogram_pixel_levels():
    waveform, spectrogram = SignalLayout((1, 512), 10), SignalLayout((1, 16, 8), 0)
    tokens = waveform.tokens(levels=16, bins=32)
    assert isinstance(tokens, MuLawTokens) and (tokens.length, tokens.vocab_size) == (512, 256)
    x = torch.rand(3, 1, 512) * 2 - 1
    assert torch.allclose(tokens.decode(tokens.encode(x)), x, atol=0.03)
    levels = spectrogram.tokens(levels=16, bins=32)
    assert isinstance(levels, PixelTokens) and (levels.length, levels.vocab_size) == (128, 16)


def test_the_likelihood_is_a_gaussian_density_with_the_learnt_scale():
    x, output = torch.rand(4, 1, 32) * 2 - 1, torch.rand(4, 1, 32) * 2 - 1
    log_scale = torch.tensor([math.log(0.2)])
    reconstruction = SignalLayout((1, 32)).reconstruction()
    expected = torch.distributions.Normal(output, 0.2).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction.log_prob(x, output, log_scale), expected)
    assert not reconstruction.discrete and reconstruction.adversarial
    assert torch.equal(reconstruction.activate(torch.tensor([0.0, 100.0])), torch.tensor([0.0, 1.0]))
