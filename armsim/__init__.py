"""armsim: a local, stateful simulator of the Azure Resource Manager API (the sandbox).

    from armsim import ArmSim
    with ArmSim() as sim:          # HTTPS on 127.0.0.1, a free port
        sim.url, sim.ca_path       # point SDK clients here; trust the CA via REQUESTS_CA_BUNDLE

`python -m armsim --port 8443 --data DIR` serves the same from the command line.
"""

from armsim.core.server import ArmSim
from armsim.resources.models import SANDBOX_SUBSCRIPTION

__all__ = ["SANDBOX_SUBSCRIPTION", "ArmSim"]
