"""Run the whole suite on this machine: ``python -m devtools.suite run``.

Starts a mailbox (a real SMTP server) and the five services as processes on
the local broker, with SQLite stores under ``var/suite``, runs the demo, and
keeps everything running until Ctrl-C (or stops right after the demo with
``--exit-after-demo``). ``scripts/run`` wraps this after starting Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

from devtools.demo import run_demo
from devtools.processes import Suite
from runtime.topics_admin import ensure_topics

# How long the demo's second incident waits unclaimed before it escalates (docs/escalation.md says so).
ESCALATE_AFTER_S = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run"], nargs="?", default="run")
    parser.add_argument("--state-dir", type=Path, default=Path("var/suite"))
    parser.add_argument(
        "--escalate-after", type=float, default=float(os.environ.get("ESCALATION_UNCLAIMED_AFTER_S", ESCALATE_AFTER_S))
    )
    parser.add_argument("--exit-after-demo", action="store_true")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument(
        "--keep-state", action="store_true",
        help="reuse the databases and mailbox of the last run (the ticket service migrates its own; the others need the same version)",
    )
    args = parser.parse_args()
    if not args.keep_state and args.state_dir.exists():
        shutil.rmtree(args.state_dir)

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    prefix = os.environ.get("KAFKA_TOPIC_PREFIX", "")
    asyncio.run(ensure_topics(bootstrap, prefix))
    suite = Suite(
        state_dir=args.state_dir.resolve(), kafka_bootstrap=bootstrap, topic_prefix=prefix,
        extra_env={"ESCALATION_UNCLAIMED_AFTER_S": str(args.escalate_after)},
    )
    print(f"starting mailbox and services (logs in {suite.state_dir / 'logs'})", flush=True)
    try:
        suite.start()
        for name in ("intake", "tickets", "routing", "escalation", "notify"):
            print(f"  {name:<10} {suite.url(name)}  (/healthz /readyz /metrics)", flush=True)
        print(f"  mailbox    smtp://127.0.0.1:{suite.smtp_port} -> {suite.mailbox_dir}", flush=True)
        if not args.no_demo:
            asyncio.run(run_demo(suite, escalate_after_s=args.escalate_after))
        if args.exit_after_demo:
            return 0
        print("\nThe suite is running. Ctrl-C stops it.", flush=True)
        signal.pause()
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - shown to the person at the terminal
        print(f"\nfailed: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping...", flush=True)
        suite.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # stop the services on SIGTERM as on Ctrl-C
    raise SystemExit(main())
