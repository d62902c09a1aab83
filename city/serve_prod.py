"""`make serve-prod`: uvicorn (uvloop, httptools, no access log), one process or `--workers N`, whose
processes exit normally when asked to stop, so that their `atexit` hooks run.

Why not uvicorn's own command: after a graceful shutdown, uvicorn's `Server.capture_signals` raises
again the SIGTERM or SIGINT it caught, with the handler that was there before (the default one), so
the process dies by the signal and Python never runs its `atexit` hooks: the usage writer's last
records (aihub/metering.py), the ledger keeper's goodbye and the crash journal's close
(aihub/ledger_keeper.py, aihub/ledger_local.py). Nothing was lost — Redis's reaper or the journal's
replay at the next start writes them — but late, and a metrics registry needs a clean exit too.
`Server` below only asks for the graceful shutdown; `run()` then returns and the process ends with
status 0, after its `atexit` hooks.

With `--workers`, uvicorn's supervisor (`uvicorn.supervisors.Multiprocess`) starts each worker as a
`multiprocess.Process`, whose `server` property builds the worker's `Server`: no public API lets us
choose that class, so `_Worker` overrides the property and `main()` has the supervisor use it.
Both are uvicorn 0.54.0's internals: requirements.txt pins uvicorn, and aihub/tests/test_serve_prod.py
fails (a worker's records missing at exit) if they change under City.
"""

import argparse
import os
import signal
import sys
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess, multiprocess

APP = "city.asgi:application"


class Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn's own handler, less the line that records `sig` to be raised again once the
        # shutdown is done: a second Ctrl+C still forces the exit, as with uvicorn.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


class _Worker(multiprocess.Process):
    """uvicorn's worker process, running `Server` above (this class is pickled into the worker)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = Server(config=self.config)
        return self._server


def config(host: str, port: int, workers: int) -> uvicorn.Config:
    """The options `make serve-prod` always ran uvicorn with."""
    return uvicorn.Config(APP, host=host, port=port, workers=workers, loop="uvloop", http="httptools", access_log=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m city.serve_prod", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("CITY_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CITY_PORT") or 43127))
    parser.add_argument("--workers", type=int, default=1, help="processes (production: one per core)")
    args = parser.parse_args(argv)
    # Read by city/settings.py in this process and in every worker (spawned: they inherit the environment).
    os.environ["CITY_ASGI_SERVER"] = "uvicorn"
    conf = config(args.host, args.port, args.workers)
    if conf.workers > 1:
        multiprocess.Process = _Worker  # type: ignore[misc]  # the supervisor's workers run our Server
        Multiprocess(conf, sockets=[conf.bind_socket()]).run()
        return  # the supervisor itself never re-raises a signal: it ends when its workers have
    server = Server(conf)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn's command: the app or the socket failed


if __name__ == "__main__":
    # Run as `city.serve_prod`, not `__main__`: the worker processes (spawned) unpickle `_Worker` by
    # its module's name, which must be importable there.
    from city import serve_prod

    serve_prod.main()
