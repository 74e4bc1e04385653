import asyncio, os, subprocess, sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import loadgen
from bench.common import summarize
from bench.ingest import seed, wait_ready, body_factory
from leadflood.core import migrate
from tests.live import free_port
from tests.pg import recreate_database, server_url
url = recreate_database(server_url(), "leadflood_bench_ingest")
migrate.upgrade(url)
source_id = asyncio.run(seed(url))
env = {**os.environ, "LEADFLOOD_DATABASE_URL": url, "LEADFLOOD_LOG_LEVEL": "WARNING", "LEADFLOOD_ENV": "test"}
port = free_port()
server = subprocess.Popen([sys.executable, "-m", "leadflood.cli", "serve", "--port", str(port), "--no-worker", "--no-migrate"], env=env, cwd=ROOT)
try:
    wait_ready(port)
    spy = None
    if len(sys.argv) > 1:
        spy = subprocess.Popen(["/tmp/spy/bin/py-spy", "record", "-p", str(server.pid), "-o", sys.argv[1], "-d", "8", "-f", "raw", "-r", "200"])
    s, w, e = asyncio.run(loadgen.closed_loop("127.0.0.1", port, "/api/leads", body_factory(source_id), 32, 8))
    summarize("closed x32", s, w)
    if spy: spy.wait()
finally:
    server.terminate(); server.wait()
