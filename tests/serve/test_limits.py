import subprocess
import sys

import pytest

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
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(available_cores() < 2, reason="OpenMP's threads spin only where there are two cores")
def test_a_servers_idle_torch_threads_sleep_rather_than_spin():
    # while the main thread sleeps between products, spinning workers keep the CPU busy (~1.2 cores measured)
    assert _busy_share("quiet_idle_threads()") < 0.6 < _busy_share("")
