import os
import subprocess
import sys

import pytest

from genloom.serve.limits import quiet_idle_threads
from genloom.train.device import available_cores

SPIN_PROBE = """
import time
from genloom.serve.limits import quiet_idle_threads
{call}
import torch
torch.set_num_threads(2)
a = torch.randn(256, 256)
for _ in range(5):
    a @ a
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(100):
    a @ a
    time.sleep(0.002)
print((time.process_time() - cpu) / (time.perf_counter() - wall))
"""


def _busy_share(call: str) -> float:
    command = [sys.executable, "-c", SPIN_PROBE.format(call=call)]
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    return float(subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout)


@pytest.mark.skipif(available_cores() < 2, reason="OpenMP's threads spin only where there are two cores")
def test_a_servers_idle_torch_threads_sleep_rather_than_spin():
    # while the main thread sleeps between products, spinning workers keep the CPU busy (~1.2 cores measured)
    assert _busy_share("quiet_idle_threads()") < 0.6 < _busy_share("")


def test_once_torch_is_loaded_the_policy_is_left_alone(monkeypatch):
    # OpenMP has read it already: setting it now would only leak into the processes this one starts
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    quiet_idle_threads()
    assert "OMP_WAIT_POLICY" not in os.environ
