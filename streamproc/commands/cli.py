"""The ``streamproc`` command.

Each subcommand's parser is defined here, so ``streamproc --help`` is the one place that
explains the tool; the work is done by ``main(args)`` in the module each one names.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from .. import __version__
from ..errors import StreamprocError

EPILOG = """\
first steps:
  streamproc run --demo            embedded broker + sample streams -> alerts in a minute
  streamproc check-config -c FILE  validate a config and show what it will do
  streamproc replay --input auth-logs=auth.jsonl --alerts-out alerts.jsonl
                                   run the detectors over files, offline

docs: README.md; every subcommand has --help.
"""


def _common_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=os.environ.get("STREAMPROC_CONFIG"),
        help="YAML config (default: $STREAMPROC_CONFIG, else built-in defaults: "
        "the six default topics on the embedded broker)",
    )


def _logging(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        default=os.environ.get("STREAMPROC_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (INFO)",
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="human-readable text (default) or one JSON object per line",
    )


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="consume Kafka/MQTT, detect, and deliver alerts (the main job)",
        description="Attach to the configured Kafka topics and MQTT brokers, decode and "
        "validate every record, run the detectors, append alerts to the durable "
        "alert log and deliver them through Apprise. With no broker configured it "
        "starts the embedded Tansu broker on a free loopback port.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_config(p)
    p.add_argument(
        "--demo",
        action="store_true",
        help="feed the sample streams from topics/ into the embedded broker, so "
        "alerts appear within a minute; each demo starts from a fresh state "
        "of its own (a temporary folder, removed at exit)",
    )
    p.add_argument(
        "--alerts-file",
        metavar="FILE",
        default="streamproc-alerts.jsonl",
        help="where the embedded default also writes alerts, one JSON per line "
        "(default: ./streamproc-alerts.jsonl)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes in one Kafka consumer group (default: the number of cores "
        "with a configured Kafka; 1 for the embedded broker and MQTT-only)",
    )
    p.add_argument(
        "--kafka-bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="override kafka.bootstrap_servers of the config",
    )
    p.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--embedded-console", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="serve HTTP here: /metrics, /healthz, /readyz, the Alertmanager API "
        "(/api/v2/alerts, /api/v2/silences...) and mounted APIs; HOST defaults "
        "to 127.0.0.1 (this machine only; 0.0.0.0 for every interface, e.g. "
        "in a container). Token, TLS and body limit: the api: section of the "
        "config. With --workers N, worker i listens on PORT+i",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="the same as --listen METRICS_HOST:PORT (kept for older scripts)",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="the host of --metrics-port (default 127.0.0.1)",
    )
    p.add_argument(
        "--watch-config",
        action="store_true",
        help="reload the config when the file changes (as SIGHUP does)",
    )
    p.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="pause consumption while the process uses more memory than this "
        "(e.g. 512M, 2G); records wait in the broker, none are dropped",
    )
    p.add_argument(
        "--max-events",
        type=int,
        default=None,
        metavar="N",
        help="stop once N records are judged, their copies on repartition "
        "topics too (tests and demos)",
    )
    p.add_argument(
        "--exit-when-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop once no record has arrived for this long (demos, batch jobs)",
    )
    _logging(p)
    p.set_defaults(handler="streamproc.commands.run:main")


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="run the detectors over JSONL files offline (tune rules, test)",
        description="Read JSONL files bound to topic names, merge them in event-time order, "
        "run the configured detectors and write one JSON alert per line. The same "
        "input always gives the same alerts, fingerprints included.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  streamproc replay --input auth-logs=auth.jsonl "
        "--input api-access-logs=access.log --alerts-out alerts.jsonl",
    )
    _common_config(p)
    p.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="TOPIC=FILE",
        help="a file of records for a topic (repeatable); the topic picks the "
        "binding, so the default topic names need no config",
    )
    p.add_argument(
        "--alerts-out",
        required=True,
        metavar="FILE",
        help="write alerts here, one JSON object per line ('-' for stdout)",
    )
    p.add_argument(
        "--dead-letters-out",
        metavar="FILE",
        default=None,
        help="write dead letters here (default: <alerts-out>.deadletters.jsonl)",
    )
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="PATH",
        help="rule files or folders to run as well as the config's (repeatable; docs/rules.md)",
    )
    p.add_argument(
        "--sigma",
        action="append",
        default=[],
        metavar="PATH",
        help="Sigma rule files or folders to run as well (repeatable)",
    )
    _logging(p)
    p.set_defaults(handler="streamproc.commands.replay:main")


def _add_produce(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "produce",
        help="generate realistic event traffic with known incidents",
        description="Generate Zipf-distributed, diurnal traffic for one or all families with a "
        "known number of injected incidents, to Kafka, MQTT or JSONL files.",
    )
    _common_config(p)
    p.add_argument(
        "--scenario",
        default="mixed",
        help="mixed, auth, api, hosts, cicd, tickets, business (default mixed)",
    )
    p.add_argument("--events", type=int, default=100_000, metavar="N")
    p.add_argument(
        "--rate",
        type=float,
        default=0,
        metavar="R",
        help="events per second (0: as fast as possible)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--to",
        default="kafka",
        choices=["kafka", "mqtt", "files"],
        help="where to send (kafka: the configured or --bootstrap broker)",
    )
    p.add_argument("--bootstrap", metavar="HOST:PORT", default=None)
    p.add_argument("--out-dir", metavar="DIR", default=".", help="for --to files")
    _logging(p)
    p.set_defaults(handler="streamproc.commands.produce:main")


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="measure throughput, latency and memory on this machine",
        description="Run benchmark scenarios; each reports the median of --runs runs and its "
        "ratio to a baseline measured in the same invocation.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=(
            "detect, mapped, state, notify, mqtt, kafka, workers, peers, unkeyed, startup, "
            "ingest (default: all)"
        ),
    )
    p.add_argument(
        "--events", type=int, default=None, metavar="N", help="events a run (each its default)"
    )
    p.add_argument(
        "--runs", type=int, default=3, metavar="R", help="runs a scenario; the median is reported"
    )
    p.add_argument(
        "--out",
        default="bench-out",
        metavar="DIR",
        help="where results.json and the chart results.png go (bench-out)",
    )
    p.add_argument(
        "--sigma",
        default=None,
        metavar="DIR",
        help="detect: also time the Sigma rules of DIR (bench/sigma holds 100) "
        "against the built-in api-access-logs detectors",
    )
    _logging(p)
    p.set_defaults(handler="streamproc.bench.harness:main")


def _add_agent(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "agent",
        help="publish this host's metrics (psutil) to MQTT or Kafka",
        description="The edge host agent: every --interval seconds publish the host-metrics "
        "contract to MQTT (QoS 1, with a Last Will so host_silent fires at once "
        "when the agent dies) or to Kafka.",
    )
    _common_config(p)
    p.add_argument("--interval", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--to", default="mqtt", choices=["mqtt", "kafka"])
    p.add_argument("--host-name", default=None, help="reported host name (default: hostname)")
    p.add_argument("--count", type=int, default=None, help="stop after N samples")
    _logging(p)
    p.set_defaults(handler="streamproc.commands.agent:main")


def _add_check_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a config and print what it will do",
        description="Validate the config and its Apprise configuration; print the topic "
        "bindings, detectors with thresholds, and routes. Exit 1 with "
        "'file:line: what is wrong, how to fix it' on error.",
    )
    _common_config(p)
    _logging(p)
    p.set_defaults(handler="streamproc.commands.check_config:main")


def _add_silence(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "silence",
        help="add, list or expire notification silences",
        description="Silences mute matching alerts until they expire. With "
        "Kafka in the config they are kept in the topic "
        "<application_id>.silences, which every worker reads; "
        "else in the state directory. They survive restarts.",
    )
    _common_config(p)
    ssub = p.add_subparsers(dest="silence_cmd", required=True, metavar="ACTION")
    add = ssub.add_parser("add", help="add a silence")
    add.add_argument(
        "matchers",
        nargs="+",
        metavar="LABEL=VALUE",
        help="label matchers, e.g. kind=brute_force username=svc-backup; LABEL=~REGEX for a regex",
    )
    add.add_argument("--duration", default="1h", help="e.g. 30m, 2h, 1d (default 1h)")
    add.add_argument("--comment", default="", help="why (shown in list)")
    add.add_argument("--author", default=os.environ.get("USER", ""))
    ssub.add_parser("list", help="list active silences")
    query = ssub.add_parser(
        "query",
        help="list silences as amtool does (-o json: Alertmanager's JSON)",
        description="List silences, read from where they live (the deployment's silences "
        "topic with Kafka, else the state directory), as `amtool silence query` "
        "shows them; the same silences the Alertmanager API serves.",
    )
    query.add_argument(
        "matchers",
        nargs="*",
        metavar="MATCHER",
        help="only silences with these matchers, e.g. alertname=brute_force",
    )
    query.add_argument("-o", "--output", choices=["simple", "json"], default="simple")
    query.add_argument(
        "-e",
        "--expired",
        action="store_true",
        help="show expired silences instead of active and pending ones",
    )
    exp = ssub.add_parser("expire", help="expire a silence now")
    exp.add_argument("silence_id")
    p.set_defaults(handler="streamproc.notify.silences:main")


def _add_rules(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rules",
        help="check rule files and Sigma rules",
        description="Rule files and Sigma rules (docs/rules.md).",
    )
    _common_config(p)
    rsub = p.add_subparsers(dest="rules_cmd", required=True, metavar="ACTION")
    chk = rsub.add_parser(
        "check",
        help="list which rules load and which do not, and why",
        description="Load every rule of PATH (files or folders; a file with "
        "detection: or correlation: is Sigma) and list each "
        "one that loads, and each one that does not with its "
        "file, rule and what. Exit 1 if any does not.",
    )
    chk.add_argument("paths", nargs="+", metavar="PATH")
    _common_config(chk)
    p.set_defaults(handler="streamproc.rules.check:main")


def _add_alert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "alert",
        help="query the active alerts of a running streamproc",
        description="Ask the Alertmanager API of a running `streamproc run "
        "--listen` which alerts are active, as `amtool alert "
        "query` does (amtool works against it too).",
    )
    asub = p.add_subparsers(dest="alert_cmd", required=True, metavar="ACTION")
    query = asub.add_parser(
        "query",
        help="list active alerts",
        description="List the active alerts of a running streamproc through its API (the "
        "process holds them; with Kafka every worker of the deployment lists "
        "them all). Without -a/-s/-i: active alerts that no silence or inhibition "
        "mutes, as amtool shows.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  streamproc alert query\n"
        '  streamproc alert query alertname=brute_force severity=~"high|critical"\n'
        "  streamproc alert query -s -o json --url https://streamproc-1:9108",
    )
    query.add_argument(
        "matchers",
        nargs="*",
        metavar="MATCHER",
        help='Alertmanager matchers: name=value, name!=value, name=~"regex", '
        "name!~regex; labels: alertname (the kind), severity, the key "
        "fields, binding, family",
    )
    query.add_argument("-o", "--output", choices=["simple", "json"], default="simple")
    query.add_argument("-a", "--active", action="store_true", help="show active alerts")
    query.add_argument("-s", "--silenced", action="store_true", help="show silenced alerts")
    query.add_argument("-i", "--inhibited", action="store_true", help="show inhibited alerts")
    query.add_argument(
        "--url",
        default=os.environ.get("STREAMPROC_API_URL", "http://127.0.0.1:9108"),
        help="the listener of `streamproc run --listen` (default: "
        "$STREAMPROC_API_URL, else http://127.0.0.1:9108)",
    )
    query.add_argument(
        "--token",
        default=None,
        help="the api.token of that process (default: $STREAMPROC_API_TOKEN; "
        "prefer the variable: arguments show in ps)",
    )
    query.add_argument(
        "--cafile",
        default=None,
        metavar="FILE",
        help="CA certificate that signed the listener's (https URLs)",
    )
    p.set_defaults(handler="streamproc.http.query:main")


COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_run,
    _add_replay,
    _add_produce,
    _add_bench,
    _add_agent,
    _add_check_config,
    _add_silence,
    _add_alert,
    _add_rules,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamproc",
        description="Stream-native alerting: Kafka and MQTT in, event-time "
        "detectors, Apprise notifications out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamproc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    module_name, _, func = args.handler.partition(":")
    try:
        handler = getattr(importlib.import_module(module_name), func)
        return int(handler(args) or 0)
    except StreamprocError as exc:
        print(f"streamproc {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # a port already in use, a folder that cannot be created: say which, without a trace
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"streamproc {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
