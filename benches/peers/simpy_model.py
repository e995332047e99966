"""Flat polling in SimPy: N clients poll one server every P over a link
with a fixed one-way latency, for D of simulated time.

One SimPy process per client, in integer nanoseconds. Each poll is three
timeouts, the same three events tiersync processes for it: the poll timer
at the client, the poll's arrival at the server (which replies), and the
reply's arrival at the client. The client's k-th poll is sent at
offset + k*P exactly, as tiersync's client re-arms its poll timer P after
each poll; the model needs 2 x latency < P, which common.check enforces.

Counting, the same in the three models (README.md, "Counts"): a poll is
counted when the client sends it, a reply when the server sends it, each
with its wire bytes, into the hour in which it is sent. Nothing is sent
at or after D.
"""

import random
import sys
import time

import simpy

import common


class Meter:
    """Counters and hourly byte buckets."""

    def __init__(self, hours):
        self.polls = 0
        self.replies = 0
        self.delivered = 0
        self.poll_bytes = 0
        self.reply_bytes = 0
        self.hourly = [0] * hours


def client(env, m, offset, poll, lat, poll_size, reply_size):
    """One client: poll, wait for the reply, wait for the next poll."""
    rest = poll - 2 * lat
    hour = common.HOUR_NS
    hourly = m.hourly
    have = 0
    yield env.timeout(offset)
    while True:
        # The client sends its poll.
        m.polls += 1
        b = poll_size[have]
        m.poll_bytes += b
        hourly[env.now // hour] += b
        asked = have
        yield env.timeout(lat)

        # The server receives it and replies: the full policy to a client
        # that holds nothing, an empty update to one that is up to date.
        m.delivered += 1
        m.replies += 1
        b = reply_size[asked]
        m.reply_bytes += b
        hourly[env.now // hour] += b
        yield env.timeout(lat)

        # The client receives the reply.
        m.delivered += 1
        have = 1
        yield env.timeout(rest)


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.check(args)
    t0, c0 = time.perf_counter(), time.process_time()
    rss_before = common.max_rss_kib()
    rng = random.Random(args.seed)
    hours = -(-args.duration // common.HOUR_NS)
    m = Meter(hours)
    env = simpy.Environment()
    for _ in range(args.clients):
        offset = rng.randrange(args.splay)
        env.process(client(env, m, offset, args.poll, args.latency,
                           args.poll_bytes, args.reply_bytes))

    # Run until D: events at D or later do not run.
    env.run(until=args.duration)
    t2, c2 = time.perf_counter(), time.process_time()
    common.emit(
        "simpy", args,
        wall=t2 - t0, cpu=c2 - c0,
        # Model events, as tiersync counts them: timers and deliveries.
        events=m.polls + m.delivered, delivered=m.delivered,
        polls=m.polls, replies=m.replies,
        poll_bytes=m.poll_bytes, reply_bytes=m.reply_bytes,
        hourly_bytes=m.hourly, rss_before=rss_before,
        extra={"simpy_version": simpy.__version__,
               "python": sys.version.split()[0]},
    )


if __name__ == "__main__":
    main()
