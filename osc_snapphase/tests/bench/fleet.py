#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""Fleets: the cost of a poll over 10 to 5,000 servers, 1 % of them busy.

For each fleet size, on a fresh simulator, a child process polls every
server of the project at a fixed interval through the Python API over
HTTP, first with nothing changing, then while 1 % of the servers take a
snapshot. Two ways of reading, in the same run, on the same servers:

``incremental``
    the product's listing (:class:`osc_snapphase.listing.ServerListing`
    for a fleet): a full listing, then ``changes-since``.
``full-listing``
    the way before it (kept here as the baseline): every page of
    ``GET /servers/detail`` at each poll, an openstacksdk ``Server``
    object per server.

Per poll: the client's CPU (``time.thread_time`` around the read), its
requests and response bytes (counted on its HTTP session), the servers
answered; per task state change of a busy server: the detection delay
(from the simulator's log time of the change to the end of the first
poll that showed it), or missed when no poll showed that state.
"""

import json
import sys
import time

from osc_snapphase.tests.bench import common

SIZES = (10, 100, 1000, 5000)
VARIANTS = ('incremental', 'full-listing')
# Steps of the snapshots (xenserver order): each longer than the polling
# interval, so that a poll that keeps to its interval sees every state.
DURATIONS = {'pending': 1.5, 'snapshot': 3.0, 'pending_upload': 1.5,
             'uploading': 3.0}
INTERVAL = 1.0
# Seconds between the fleet's creation (or the last snapshot) and the
# start of a measured watch: more than the listing's overlap and the
# one-second resolution of ``updated``.
SETTLE_S = 4.0
# Polls after the first that are not counted as idle: for its overlap
# (2 s) the incremental listing reads the last updated server again.
SETTLE_POLLS = 3
TARGET_IDLE_CPU_S = 0.020


class Meter:
    """Requests and response bytes of a Connection's HTTP session."""

    def __init__(self, conn):
        self.requests = 0
        self.bytes = 0
        conn.session.session.hooks['response'].append(self._count)

    def _count(self, response, *args, **kwargs):
        self.requests += 1
        self.bytes += len(response.content)
        return response


def full_listing(conn):
    """The baseline's poll: every page, an SDK Server object per server.

    A copy of the fetch of several servers before the incremental
    listing (cloud.ServerFetcher): ``compute.servers(details=True)`` and
    a record per listed server from the SDK object's attributes.
    """
    compute = conn.compute

    def poll():
        states = {}
        for server in compute.servers(details=True):
            fault = server.fault or {}
            states[server.id] = (server.name, server.status, server.vm_state,
                                 server.task_state, server.power_state,
                                 fault.get('message'))
        return {sid: state[3] for sid, state in states.items()}, None
    return poll


def incremental(conn):
    """The product's poll of a fleet: ``listing.ServerListing``."""
    from osc_snapphase import listing
    fetch = listing.ServerListing(conn.compute, fleet=True)

    def poll():
        answer = fetch(())
        states = getattr(answer, 'states', answer)
        return ({sid: state.task_state for sid, state in states.items()},
                list(getattr(answer, 'deleted', ())))
    return poll


POLLERS = {'incremental': incremental, 'full-listing': full_listing}


def child_fleet(args):
    """Poll the fleet: idle polls, then snapshots of the busy servers.

    Writes per poll: phase, start and end (time.time()), CPU, requests,
    bytes and servers answered; per busy server the task states seen
    with the end of the poll that first showed each.
    """
    conn = common.connect(args['clouds_yaml'], args['cloud'])
    meter = Meter(conn)
    poll = POLLERS[args['variant']](conn)
    busy = args['busy']
    view = {}
    seen = {sid: [] for sid in busy}
    polls = []

    def measured(phase):
        requests, size = meter.requests, meter.bytes
        started, cpu = time.time(), time.thread_time()
        states, deleted = poll()
        cpu, ended = time.thread_time() - cpu, time.time()
        changed = [sid for sid, task in states.items()
                   if view.get(sid, '?') != task]
        view.update(states)
        for sid in deleted or ():
            view.pop(sid, None)
        for sid in busy:
            task = view.get(sid)
            if not seen[sid] or seen[sid][-1][0] != task:
                seen[sid].append((task, ended))
        polls.append({'phase': phase, 'started': started, 'ended': ended,
                      'cpu_s': cpu, 'requests': meter.requests - requests,
                      'bytes': meter.bytes - size, 'answered': len(states),
                      'changed': len(changed)})
        time.sleep(max(0.0, args['interval'] - (time.time() - started)))

    measured('first')
    for _ in range(args['settle_polls']):
        measured('settle')
    for _ in range(args['idle_polls']):
        measured('idle')
    for index, sid in enumerate(busy):
        conn.compute.post('/servers/%s/action' % sid, json={
            'createImage': {'name': 'fleet-%s-%d' % (args['variant'],
                                                     index)}})
    triggered = time.time()
    for _ in range(args['max_busy_polls']):
        measured('busy')
        # Over once each busy server is idle again: after a change seen,
        # or, for a poll too slow to see any, after the snapshot's time.
        if all(seen[sid][-1][0] is None and (
                len(seen[sid]) > 1
                or time.time() - triggered > args['busy_seconds'])
               for sid in busy):
            break
    json.dump({'polls': polls, 'seen': seen, 'triggered': triggered,
               'servers': len(view), 'rss_kib': common.status_rss_kib()},
              sys.stdout)
    return 0


def _delays(log, seen, triggered):
    """Detection delay of each task state change of the busy servers."""
    delays, missed = [], 0
    for sid, states in seen.items():
        changes = [e for e in log if e['id'] == sid
                   and e['field'] == 'task_state' and e['time'] >= triggered]
        for entry in changes:
            found = next((when for task, when in states
                          if task == entry['new'] and when >= entry['time']),
                         None)
            if found is None:
                missed += 1
            else:
                delays.append(found - entry['time'])
    return {'changes': len(delays) + missed, 'missed': missed,
            'median_s': common.rnd(common.median(delays)),
            'p95_s': common.rnd(common.percentile(delays, 0.95)),
            'max_s': common.rnd(max(delays) if delays else None)}


def _summary(result, log):
    out = {}
    for phase in ('idle', 'busy'):
        polls = [p for p in result['polls'] if p['phase'] == phase]
        if not polls:
            continue
        out[phase] = {
            'polls': len(polls),
            'cpu_per_poll_s': common.rnd(common.median(
                [p['cpu_s'] for p in polls]), 4),
            'cpu_per_poll_max_s': common.rnd(max(
                p['cpu_s'] for p in polls), 4),
            'requests_per_poll': common.median(
                [p['requests'] for p in polls]),
            'bytes_per_poll': common.median([p['bytes'] for p in polls]),
            'answered_per_poll': common.median(
                [p['answered'] for p in polls]),
            'wall_per_poll_s': common.rnd(common.median(
                [p['ended'] - p['started'] for p in polls]), 4),
        }
    first = result['polls'][0]
    out['first'] = {'cpu_s': common.rnd(first['cpu_s'], 4),
                    'requests': first['requests'], 'bytes': first['bytes']}
    out['delay'] = _delays(log, result['seen'], result['triggered'])
    out['servers_seen'] = result['servers']
    out['rss_kib_at_end'] = result['rss_kib']
    return out


def _variants():
    try:
        from osc_snapphase import listing
        listing.ServerListing
    except (ImportError, AttributeError) as exc:
        common.log('fleet: no incremental listing (%r): baseline only'
                   % exc)
        return ('full-listing',)
    return VARIANTS


def run(opts):
    sizes = [int(s) for s in (opts.fleet_sizes or ','.join(
        str(s) for s in SIZES)).split(',')]
    idle_polls = 3 if opts.quick else 10
    variants = _variants()
    out = {'interval_s': INTERVAL, 'durations': DURATIONS,
           'idle_polls': idle_polls, 'variants': list(variants),
           'sizes': {}}
    with common.LoadSampler() as loads:
        for size in sizes:
            out['sizes'][str(size)] = _size(size, variants, idle_polls, opts)
    out['loadavg_1min'] = loads.summary()
    out['ratios'] = _ratios(out)
    return out


def _size(size, variants, idle_polls, opts):
    """Every variant on one simulator with ``size`` servers."""
    busy_count = max(1, size // 100)
    item = {'busy_servers': busy_count}
    with common.simulator(DURATIONS) as sim:
        servers = sim.control.create_servers(size, prefix='fleet-')
        time.sleep(SETTLE_S)
        step = size // busy_count
        busy = [servers[i * step]['id'] for i in range(busy_count)]
        for variant in variants:
            _settle(sim.control, servers[-1]['id'])
            # The baseline's poll takes seconds at thousands of servers:
            # fewer idle polls (each is measured on its own).
            polls = idle_polls if variant == 'incremental' or size < 1000 \
                else max(2, idle_polls // 3)
            seq = common.last_seq(sim.control)
            result = common.child(
                'fleet', clouds_yaml=sim.clouds_yaml, cloud=sim.cloud_name,
                variant=variant, busy=busy, interval=INTERVAL,
                settle_polls=SETTLE_POLLS if variant == 'incremental' else 0,
                idle_polls=polls, max_busy_polls=60,
                busy_seconds=2 * sum(DURATIONS.values()))
            log = sim.control.log(since=seq)
            item[variant] = _summary(result, log)
            item[variant]['raw_polls'] = result['polls']
            for sid in busy:
                common.wait_idle(sim.control, sid, timeout=300)
            time.sleep(SETTLE_S)
            common.log('fleet %d %s: idle %s' % (
                size, variant, {k: v for k, v in item[variant]['idle'].items()
                                if k != 'polls'}))
    return item


def _settle(control, server_id):
    """Make one idle server the last one updated, as in a real fleet.

    Created at once, every server of the fleet has the same ``updated``
    second, and the incremental listing reads again what changed within
    its overlap of the newest ``updated`` it saw: here the whole fleet,
    for the first polls. In a real fleet the newest update is one server's.
    """
    control.set_server_state(server_id, power_state=1)


def _ratios(out):
    """Full listing / incremental, per size and phase; growth with size."""
    ratios = {}
    for size, item in out['sizes'].items():
        if not all(v in item for v in VARIANTS):
            continue
        for phase in ('idle', 'busy'):
            new, old = item['incremental'][phase], item['full-listing'][phase]
            ratios.setdefault(size, {})[phase] = {
                key: common.rnd(old[key] / new[key], 1) if new[key] else None
                for key in ('cpu_per_poll_s', 'requests_per_poll',
                            'bytes_per_poll')}
    return ratios


def rows(result):
    """Table rows: (metric, value, target, verdict)."""
    out = []
    for size, item in result['sizes'].items():
        for variant in result['variants']:
            fig = item[variant]
            idle, busy = fig['idle'], fig.get('busy', {})
            target = status = ''
            if variant == 'incremental':
                target = '1 req, < 20 ms'
                status = 'ok' if idle['requests_per_poll'] == 1 and (
                    idle['cpu_per_poll_s'] < TARGET_IDLE_CPU_S) else 'MISS'
            out.append(('%s servers, %s, idle: CPU / requests / bytes per '
                        'poll' % (size, variant), '%.4f s / %g / %d' % (
                            idle['cpu_per_poll_s'],
                            idle['requests_per_poll'],
                            idle['bytes_per_poll']), target, status))
            if busy:
                out.append(('%s servers, %s, %d busy: CPU / requests / '
                            'bytes per poll' % (size, variant,
                                                item['busy_servers']),
                            '%.4f s / %g / %d' % (
                                busy['cpu_per_poll_s'],
                                busy['requests_per_poll'],
                                busy['bytes_per_poll']), '', ''))
            delay = fig['delay']
            out.append(('%s servers, %s: detection delay median / p95 '
                        '(missed of changes)' % (size, variant),
                        '%s / %s s (%d of %d)' % (
                            delay['median_s'], delay['p95_s'],
                            delay['missed'], delay['changes']), '', ''))
    for size, phases in result.get('ratios', {}).items():
        for phase, ratio in phases.items():
            out.append(('%s servers, %s: full listing / incremental, CPU / '
                        'requests / bytes' % (size, phase),
                        'x%s / x%s / x%s' % (ratio['cpu_per_poll_s'],
                                             ratio['requests_per_poll'],
                                             ratio['bytes_per_poll']),
                        '', ''))
    return out
