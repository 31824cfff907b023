"""``python -m devhost --app-dir DIR [--port 7071] [--host 127.0.0.1]``: serve a Functions app."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from .config import HostError
from .host import DEFAULT_MAX_BODY_BYTES, Host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Run an Azure Functions app locally."
    )
    parser.add_argument("--app-dir", default=".", help="the app directory (function_app.py, host.json)")
    parser.add_argument(
        "--port", type=int, default=None, help="default: local.settings.json Host.LocalHttpPort, else 7071"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest request body accepted"
    )
    parser.add_argument("--verbose", action="store_true", help="log HTTP requests too")
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
    )
    if arguments.verbose:
        logging.getLogger("devhost").setLevel(logging.DEBUG)

    stopping = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host = Host(
        arguments.app_dir, port=arguments.port, host=arguments.host, max_body_bytes=arguments.max_body_bytes
    )
    try:
        host.start()
    except HostError as error:
        print(f"devhost: {error}", file=sys.stderr)
        return 1
    print(host.describe(), flush=True)
    print(f"\ndevhost is running at {host.url} (a development tool); press Ctrl-C to stop.", flush=True)
    while not stopping.wait(0.5):
        pass
    print("devhost: stopping", file=sys.stderr, flush=True)
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
