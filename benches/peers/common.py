"""What the three models share: units, arguments and the JSON line.

Every duration is held as an integer number of nanoseconds, the unit of
tiersync's clock and of ns-3's default time resolution, so that the three
models draw, add and compare times without floating-point rounding.
"""

import argparse
import json
import re
import resource

NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
      "min": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
      "w": 7 * 86400 * 10**9}

HOUR_NS = NS["h"]


def duration_ns(text):
    """Parses `1h`, `30m`, `7d`, `1h30m`, `50ms` into nanoseconds.

    Only whole numbers with a unit, as run.sh passes them; anything else is
    an error rather than a guess.
    """
    parts = re.findall(r"(\d+)(ns|us|ms|min|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: write e.g. 1h, 30m, 7d")
    return sum(int(n) * NS[u] for n, u in parts)


def sizes(text):
    """Parses `FIRST,NEXT` byte sizes (see README.md, "Bytes")."""
    try:
        first, nxt = (int(x) for x in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"invalid sizes {text!r}: write FIRST,NEXT") from e
    return first, nxt


def parser(description):
    """The command line every peer model takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--clients", type=int, required=True, help="N, number of clients")
    p.add_argument("--poll", type=duration_ns, required=True, help="P, poll interval")
    p.add_argument("--splay", type=duration_ns, required=True,
                   help="bound of the uniform offset of each client's first poll")
    p.add_argument("--duration", type=duration_ns, required=True, help="D, simulated time")
    p.add_argument("--latency", type=duration_ns, required=True, help="one-way link latency")
    p.add_argument("--poll-bytes", type=sizes, required=True,
                   help="wire bytes of a poll: FIRST (client holds nothing),NEXT")
    p.add_argument("--reply-bytes", type=sizes, required=True,
                   help="wire bytes of a reply: FIRST (full policy),NEXT (nothing changed)")
    p.add_argument("--seed", type=int, default=1)
    return p


def check(args):
    """The model's one assumption: an exchange ends before the next poll."""
    if 2 * args.latency >= args.poll:
        raise SystemExit("the round trip (2 x latency) must be shorter than the poll interval")
    if args.splay > args.poll or args.splay <= 0:
        raise SystemExit("splay must be in (0, poll]")


def max_rss_kib():
    """Peak resident memory of this process so far, KiB (Linux ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(tool, args, *, wall, cpu, events, delivered, polls, replies,
         poll_bytes, reply_bytes, hourly_bytes, rss_before, extra=None):
    """Prints the one JSON line run.sh reads.

    `wall` is the seconds spent building the model and running it, the span
    tiersync's own `wall_seconds` covers, and `cpu` the CPU seconds of the
    process over the same span; interpreter start, imports and compiling are
    outside both (run.sh also times the whole process).
    """
    hours = args.duration / HOUR_NS
    total = poll_bytes + reply_bytes
    line = {
        "tool": tool,
        "clients": args.clients,
        "poll_seconds": args.poll / 1e9,
        "duration_seconds": args.duration / 1e9,
        "latency_seconds": args.latency / 1e9,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "events": events,
        "delivered_messages": delivered,
        "polls": polls,
        "replies": replies,
        "poll_bytes": poll_bytes,
        "reply_bytes": reply_bytes,
        "bytes": total,
        "bytes_per_hour": total / hours,
        "peak_hour_bytes": max(hourly_bytes) if hourly_bytes else 0,
        "rss_before_model_kib": rss_before,
        "max_rss_kib": max_rss_kib(),
    }
    if extra:
        line.update(extra)
    print(json.dumps(line), flush=True)
