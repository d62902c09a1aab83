"""City's ASGI app without issue 12's runtime tuning, for `bench/servers_tail.py --untuned`: what a
server's tail was before it (city/server_tuning.py: the frozen heap and the 0.5 ms switch interval;
city/refresh_ahead.py: caches read again in the background), measured in the same run as with it.

City runs its start-up hooks when city.asgi is imported; this undoes the three afterwards (the
interpreter's own switch interval is 5 ms). Nothing in City imports it.
"""

import gc
import sys

from city import refresh_ahead, server_tuning
from city.asgi import application

PYTHON_SWITCH_INTERVAL_SECONDS = 0.005

gc.unfreeze()
sys.setswitchinterval(PYTHON_SWITCH_INTERVAL_SECONDS)
server_tuning._applied = False  # and no second freeze after the first requests
refresh_ahead.refresher.enabled = False

__all__ = ["application"]
