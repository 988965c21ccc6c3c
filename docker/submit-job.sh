#!/usr/bin/env bash
# The flink-job service of docker-compose.yml: submits the modelmon job (pipelines/job.py, `flink run -py`)
# to the compose Flink cluster, once, and exits. Settings come from MODELMON__* environment variables.
set -euo pipefail

python=/usr/local/bin/python3.11
rest_address="${FLINK_REST_ADDRESS:-jobmanager}"
rest_port="${FLINK_REST_PORT:-8081}"

# A second `docker compose up` starts this one-shot service again: submit only when the job is not running.
if "$python" - "http://${rest_address}:${rest_port}/jobs/overview" <<'PY'
import json
import sys
import urllib.request

from modelmon.config import load_config

name = load_config().job.name
with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    jobs = json.load(response)["jobs"]
active = {"INITIALIZING", "CREATED", "RUNNING", "RESTARTING"}
sys.exit(0 if any(job["name"] == name and job["state"] in active for job in jobs) else 1)
PY
then
  echo "the modelmon job is already running; nothing to submit"
  exit 0
fi

# Reference scores for prediction drift (PSI, KS): the simulated model's, written once (drift.reference_file).
reference="${MODELMON__DRIFT__REFERENCE_FILE:-}"
if [ -n "$reference" ] && [ ! -s "$reference" ]; then
  modelmon reference --out "$reference"
fi

# The job's Kafka sources need their topics to exist.
"$python" -c 'from modelmon.config import load_config; from modelmon.topics import ensure_topics
print("topics created:", ", ".join(ensure_topics(load_config())) or "none")'

# Detached (-d): the client returns once the job runs. A restarted job resumes from its newest checkpoint in
# paths.data_dir (/data), which the JobManager and the TaskManager write on the shared volume.
exec flink run -t remote -Drest.address="$rest_address" -Drest.port="$rest_port" -d \
  -pyclientexec "$python" -pyexec "$python" -py /opt/modelmon/pipelines/job.py
