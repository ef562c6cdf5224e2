"""Shared by the fault scripts: start the real server binary on a loopback port, log in, call it.

Standard library only. Every script prints the figures it measured and exits non-zero on the
first broken promise, with a message saying which.
"""
import http.client, json, os, random, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.parse
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("UMKM_BIN", os.path.join(ROOT, "target", "debug", "umkm-api"))
# Every server these scripts start logs here, so that the secrets check can read all of it.
LOG_DIR = os.environ.get("FAULTS_LOG_DIR", os.path.join(tempfile.gettempdir(), "umkm-faults-logs"))


def data_key_file(directory):
    """A new key file for DATA_KEY_FILE in `directory` (the format of `umkm-api keys init`)."""
    import base64
    path = os.path.join(directory, "data_keys")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            for kind in ("encryption", "index"):
                f.write(f"{kind} 1 {base64.b64encode(os.urandom(32)).decode()} active\n")
    return path


# Every server and command a script starts shares one key file (they share databases), made
# once per script run unless DATA_KEY_FILE is given.
if not os.environ.get("DATA_KEY_FILE"):
    os.environ["DATA_KEY_FILE"] = data_key_file(tempfile.mkdtemp(prefix="umkm-faults-keys-"))
os.makedirs(LOG_DIR, exist_ok=True)


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


# Ports for servers come from a range below the kernel's ephemeral ports (32768 and up on
# Linux), so that no client connection of a script running beside this one can take a port
# between the moment it is picked and the moment its server binds it (PostgreSQL binds seconds
# later). run.sh gives each of its lanes a range of its own; never the same port twice here.
PORTS = os.environ.get("FAULTS_PORTS", "20000-32000")
_given = set()


def free_port():
    low, high = (int(part) for part in PORTS.split("-"))
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _given or port == 5432:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    fail(f"no free loopback port in {PORTS}")


def cache_dir():
    """Where the scripts keep what they install (virtualenvs), as .ci/run reports it."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "umkm-api")
    return os.environ.get("UMKM_CACHE_DIR", default)


def venv_python(name, requirement):
    """A virtualenv under the cache with `requirement` (pinned) installed; its python. Made
    again unless an earlier install finished (its `.ready` mark)."""
    home = os.path.join(cache_dir(), name)
    python = os.path.join(home, "bin", "python")
    if not os.path.exists(os.path.join(home, ".ready")):
        print(f"installing {requirement} into {home}", flush=True)
        venv.create(home, with_pip=True, clear=True)
        subprocess.run([python, "-m", "pip", "install", "-q", requirement], check=True)
        open(os.path.join(home, ".ready"), "w").close()
    return home, python


def apt_install(programs, no_recommends=False):
    """Installs Debian's packages for the programs that are missing ({program: package})."""
    missing = sorted({package for program, package in programs.items() if not shutil.which(program)})
    if not missing:
        return
    print(f"installing Debian's {' '.join(missing)}", flush=True)
    check(os.geteuid() == 0, f"{' '.join(missing)} missing (apt-get install them) and we are not root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Waits for another apt-get (a script run beside this one) instead of failing on its lock.
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq"]
    install += ["--no-install-recommends"] if no_recommends else []
    if subprocess.run(install + missing, capture_output=True, env=env, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"], capture_output=True,
                       env=env, timeout=600)
        done = subprocess.run(install + missing, capture_output=True, text=True, env=env, timeout=600)
        check(done.returncode == 0, f"apt-get install {' '.join(missing)} failed: {done.stderr[-2000:]}")
    still = [program for program in programs if not shutil.which(program)]
    check(not still, f"{' '.join(still)} still missing after apt-get install")


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


class Server:
    """The umkm-api binary serving `database_url` on a free loopback port."""

    def __init__(self, name, database_url, extra_env=None):
        self.name = name
        self.port = free_port()
        self.secret = secrets.token_urlsafe(48)
        self.password = secrets.token_urlsafe(18)
        self.env = dict(os.environ, DATABASE_URL=database_url, BIND_ADDR=f"127.0.0.1:{self.port}",
                        JWT_SECRET=self.secret, UMKM_ADMIN_EMAIL="admin@faults.test",
                        UMKM_ADMIN_PASSWORD=self.password, RUST_LOG="debug", DB_POOL_SIZE="8")
        self.env.update(extra_env or {})
        self.log_path = os.path.join(LOG_DIR, f"{name}.log")
        self.process = None
        self.token = None

    def start(self, wait=60):
        # What must never appear in a log: recorded for tests/faults/no_secrets_leak.py.
        url = urllib.parse.urlsplit(self.env["DATABASE_URL"])
        with open(os.path.join(LOG_DIR, "secrets.jsonl"), "a") as f:
            keys = []
            if os.path.exists(self.env.get("DATA_KEY_FILE", "")):
                keys = [line.split()[2] for line in open(self.env["DATA_KEY_FILE"])
                        if line.strip() and not line.startswith("#")]
            f.write(json.dumps({"server": self.name, "jwt_secret": self.secret, "admin_password": self.password,
                                "database_password": url.password if url.scheme.startswith("postgres") else None,
                                "data_keys": keys})
                    + "\n")
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([BINARY], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            check(self.process.poll() is None, f"{self.name}: server exited early, see {self.log_path}")
            try:
                if self.request("GET", "/healthz", timeout=2).status == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        fail(f"{self.name}: server not up within {wait} s")

    def login(self, email="admin@faults.test", password=None):
        reply = self.request("POST", "/api/v1/auth/token",
                             {"email": email, "password": password or self.password})
        check(reply.status == 200, f"login of {email} gave {reply.status}: {reply.body[:200]!r}")
        return reply.json()["access_token"]

    def admin(self):
        if self.token is None:
            self.token = self.login()
        return self.token

    def request(self, method, path, body=None, token=None, headers=None, timeout=30, raw=None, source=None):
        """`source`: another loopback address to send from (127.0.0.2 …), as another machine."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            all_headers = dict(headers or {})
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                all_headers.setdefault("Content-Type", "application/json")
            if token:
                all_headers["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            payload = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)
        return self.process.returncode if self.process else None


def stats_verify(database_url, label):
    """`umkm-api stats verify` on the database: the statistics' summaries equal the data."""
    env = dict(os.environ, DATABASE_URL=database_url, JWT_SECRET=secrets.token_urlsafe(48), RUST_LOG="warn")
    done = subprocess.run([BINARY, "stats", "verify"], env=env, capture_output=True, text=True, timeout=300)
    check(done.returncode == 0, f"{label}: stats verify failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    print(f"{label}: stats verify: {done.stdout.strip()}", flush=True)


def nik(n):
    """A NIK of its own for each n below 336 million (a person each): birth date and serial."""
    rest = n // 9999
    return f"352405{41 + rest % 28:02d}{1 + (rest // 28) % 12:02d}{(rest // 336) % 100:02d}{n % 9999 + 1:04d}"


def business(n, **overrides):
    """A valid business body; `n` makes the NIB and the name unique."""
    body = {
        "name": f"Usaha Uji {n}", "owner_name": "Siti Aminah", "owner_nik": nik(n),
        "phone": f"0812{n % 10_000_000:07d}", "nib": f"7{n:012d}", "kbli": "10792",
        "district_code": "35.24.05", "address": "Jl. Raya Babat", "annual_revenue_idr": 250_000_000,
        "employees": 3, "established_on": "2019-03-01",
    }
    body.update(overrides)
    return body


def consent(server, token, made):
    """Records the consent of the owner of business `made` (its JSON) to every partner bank."""
    reply = server.request("POST", f"/api/v1/persons/{made['owner_id']}/consents", {
        "channel": "paper_form", "evidence": f"FORM/{made['id']}", "text_version": "v1",
        "given_at": "2026-01-01T00:00:00Z"}, token)
    check(reply.status in (201, 409), f"a consent answered {reply.status}: {reply.body[:200]!r}")


def sqlite_url(directory, name="faults.sqlite3"):
    return os.path.join(directory, name)


def pg_database(name, base="postgres://postgres@127.0.0.1:5432"):
    """A fresh PostgreSQL database on the machine's cluster; returns its URL."""
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", f"{base}/postgres",
                    "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return f"{base}/{name}"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0
