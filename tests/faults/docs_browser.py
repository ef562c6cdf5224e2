#!/usr/bin/env python3
"""The documentation page in a real browser: headless Chromium (Debian's chromium and
chromium-driver, installed if missing) driven by selenium (PyPI, pinned, in a virtualenv under
~/.cache/umkm-api). Against the real server on SQLite with the demo data:

- `/docs/` loads with every resource from the server itself (the Swagger UI is vendored; the
  machine's network is closed, and the page must not need it);
- it lists every operation of the served document;
- "Authorize" with an admin token, then "Try it out" and "Execute" on the regions list answers 200;
- a screenshot of the page is written (docs/swagger-ui.png when run with --screenshot).

    python3 tests/faults/docs_browser.py [--screenshot docs/swagger-ui.png]
"""
import argparse, json, os, subprocess, sys, tempfile, time

from common import BINARY, LOG_DIR, Server, apt_install, check, venv_python

SELENIUM = "4.27.1"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def ensure_chromium():
    apt_install({"chromium": "chromium", "chromedriver": "chromium-driver"})


def selenium_python():
    """A virtualenv with selenium; its python."""
    return venv_python(f"selenium-{SELENIUM}", f"selenium=={SELENIUM}")[1]


# Runs inside the virtualenv: drives the page, prints one JSON line of findings.
DRIVER = r'''
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.support import expected_conditions as EC

base, token, operation, shot, profile = sys.argv[1:6]
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={profile}"]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
found = {}
try:
    wait = WebDriverWait(driver, 30)
    driver.get(base + "/docs/")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    time.sleep(1)
    found["operations"] = len(driver.find_elements(By.CSS_SELECTOR, ".opblock"))
    found["title"] = driver.find_element(By.CSS_SELECTOR, ".info .title").text
    found["resources"] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    # Authorize with the bearer token.
    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    field = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux input[type=text]")))
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize").click()
    driver.find_element(By.CSS_SELECTOR, ".modal-ux .btn-done").click()
    # Try it out on the list.
    block = driver.find_element(By.ID, f"operations-{operation}")
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".execute"))
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"))
    found["try_it_out_status"] = status[0].text.strip().split()[0]
    found["try_it_out_body"] = block.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text[:200]
    # The picture: the authorized operation and the answer it got.
    driver.execute_script("arguments[0].scrollIntoView()", block)
    driver.execute_script("window.scrollBy(0, -120)")
    driver.save_screenshot(shot)
finally:
    driver.quit()
print(json.dumps(found))
'''


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--screenshot", help="where to write the page's screenshot (PNG)")
    a = p.parse_args()
    ensure_chromium()
    python = selenium_python()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server("docs-browser", f"{tmp}/docs.sqlite3", {"RUST_LOG": "info"})
        subprocess.run([BINARY, "seed", "--demo"], env=server.env, check=True, capture_output=True)
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            doc = server.request("GET", "/api-docs/openapi.json").json()
            # Swagger UI lists the events (OpenAPI 3.1 `webhooks`) as operations too.
            operations = sum(len(item) for part in ("paths", "webhooks") for item in doc.get(part, {}).values())
            shot = os.path.abspath(a.screenshot) if a.screenshot else os.path.join(LOG_DIR, "swagger-ui.png")
            script = os.path.join(tmp, "drive.py")
            with open(script, "w") as f:
                f.write(DRIVER)
            started = time.monotonic()
            run = subprocess.run([python, script, base, server.admin(), "regions-list_regions", shot,
                                  os.path.join(tmp, "profile")],
                                 capture_output=True, text=True, timeout=180)
            check(run.returncode == 0, f"the browser run failed:\n{run.stdout}\n{run.stderr[-4000:]}")
            found = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"browser run {time.monotonic() - started:.1f} s: {found['operations']} operations listed, "
                  f"{len(found['resources'])} resources loaded, Try it out answered {found['try_it_out_status']}")
            check(found["operations"] == operations,
                  f"the page lists {found['operations']} operations, the document has {operations}")
            foreign = [r for r in found["resources"] if not r.startswith(base)]
            check(not foreign, f"the page loaded resources from elsewhere: {foreign}")
            check(found["title"].startswith("umkm-api"), f"unexpected title {found['title']!r}")
            check(found["try_it_out_status"] == "200", f"Try it out answered {found['try_it_out_status']}")
            check('"data"' in found["try_it_out_body"], f"unexpected body {found['try_it_out_body']!r}")
            check(os.path.getsize(shot) > 10_000, "the screenshot is empty")
        finally:
            server.stop()
    print("docs in a browser: ok")


if __name__ == "__main__":
    sys.exit(main())
