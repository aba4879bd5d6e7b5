"""A probe page served next to the app by the memory test (never by the app itself): each
request collects garbage and writes the server's RSS and the number of live explorer sessions to
the JSON file named by EXPLORER_MEMORY_PROBE."""

import gc
import json
import os
import re
from pathlib import Path

import panel as pn

from explorer.ui.session import Session

gc.collect()
gc.collect()
status = Path("/proc/self/status").read_text()
rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
live = sum(1 for o in gc.get_objects() if isinstance(o, Session))
Path(os.environ["EXPLORER_MEMORY_PROBE"]).write_text(
    json.dumps({"rss_mb": rss_kb / 1024, "sessions": live}))
pn.pane.Markdown(f"rss {rss_kb / 1024:.1f} MB, live sessions {live}").servable()
