"""A server under test, as its own process: ``python -m bench.serve ours|baseline ...``.

``ours`` is the real ingest role (mailpulse.runtime.serve_ingest); ``baseline`` the common receiver.
Both run under uvicorn with uvloop and httptools, pinned to one core, until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from bench.layout import pin


async def _serve(args: argparse.Namespace) -> None:
    from bench.baseline import baseline_producer, create_baseline_app
    from mailpulse.runtime import serve_asgi, serve_ingest
    from mailpulse.settings import Settings

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if args.kind == "ours":
        settings = Settings(
            kafka_bootstrap=args.bootstrap,
            status_topic=args.topic,
            deadletter_topic=f"{args.topic}.dead",
            ingest_port=args.port,
            **({"max_batch_elements": args.max_batch_elements} if args.max_batch_elements else {}),
        )
        await serve_ingest(settings, args.bootstrap, stop)
        return
    producer = baseline_producer(args.bootstrap)
    await producer.start()
    try:
        await serve_asgi(create_baseline_app(producer, args.topic), "127.0.0.1", args.port, stop)
    finally:
        await producer.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ours", "baseline"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument(
        "--max-batch-elements", type=int, help="ours: the element bound (default: the setting's)"
    )
    args = parser.parse_args(argv)
    pin(args.core)
    from mailpulse.runtime import run_async

    run_async(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
