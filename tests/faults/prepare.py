#!/usr/bin/env python3
"""Installs, once and before run.sh starts its lanes, what the fault scripts install for
themselves when run alone: Debian's packages (one apt-get at a time) and the pinned
virtualenvs under the cache. Scripts running side by side then find everything in place and
never race on apt's lock or on a half-made virtualenv.

    python3 tests/faults/prepare.py
"""
import os, re

from common import apt_install, venv_python

import docs_browser
import fuzz

HERE = os.path.dirname(os.path.abspath(__file__))

# cluster.py, docs_browser.py, metrics.py
apt_install({"haproxy": "haproxy", "chromium": "chromium", "chromedriver": "chromium-driver"})
apt_install({"wrk": "wrk", "promtool": "prometheus"}, no_recommends=True)
# fuzz.py, docs_browser.py, webhooks.py (which cannot be imported: it re-executes itself
# under its virtualenv)
fuzz.schemathesis()
docs_browser.selenium_python()
with open(os.path.join(HERE, "webhooks.py")) as f:
    standardwebhooks = re.search(r'^STANDARDWEBHOOKS = "([^"]+)"', f.read(), re.M).group(1)
venv_python(f"standardwebhooks-{standardwebhooks}", f"standardwebhooks=={standardwebhooks}")
print("prepared: Debian's packages and the virtualenvs are in place", flush=True)
