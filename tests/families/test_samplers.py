"""Our noise schedules and samplers against diffusers' schedulers on the same inputs (to 1e-5)."""
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from genloom.errors import GenloomError
from genloom.families.samplers import DDIMSampler, DDPMSampler, DPMSolverSampler
from genloom.families.schedules import NoiseSchedule

SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
PREDICTIONS = {"epsilon": "epsilon", "v": "v_prediction"}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_equal_diffusers(name):
    ours = NoiseSchedule.named(name)
    theirs = DDPMScheduler(beta_schedule=SCHEDULES[name])
    assert torch.allclose(ours.betas.float(), theirs.betas, atol=1e-7)
    assert torch.allclose(ours.alphas_cumprod.float(), theirs.alphas_cumprod, atol=1e-6)


def _inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 8, 8, generator=generator), torch.randn(2, 3, 8, 8, generator=generator)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("count", [1000, 50])
def test_ddpm_steps_equal_diffusers(name, prediction, count):
    ours = DDPMSampler(NoiseSchedule.named(name), prediction)
    theirs = DDPMScheduler(beta_schedule=SCHEDULES[name], prediction_type=PREDICTIONS[prediction])
    theirs.set_timesteps(count)
    assert torch.equal(ours.timesteps(count), theirs.timesteps)
    x, output = _inputs()
    for t in (int(theirs.timesteps[0]), int(theirs.timesteps[len(theirs.timesteps) // 2]), 0):
        a = ours.step(output, t, x, torch.Generator().manual_seed(1))
        b = theirs.step(output, t, x, generator=torch.Generator().manual_seed(1)).prev_sample
        assert torch.allclose(a, b, atol=1e-5), t


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_steps_equal_diffusers(name, prediction, eta):
    ours = DDIMSampler(NoiseSchedule.named(name), prediction, eta=eta)
    theirs = DDIMScheduler(beta_schedule=SCHEDULES[name], prediction_type=PREDICTIONS[prediction])
    theirs.set_timesteps(20)
    assert torch.equal(ours.timesteps(20), theirs.timesteps)
    x, output = _inputs()
    for t in theirs.timesteps.tolist():
        a = ours.step(output, t, x, torch.Generator().manual_seed(2))
        b = theirs.step(output, t, x, eta=eta, generator=torch.Generator().manual_seed(2)).prev_sample
        assert torch.allclose(a, b, atol=1e-5), t


@pytest.mark.parametrize("count, sampler", [(1, "ddim"), (4, "ddim"), (20, "ddim"), (1, "ddpm"), (3, "ddpm"),
                                            (4, "ddpm"), (7, "ddpm"), (20, "ddpm")])
def test_trailing_steps_equal_diffusers(count, sampler):
    """timestep_spacing="trailing": the grid from the noisiest step, and every step on it (DDIM where the count
    divides the steps: below)."""
    ours = (DDIMSampler(NoiseSchedule.cosine(), "v", spacing="trailing") if sampler == "ddim" else
            DDPMSampler(NoiseSchedule.cosine(), "v", spacing="trailing"))
    scheduler = DDIMScheduler if sampler == "ddim" else DDPMScheduler
    theirs = scheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", timestep_spacing="trailing")
    theirs.set_timesteps(count)
    assert torch.equal(ours.timesteps(count), theirs.timesteps)
    assert ours.timesteps(count)[0] == 999
    x, output = _inputs()
    for t in theirs.timesteps.tolist():
        a = ours.step(output, t, x, torch.Generator().manual_seed(3))
        b = theirs.step(output, t, x, generator=torch.Generator().manual_seed(3)).prev_sample
        assert torch.allclose(a, b, atol=1e-5), t


def test_trailing_ddim_keeps_to_its_grid():
    """Where the count does not divide the steps, diffusers' DDIM steps 666 -> 333 off its own grid (666, 332); this
    one lands on the grid, where a distilled student learnt to step."""
    sampler = DDIMSampler(NoiseSchedule.cosine(), "v", spacing="trailing")
    assert sampler.timesteps(3).tolist() == [999, 666, 332]
    x, output = _inputs()
    abar = NoiseSchedule.cosine().alphas_cumprod.float()
    x0, eps = NoiseSchedule.cosine().predictions(x, output, 666, "v")
    expected = abar[332].sqrt() * x0.clamp(-1, 1) + (1 - abar[332]).sqrt() * eps
    torch.testing.assert_close(sampler.step(output, 666, x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("count", [1, 2, 10, 20, 25])
@pytest.mark.parametrize("stochastic", [False, True])
def test_dpm_solver_trajectory_equals_diffusers(name, prediction, count, stochastic):
    """The ODE solver against diffusers' "dpmsolver++", the SDE one against its "sde-dpmsolver++", given the
    noise ours draws (from a twin generator)."""
    ours = DPMSolverSampler(NoiseSchedule.named(name), prediction, clip=False,  # diffusers' default: no thresholding
                            stochastic=stochastic)
    theirs = DPMSolverMultistepScheduler(beta_schedule=SCHEDULES[name], prediction_type=PREDICTIONS[prediction],
                                         algorithm_type="sde-dpmsolver++" if stochastic else "dpmsolver++")
    theirs.set_timesteps(count)
    our_generator, twin = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(ours.timesteps(count), theirs.timesteps)
    abar = theirs.alphas_cumprod

    def denoiser(x, t):
        """A stand-in network: the epsilon or v that points at x_0 = tanh(x) / 2, bounded like real data."""
        x0 = torch.tanh(x) / 2
        eps = (x - abar[t].sqrt() * x0) / (1 - abar[t]).sqrt()
        return eps if prediction == "epsilon" else abar[t].sqrt() * eps - (1 - abar[t]).sqrt() * x0

    x, _ = _inputs()
    for i, t in enumerate(theirs.timesteps.tolist()):  # a whole run: the multistep history matters
        output = denoiser(x, t)
        noise = torch.randn(x.shape, generator=twin) if stochastic else None
        ours_next = ours.step(output, t, x, our_generator)
        x = theirs.step(output, t, x, variance_noise=noise).prev_sample
        # x_0 = (x - sqrt(1 - abar) eps) / sqrt(abar) loses float32 digits in proportion to 1/sqrt(abar),
        # which reaches 1e4 at the cosine schedule's last step; elsewhere the bound is 1e-5.
        tolerance = 1e-5 * max(1.0, float(abar[t] ** -0.5) if prediction == "epsilon" else 1.0)
        assert torch.allclose(ours_next, x, atol=tolerance), (i, t, (ours_next - x).abs().max())


def test_out_of_range_settings():
    with pytest.raises(GenloomError, match="sampler steps must lie in 1..1000; got 0"):
        DDIMSampler(NoiseSchedule.linear()).timesteps(0)
    with pytest.raises(GenloomError, match="got 2000"):
        DDPMSampler(NoiseSchedule.linear()).timesteps(2000)
    with pytest.raises(GenloomError, match="unknown noise schedule 'sigmoid'"):
        NoiseSchedule.named("sigmoid")
    with pytest.raises(GenloomError, match="eta must be >= 0"):
        DDIMSampler(NoiseSchedule.linear(), eta=-1)
