// Flat polling in ns-3: N clients poll one server every P over a link with
// a fixed one-way latency, for D of simulated time.
//
// Compiled at run time by cppyy (cling) from ns3_model.py, against the
// headers and libraries of the PyPI `ns3` package. Python callbacks cannot
// be scheduled on ns-3's simulator, so the whole model is C++: the events
// are free functions scheduled with ns3::Simulator::Schedule, and Python
// only calls peers::Run once and reads the counters back.
//
// Each poll is three events, the same three tiersync processes for it: the
// poll timer at the client (which also schedules the next poll, P later),
// the poll's arrival at the server (which replies), and the reply's
// arrival at the client. Counting follows README.md, "Counts": a poll is
// counted when the client sends it, a reply when the server sends it, each
// with its wire bytes, into the hour in which it is sent.

#include "ns3/nstime.h"
#include "ns3/object-factory.h"
#include "ns3/random-variable-stream.h"
#include "ns3/rng-seed-manager.h"
#include "ns3/simulator.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace peers
{

/// The model's settings (nanoseconds, bytes) and its counters.
struct Model
{
    int64_t poll_ns = 0;
    int64_t latency_ns = 0;
    uint64_t poll_bytes[2] = {0, 0};  // [client holds nothing, up to date]
    uint64_t reply_bytes[2] = {0, 0}; // [full policy, nothing changed]

    /// Per client: 1 once it has applied a reply.
    std::vector<uint8_t> have;

    uint64_t polls = 0;
    uint64_t replies = 0;
    uint64_t delivered = 0;
    uint64_t poll_bytes_total = 0;
    uint64_t reply_bytes_total = 0;
    uint64_t events = 0;
    std::vector<uint64_t> hourly_bytes;
};

static Model g_model;

static const int64_t kHourNs = 3600LL * 1000000000LL;

static void
CountBytes(uint64_t bytes)
{
    int64_t hour = ns3::Simulator::Now().GetNanoSeconds() / kHourNs;
    g_model.hourly_bytes[static_cast<size_t>(hour)] += bytes;
}

static void ClientReceive(uint32_t client);
static void ServerReceive(uint32_t client, uint8_t asked);

/// The client's poll timer: send a poll, arm the next one.
static void
ClientPoll(uint32_t client)
{
    Model& m = g_model;
    uint8_t have = m.have[client];
    m.polls += 1;
    m.poll_bytes_total += m.poll_bytes[have];
    CountBytes(m.poll_bytes[have]);
    ns3::Simulator::Schedule(ns3::NanoSeconds(m.poll_ns), &ClientPoll, client);
    ns3::Simulator::Schedule(ns3::NanoSeconds(m.latency_ns), &ServerReceive, client, have);
}

/// The poll reaches the server, which replies at once.
static void
ServerReceive(uint32_t client, uint8_t asked)
{
    Model& m = g_model;
    m.delivered += 1;
    m.replies += 1;
    m.reply_bytes_total += m.reply_bytes[asked];
    CountBytes(m.reply_bytes[asked]);
    ns3::Simulator::Schedule(ns3::NanoSeconds(m.latency_ns), &ClientReceive, client);
}

/// The reply reaches the client, which now holds the policy.
static void
ClientReceive(uint32_t client)
{
    g_model.delivered += 1;
    g_model.have[client] = 1;
}

/// Builds the model, with `scheduler` as the event queue when it is not
/// empty (an ns-3 TypeId name such as "ns3::HeapScheduler"), runs it until
/// `duration_ns` (events at or after it do not run), and leaves the
/// counters in g_model.
void
Run(uint32_t clients,
    int64_t poll_ns,
    int64_t splay_ns,
    int64_t duration_ns,
    int64_t latency_ns,
    uint64_t poll_first,
    uint64_t poll_next,
    uint64_t reply_first,
    uint64_t reply_next,
    uint32_t seed,
    const std::string& scheduler)
{
    Model& m = g_model;
    m = Model();
    m.poll_ns = poll_ns;
    m.latency_ns = latency_ns;
    m.poll_bytes[0] = poll_first;
    m.poll_bytes[1] = poll_next;
    m.reply_bytes[0] = reply_first;
    m.reply_bytes[1] = reply_next;
    m.have.assign(clients, 0);
    m.hourly_bytes.assign(static_cast<size_t>((duration_ns + kHourNs - 1) / kHourNs), 0);

    // The event queue: ns-3's default (a std::map) unless one is named.
    if (!scheduler.empty())
    {
        ns3::ObjectFactory factory;
        factory.SetTypeId(scheduler);
        ns3::Simulator::SetScheduler(factory);
    }

    // First polls at uniform offsets in [0, splay), from ns-3's generator.
    ns3::RngSeedManager::SetSeed(seed);
    ns3::Ptr<ns3::UniformRandomVariable> u = ns3::CreateObject<ns3::UniformRandomVariable>();
    for (uint32_t c = 0; c < clients; ++c)
    {
        auto offset = static_cast<int64_t>(std::floor(u->GetValue(0.0, double(splay_ns))));
        if (offset >= splay_ns)
        {
            offset = splay_ns - 1;
        }
        ns3::Simulator::Schedule(ns3::NanoSeconds(offset), &ClientPoll, c);
    }

    ns3::Simulator::Stop(ns3::NanoSeconds(duration_ns));
    ns3::Simulator::Run();
    m.events = ns3::Simulator::GetEventCount();
    ns3::Simulator::Destroy();
}

} // namespace peers
