"""Flat polling in ns-3, through the PyPI `ns3` package's cppyy bindings.

The model is C++ (ns3_model.cc, compiled by cling through cppyy.cppdef),
since Python callbacks cannot be scheduled on ns-3's simulator; this file
loads ns-3, compiles the model, runs it once and prints the JSON line.

Times: `wall_seconds` covers building the model and running it (peers::Run,
the same span as tiersync's `wall_seconds`), `cpu_seconds` the CPU time over
that span, `compile_seconds` the compiling of ns3_model.cc by cling, and
`import_seconds` the loading of ns-3 itself (`from ns import ns`, which
loads every ns-3 module and its headers).
"""

import os
import sys
import time

import common


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--scheduler", default="",
                   help="ns-3 scheduler TypeId, e.g. ns3::HeapScheduler (default: ns-3's own)")
    args = p.parse_args()
    common.check(args)

    # Loading ns-3: every module, as `from ns import ns` does.
    t_import = time.perf_counter()
    from ns import ns  # noqa: F401  (loads the libraries and headers)
    import cppyy
    import_seconds = time.perf_counter() - t_import
    rss_before = common.max_rss_kib()

    # Compiling the model with cling.
    t0 = time.perf_counter()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "ns3_model.cc"), encoding="utf-8") as f:
        cppyy.cppdef(f.read())
    peers = cppyy.gbl.peers
    t1, c1 = time.perf_counter(), time.process_time()

    # Building and running it.
    peers.Run(args.clients, args.poll, args.splay, args.duration, args.latency,
              args.poll_bytes[0], args.poll_bytes[1],
              args.reply_bytes[0], args.reply_bytes[1], args.seed, args.scheduler)
    t2, c2 = time.perf_counter(), time.process_time()

    m = peers.g_model
    polls, delivered = int(m.polls), int(m.delivered)
    common.emit(
        "ns-3", args,
        wall=t2 - t1, cpu=c2 - c1,
        # Model events, as tiersync counts them: timers and deliveries.
        events=polls + delivered, delivered=delivered,
        polls=polls, replies=int(m.replies),
        poll_bytes=int(m.poll_bytes_total), reply_bytes=int(m.reply_bytes_total),
        hourly_bytes=[int(x) for x in m.hourly_bytes], rss_before=rss_before,
        extra={
            # ns-3's own count, which includes its Stop event.
            "ns3_event_count": int(m.events),
            "ns3_scheduler": args.scheduler or "ns3::MapScheduler (default)",
            "import_seconds": import_seconds,
            "compile_seconds": t1 - t0,
            "cling_args": os.environ.get("EXTRA_CLING_ARGS", ""),
            "python": sys.version.split()[0],
        },
    )


if __name__ == "__main__":
    main()
