"""python -m armsim --port PORT --data DIR"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from armsim.core.server import ArmSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m armsim", description="Local Azure Resource Manager simulator."
    )
    parser.add_argument("--port", type=int, default=8443, help="HTTPS port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument(
        "--data", default=None, help="directory for ca.pem and the saved state (kept across restarts)"
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s armsim %(levelname)s %(message)s")
    try:
        sim = ArmSim(port=args.port, data_dir=args.data)
    except OSError as exc:
        print(f"armsim: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    sim.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"armsim listening on {sim.url} (CA certificate: {sim.ca_path})", flush=True)
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
