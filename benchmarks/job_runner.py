"""Child process of the benchmark: runs one bounded job (the full modelmon job or the passthrough baseline)
on a fresh local minicluster and prints, as its last stdout line, JSON with the job's net runtime."""

from __future__ import annotations

import argparse
import json
import sys

from modelmon.pipelines.job import create_table_env, execute

from modelmon.config import load_config
from modelmon.logs import configure_logging
from modelmon.render import render_job, render_passthrough_job


def run(config_file: str, kind: str) -> dict[str, float]:
    cfg = load_config(config_file)
    job = (
        render_job(cfg, bounded=True, reveal_secrets=True)
        if kind == "full"
        else render_passthrough_job(cfg, reveal_secrets=True)
    )
    result = execute(create_table_env(cfg, job), job)
    result.wait()
    # From the job's start to its end on the cluster: no JVM start-up, no planning.
    execution = result.get_job_client().get_job_execution_result().result()
    return {"net_runtime_s": execution.get_net_runtime() / 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--kind", choices=("full", "passthrough"), required=True)
    args = parser.parse_args(argv)
    configure_logging(20)
    print(json.dumps(run(args.config, args.kind)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
