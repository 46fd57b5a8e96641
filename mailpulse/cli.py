"""The `mailpulse` command: one subcommand per role."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from mailpulse.event_files import FORMATS
from mailpulse.redact import redact_dsn
from mailpulse.settings import Settings
from mailpulse.signals import until_signal
from schemas.times import parse_utc


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    return Settings(**overrides)


def _signed_or_allowed(settings: Settings) -> str | None:
    """Why ingest must not start with these settings (mailpulse.unsigned_ingest's rule), or None."""
    from mailpulse.runtime import ingest_config
    from mailpulse.unsigned_ingest import unsigned_refusal

    return unsigned_refusal(settings, ingest_config(settings))


def _unsigned_on_embedded(settings: Settings, command: str) -> Settings:
    """`demo` and `run` on the embedded default are local trials: they accept unsigned events, and say so.
    On a configured Kafka they follow ingest's rule."""
    from mailpulse.runtime import ingest_config
    from mailpulse.unsigned_ingest import ALLOW_UNSIGNED, unsigned_endpoints

    if settings.kafka_bootstrap or settings.allow_unsigned or not unsigned_endpoints(ingest_config(settings)):
        return settings
    print(
        f"{command} on the embedded default: {ALLOW_UNSIGNED}=true (ingest accepts unsigned webhooks; "
        "`mailpulse ingest` and a configured Kafka require signature keys)",
        flush=True,
    )
    return settings.model_copy(update={"allow_unsigned": True})


def cmd_demo(args: argparse.Namespace) -> int:
    from mailpulse.demo import DemoOptions, main

    options = DemoOptions(
        messages=args.messages,
        seed=args.seed,
        drop_rate=args.drop_rate,
        acceleration=args.acceleration,
        poller=not args.no_poller,
        dashboard=not args.no_dashboard,
    )
    settings = _unsigned_on_embedded(_settings(args), "demo")
    if refusal := _signed_or_allowed(settings):
        print(refusal, file=sys.stderr)
        return 2
    return main(settings, options)


def cmd_bench(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bench.runner import FULL, QUICK, main

    sizes = QUICK if args.quick else FULL
    overrides = {
        "events": args.events,
        "http_seconds": args.http_seconds,
        "connections": args.connections,
        "e2e_rate": args.e2e_rate,
        "e2e_seconds": args.e2e_seconds,
        "stored_events": args.stored_events,
    }
    sized = replace(sizes, **{k: v for k, v in overrides.items() if v is not None})
    return main(sized, keep=args.keep, ingest_only=args.ingest_only, json_path=args.json)


def cmd_ingest(args: argparse.Namespace) -> int:
    from mailpulse.runtime import kafka, run_async, serve_ingest

    settings = _settings(args)
    if refusal := _signed_or_allowed(settings):
        print(refusal, file=sys.stderr)
        return 2

    async def run() -> None:
        stop = await until_signal()
        async with kafka(settings, journal=True) as site:
            print(
                f"ingest on http://{settings.ingest_host}:{settings.ingest_port} -> "
                f"Kafka {redact_dsn(site.bootstrap)}"
            )
            await serve_ingest(settings, site.bootstrap, stop, journal=site.journal)

    run_async(run())
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from mailpulse.broker import free_port
    from mailpulse.runtime import api_token, dashboard_url, open_store, serve_dashboard, shown_token

    settings = _settings(args)
    token = api_token(settings)
    port = settings.dashboard_port or free_port()

    async def run() -> None:
        stop = await until_signal()
        store = open_store(settings)
        if settings.api_token is None:
            print("api_token is not set: a token for this run only (MAILPULSE_API_TOKEN keeps one)")
        else:  # the operator's token is not printed: they add it to the URL themselves
            print("the API token is MAILPULSE_API_TOKEN: open the URL below with #token=<it>")
        url = dashboard_url(settings.dashboard_host, port, shown_token(settings, token))
        print(f"dashboard on {url}", flush=True)
        await serve_dashboard(settings, store, token, port, stop)

    asyncio.run(run())
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from mailpulse.runtime import kafka, open_store, processor, run_async, serve_health

    settings = _settings(args)

    async def run() -> None:
        stop = await until_signal()
        store = open_store(settings)
        async with (
            kafka(settings) as site,
            processor(settings, site.bootstrap, store, site.incarnation) as proc,
        ):
            print(
                f"processing {settings.status_topic} from {redact_dsn(site.bootstrap)} into "
                f"{redact_dsn(settings.clickhouse_dsn())}"
            )
            health = asyncio.create_task(serve_health(proc, settings, stop))
            await proc.run(stop)  # on SIGTERM: finish the batch, flush, load, commit
            await health

    run_async(run())
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from mailpulse.runtime import kafka

    settings = _settings(args).model_copy(update={"kafka_bootstrap": None})

    async def run() -> None:
        stop = await until_signal()
        async with kafka(settings) as site:
            shown = redact_dsn(site.bootstrap)
            print(f"embedded Kafka (Tansu) on {shown}; export MAILPULSE_KAFKA_BOOTSTRAP={shown}")
            print("memory only: what it holds is gone when it stops (development; see docs/durability.md)")
            await stop.wait()

    asyncio.run(run())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from mailpulse.runtime import open_store

    settings = _settings(args)
    applied = open_store(settings).applied_migrations()
    print(
        f"schema at version {max(applied)} ({len(applied)} migrations recorded in"
        f" {settings.clickhouse_database}.schema_migrations) in {redact_dsn(settings.clickhouse_dsn())}"
    )
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from mailpulse.runtime import open_store
    from mailpulse.sqltext import own_format

    store = open_store(_settings(args))
    if own_format(args.query):
        # ClickHouse formats it as asked; the bytes go out untouched.
        sys.stdout.flush()
        sys.stdout.buffer.write(store.client.raw_query(args.query))
        sys.stdout.buffer.flush()
        return 0
    result = store.client.query(args.query)
    print("\t".join(result.column_names))
    for row in result.result_rows:
        print("\t".join("" if v is None else str(v) for v in row))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mailpulse.config_doc import settings_table, update_table

    if args.write_docs:
        changed = update_table(Path("docs/configuration.md"))
        print("docs/configuration.md updated" if changed else "docs/configuration.md already up to date")
    else:
        print(settings_table())
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from mailpulse.kafka_ops import describe_topics
    from mailpulse.runtime import kafka

    settings = _settings(args)
    if not settings.kafka_bootstrap:
        print("set MAILPULSE_KAFKA_BOOTSTRAP (an embedded broker would vanish with this command)")
        return 2

    async def run() -> None:
        async with kafka(settings) as site:  # creates missing topics
            for topic, ends in (await describe_topics(site.bootstrap, settings.topics)).items():
                print(f"{topic}: {len(ends)} partitions, {sum(ends.values())} records, end offsets {ends}")

    asyncio.run(run())
    return 0


def utc_time(text: str) -> datetime:
    """``--since``: ISO 8601, UTC when no offset is given (never the machine's zone)."""
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_rewind(args: argparse.Namespace) -> int:
    from mailpulse.kafka_ops import rewind_group
    from mailpulse.runtime import kafka

    settings = _settings(args)
    if not settings.kafka_bootstrap:
        print("set MAILPULSE_KAFKA_BOOTSTRAP: rewind moves the processors' group on a real Kafka")
        return 2
    since: datetime | None = args.since

    async def run() -> None:
        async with kafka(settings) as site:
            moved = await rewind_group(settings, site.bootstrap, since)
            print(
                f"group {settings.consumer_group} now starts at {moved}; start `mailpulse process` to replay"
            )

    asyncio.run(run())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from mailpulse.file_commands import replay

    return replay(_settings(args), Path(args.file), args.format, args.process)


def cmd_dump(args: argparse.Namespace) -> int:
    from mailpulse.file_commands import dump

    return dump(_settings(args), Path(args.file), args.since)


def cmd_run(args: argparse.Namespace) -> int:
    from mailpulse.broker import free_port
    from mailpulse.runtime import (
        alerts_runner,
        api_token,
        dashboard_url,
        kafka,
        open_store,
        poller,
        processor,
        run_async,
        serve_dashboard,
        serve_ingest,
        shown_token,
    )

    settings = _unsigned_on_embedded(_settings(args), "run")
    if refusal := _signed_or_allowed(settings):
        print(refusal, file=sys.stderr)
        return 2
    token = api_token(settings)
    port = settings.dashboard_port or free_port()
    ingest_port = settings.ingest_port or free_port()

    async def run() -> None:
        stop = await until_signal()
        store = open_store(settings)
        async with (
            kafka(settings, journal=True) as site,
            processor(settings, site.bootstrap, store, site.incarnation) as proc,
            alerts_runner(settings, site.bootstrap, store) as alerts,
        ):
            bootstrap = site.bootstrap
            print(
                f"ingest on http://{settings.ingest_host}:{ingest_port}; Kafka {redact_dsn(bootstrap)}; "
                f"ClickHouse {redact_dsn(settings.clickhouse_dsn())}; "
                f"alerts every {settings.alerts_interval_s:g}s; "
                f"dashboard {dashboard_url(settings.dashboard_host, port, shown_token(settings, token))}; "
                "Ctrl-C stops",
                flush=True,
            )
            roles = [
                serve_ingest(settings, bootstrap, stop, ingest_port, site.journal),
                proc.run(stop),
                alerts.run(stop),
                serve_dashboard(settings, store, token, port, stop),
            ]
            if settings.email_api_key_sid:  # the poller needs Email API credentials
                async with poller(settings, bootstrap, journal=site.journal) as poll:
                    await asyncio.gather(*roles, poll.run(stop))
            else:
                await asyncio.gather(*roles)

    run_async(run())
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from mailpulse.runtime import kafka, poller, serve_poll_metrics

    settings = _settings(args)

    async def run() -> int:
        stop = await until_signal()
        async with (
            kafka(settings, journal=True) as site,
            poller(settings, site.bootstrap, journal=site.journal) as poll,
        ):
            print(
                f"polling {redact_dsn(settings.email_api_base_url)} -> Kafka {redact_dsn(site.bootstrap)}; "
                f"checkpoint {settings.poll_checkpoint_path}"
            )
            if args.once:
                return 0 if await poll.cycle_safely() else 1
            metrics = asyncio.create_task(serve_poll_metrics(settings, stop))
            await poll.run(stop)
            await metrics
        return 0

    return asyncio.run(run())


def cmd_alerts(args: argparse.Namespace) -> int:
    from mailpulse.runtime import alerts_runner, kafka, open_store, serve_alerts_health
    from schemas.alert_rules import RulesError, load_rules

    settings = _settings(args)
    try:
        rules = load_rules(settings.alerts_rules_file)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check:
        for rule in rules:
            print(rule.model_dump_json())
        return 0

    async def run() -> None:
        stop = await until_signal()
        store = open_store(settings)
        async with kafka(settings) as site, alerts_runner(settings, site.bootstrap, store) as runner:
            webhook = "a webhook" if settings.alerts_webhook_url else "no webhook"
            print(
                f"alerting on {len(rules)} rules every {settings.alerts_interval_s:g}s -> "
                f"{settings.alerts_topic} on {redact_dsn(site.bootstrap)}, {webhook}, "
                f"table {store.database}.alerts"
            )
            health = asyncio.create_task(serve_alerts_health(runner, settings, stop))
            await runner.run(stop)  # SIGTERM ends the wait between evaluations at once
            await health

    asyncio.run(run())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from analytics.report import report
    from analytics.service import AnalyticsService
    from mailpulse.runtime import open_store
    from schemas.alert_rules import load_rules

    settings = _settings(args)
    store = open_store(settings)
    service = AnalyticsService(store.client, store.database, load_rules(settings.alerts_rules_file))
    names = ("from", "to", "provider", "sender_domain", "recipient_domain", "mailbox_provider", "tag")
    params = {name: [value] for name in names if (value := getattr(args, f"r_{name}")) is not None}
    return report(service, params, datetime.now(UTC), args.top, args.min_volume, args.json)


def cmd_simulate(args: argparse.Namespace) -> int:
    from mailpulse.simulate import simulate

    return simulate(args, _settings(args), until_signal)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailpulse",
        description="Email delivery-status pipeline: webhooks -> Kafka -> processors -> ClickHouse. "
        "Settings come from MAILPULSE_* environment variables or .env; options below override them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: object, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--data-dir", dest="data_dir", help="local state directory (default .mailpulse)")
        p.add_argument("--clickhouse-url", dest="clickhouse_url", help="http(s):// or chdb:/// DSN")
        p.add_argument("--kafka-bootstrap", dest="kafka_bootstrap", help="Kafka servers (default: embedded)")
        return p

    demo = add(
        "demo",
        cmd_demo,
        "run the whole pipeline on embedded Kafka and ClickHouse, fed by the Email API simulator "
        "(webhooks with a share dropped, and the poller), and check it against the simulator's truth",
    )
    demo.add_argument("--messages", type=int, default=10_000, help="emails to send (default 10000)")
    demo.add_argument("--seed", type=int, default=None, help="traffic seed (default: random, printed)")
    demo.add_argument("--port", dest="ingest_port", type=int, default=0, help="ingest port (default: free)")
    demo.add_argument("--drop-rate", type=float, default=0.3, help="share of webhooks dropped (default 0.3)")
    demo.add_argument(
        "--acceleration", type=float, default=2000.0, help="API time per real time (default 2000)"
    )
    demo.add_argument("--no-poller", action="store_true", help="webhooks only (shows what they miss)")
    demo.add_argument(
        "--no-dashboard", action="store_true", help="exit after the checks instead of serving the dashboard"
    )
    bench = sub.add_parser(
        "bench",
        help="measure ingest, the processor and end-to-end latency against their ceilings",
        description="Starts its own embedded broker and chDB under a temp dir; prints one table. "
        "Pins the server under test and the load generator to separate cores.",
    )
    bench.set_defaults(func=cmd_bench)
    bench.add_argument("--quick", action="store_true", help="small sizes (under a minute), for a smoke test")
    bench.add_argument("--events", type=int, help="events for the producer, ceiling and processor runs")
    bench.add_argument("--http-seconds", type=float, help="measured seconds of each HTTP run")
    bench.add_argument("--connections", type=int, help="load generator connections (default 16)")
    bench.add_argument("--e2e-rate", type=float, help="events/s offered in the end-to-end run")
    bench.add_argument("--e2e-seconds", type=float, help="seconds of the end-to-end run")
    bench.add_argument(
        "--stored-events", type=int, help="events stored before the restarted processor drains (default 10M)"
    )
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE (JSON)")
    bench.add_argument("--keep", action="store_true", help="keep the work directory (logs, specs)")
    bench.add_argument(
        "--ingest-only",
        action="store_true",
        help="measurements 1-3 only (producer ceiling, ingest and baseline)",
    )
    poll = add("poll", cmd_poll, "poll the Email API and publish the transitions webhooks missed")
    poll.add_argument("--base-url", dest="email_api_base_url", help="Email API base URL")
    poll.add_argument("--once", action="store_true", help="run one cycle and exit (1 if it failed)")
    simulate = add("simulate", cmd_simulate, "run the Email API simulator (and its webhooks) on loopback")
    from mailpulse.simulate import add_arguments

    add_arguments(simulate)
    ingest = add("ingest", cmd_ingest, "serve the webhook endpoints and publish to Kafka")
    ingest.add_argument("--host", dest="ingest_host", help="bind address (default 127.0.0.1)")
    ingest.add_argument("--port", dest="ingest_port", type=int, help="port (default 8080)")
    add("process", cmd_process, "consume status events and load them into ClickHouse, which merges them")
    dashboard = add("dashboard", cmd_dashboard, "serve the /dashboard page and its /api (bearer token)")
    dashboard.add_argument("--host", dest="dashboard_host", help="bind address (default 127.0.0.1)")
    dashboard.add_argument("--port", dest="dashboard_port", type=int, help="port (default 8090)")
    add("broker", cmd_broker, "run the embedded Kafka broker (Tansu) with mailpulse's topics")
    add("migrate", cmd_migrate, "create or update the ClickHouse schema")
    sql = add("sql", cmd_sql, "run a SQL query against mailpulse's ClickHouse (views: events, messages)")
    sql.add_argument(
        "query",
        help='for example "SELECT status, count() FROM mailpulse.messages GROUP BY status" (printed as '
        "TSV with a header, unless the query ends in its own FORMAT clause: then as ClickHouse formats it)",
    )
    alerts = add("alerts", cmd_alerts, "evaluate the alert rules on the rollup and notify on firing/resolve")
    alerts.add_argument("--rules", dest="alerts_rules_file", help="TOML rules file (default: built-in rules)")
    alerts.add_argument("--check", action="store_true", help="validate the rules, print them and exit")
    rep = add("report", cmd_report, "print deliverability figures for a time range (default: last 24 h)")
    for name in ("from", "to", "provider", "sender_domain", "recipient_domain", "mailbox_provider", "tag"):
        flag = "--" + name.replace("_", "-")
        rep.add_argument(
            flag,
            dest=f"r_{name}",
            help="ISO-8601 time (UTC if no offset)"
            if name in ("from", "to")
            else ("key=value" if name == "tag" else f"only mail of this {name.replace('_', ' ')}"),
        )
    rep.add_argument("--top", type=int, default=10, help="worst recipient domains shown (default 10)")
    rep.add_argument(
        "--min-volume", type=int, default=1, help="messages with an outcome a domain needs (default 1)"
    )
    rep.add_argument(
        "--json", action="store_true", help="print the figures as JSON (exact values; docs/figures.md)"
    )
    add(
        "run",
        cmd_run,
        "run every role in one process on the embedded defaults: ingest, processor, alerts, dashboard "
        "(and the poller when an Email API key is set)",
    )
    add("topics", cmd_topics, "create mailpulse's topics if missing and describe them")
    rewind = add("rewind", cmd_rewind, "rewind the processors' consumer group to reprocess the topic")
    rewind.add_argument(
        "--since", type=utc_time, help="ISO time to rewind to, UTC if no offset (default: the topic's start)"
    )
    replay = add(
        "replay",
        cmd_replay,
        "load a SendGrid event export (CSV or JSON lines) or a mailpulse dump through the pipeline "
        "(idempotent: a second run changes nothing)",
    )
    replay.add_argument("file", help="the export or dump")
    replay.add_argument("--format", choices=FORMATS, default="auto", help="default: by extension/content")
    replay.add_argument(
        "--process",
        action="store_true",
        help="also run a processor until the replayed events are loaded (embedded setups)",
    )
    dump = add("dump", cmd_dump, "write stored events as mailpulse envelopes (JSON lines) for `replay`")
    dump.add_argument("file", help="output file")
    dump.add_argument(
        "--since", type=utc_time, help="only events at or after this ISO time (UTC if no offset)"
    )
    config_help = "print the settings reference: every MAILPULSE_* variable, its default and meaning"
    config = sub.add_parser("config", help=config_help, description=config_help)
    config.set_defaults(func=cmd_config)
    config.add_argument("--write-docs", action="store_true", help="regenerate docs/configuration.md's table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mailpulse.logs import configure

    # The log format is read before settings, so that a settings error is logged as configured too.
    configure(
        logging.INFO if args.verbose else logging.WARNING, os.environ.get("MAILPULSE_LOG_FORMAT", "text")
    )
    with contextlib.suppress(BrokenPipeError):
        return int(args.func(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
