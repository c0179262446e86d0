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

"""Cost of a long watch: the CPU of an idle watch, peak memory, a soak."""

import json
import sys
import threading
import time

from osc_snapphase.tests.bench import common


def _idle_watch(fixture, sid, hangs):
    """Start ``watch -f value`` of an idle server; wait for its row."""
    for attempt in (1, 2):
        env = common.cli_env(fixture, {'PYTHONFAULTHANDLER': '1'})
        watch = common.Proc(['server', 'task-state', 'watch', sid, '-f',
                             'value'], env, pipe=True).start_waiter()
        try:
            common.wait_line(watch, 1)
            return watch
        except RuntimeError:
            # A guard: before f50f504 watch -f value did not flush its
            # rows, so through this pipe (without PYTHONUNBUFFERED) the
            # first row stayed in the buffer. If a row is ever missing
            # again, ask faulthandler where it is, keep that (in
            # cost.hangs_before_first_row), try once more.
            watch.kill(6)
            watch.wait()
            hangs.append(watch.stderr_tail())
            common.log('idle watch printed nothing in 120 s (attempt %d): '
                       '%s' % (attempt, hangs[-1][-600:]))
            if attempt == 2:
                raise


def run(opts):
    """CPU of an idle watch once started, and peak RSS against show."""
    minutes = 1 / 6.0 if opts.quick else 1.0
    hangs = []
    with common.simulator() as fixture:
        sid = fixture.control.create_server('bench-cpu')['id']
        watch = _idle_watch(fixture, sid, hangs)
        try:
            c0, t0 = watch.proc_cpu(), time.monotonic()
            time.sleep(minutes * 60)
            c1, t1 = watch.proc_cpu(), time.monotonic()
            watch.kill(15)
            watch.wait()
        finally:
            if watch.returncode is None:
                watch.kill()
        out = {
            'watched_s': round(t1 - t0, 1),
            'cpu_s': round(c1 - c0, 3),
            'cpu_s_per_minute': round((c1 - c0) / (t1 - t0) * 60, 3),
            'total_cpu_s_incl_startup': round(watch.cpu, 3),
            'maxrss_kib': watch.maxrss_kib,
            'rc': watch.returncode,
            'hangs_before_first_row': hangs,
        }
        # Peak RSS: short watch (one poll) vs server show, interleaved;
        # the long watch above is the third figure.
        env = common.cli_env(fixture)
        rss = {'watch_once': [], 'server_show': []}
        for _ in range(2 if opts.quick else 5):
            proc = common.run(['server', 'task-state', 'watch', sid,
                               '--until', 'idle', '-f', 'json'], env)
            rss['watch_once'].append(proc.maxrss_kib)
            proc = common.run(['server', 'show', sid, '-f', 'json'], env)
            rss['server_show'].append(proc.maxrss_kib)
    show = common.median(rss['server_show'])
    once = common.median(rss['watch_once'])
    out['rss'] = {
        'server_show_median_kib': show,
        'watch_once_median_kib': once,
        'watch_long_kib': out['maxrss_kib'],
        'ratio_watch_once': common.rnd(once / show),
        'ratio_watch_long': common.rnd(out['maxrss_kib'] / show),
        'samples': rss,
    }
    return out


def child_soak(args):
    """The soak's child: the Python API's watch for many polls."""
    from osc_snapphase import cloud
    from osc_snapphase import engine
    from osc_snapphase import records
    from osc_snapphase.simulator import client
    conn = common.connect(args['clouds_yaml'], args['cloud'])
    control = client.ControlClient(args['control_url'])
    server = cloud.find_server(conn.compute, args['server'])
    marks = args['marks']
    samples = {}
    rows = [0]

    def on_poll(watch):
        if watch.polls % 250 == 0:
            # A change now and then, so rows go through the whole path.
            control.set_server_state(
                server.id, power_state=4 if watch.polls % 500 else 1)
        if watch.polls in marks:
            samples[watch.polls] = common.status_rss_kib()
        if watch.polls >= marks[-1]:
            watch.stop(engine.INTERRUPTED, 'soak done')
    watch = cloud.make_watch(
        conn.compute, conn.image, [records.Track(server.id, server.name)],
        interval=0.2, sleep=lambda seconds: None, on_poll=on_poll)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _change in watch:
        rows[0] += 1
    json.dump({'polls': watch.polls, 'rows': rows[0],
               'rss_kib': {str(k): v for k, v in samples.items()},
               'wall_s': round(time.perf_counter() - t0, 2),
               'cpu_s': round(time.process_time() - c0, 2)}, sys.stdout)
    return 0


def soak(opts):
    marks = ([100, 250, 500, 1000] if opts.quick
             else [100, 1000, 5000, 10000])
    with common.simulator() as sim:
        sid = sim.control.create_server('bench-soak')['id']
        result = common.child('soak', clouds_yaml=sim.clouds_yaml,
                              cloud=sim.cloud_name,
                              control_url=sim.control_url, server=sid,
                              marks=marks)
    rss = result['rss_kib']
    first = str(marks[1])
    result['growth_kib'] = rss[str(marks[-1])] - rss[first]
    result['growth_from'] = int(first)
    common.log('soak: %d polls in %.0f s' % (
        result['polls'], result['wall_s']))
    return result


class Soak(threading.Thread):
    """The soak, in the background while other sections run.

    At a few ms per simulator request, 10,000 polls take minutes that are
    mostly spent waiting (about 0.1 of a core).
    """

    def __init__(self, opts):
        super().__init__(daemon=True)
        self.opts = opts
        self.result = None

    def run(self):
        try:
            self.result = soak(self.opts)
        except Exception as exc:    # reported in the results
            self.result = {'error': repr(exc)}


def rows(result):
    """Table rows: (metric, value, target, verdict)."""
    out = []
    if 'cpu_s_per_minute' in result:
        out.append(('CPU per minute, idle watch (%gs)' % result['watched_s'],
                    '%.3f s/min' % result['cpu_s_per_minute'], '<= 0.6',
                    common.verdict(result['cpu_s_per_minute'], 0.6)))
        rss = result['rss']
        out.append(('peak RSS watch(once)/server show', '%.3f (%d/%d KiB)' % (
            rss['ratio_watch_once'], rss['watch_once_median_kib'],
            rss['server_show_median_kib']), '<= 1.1',
            common.verdict(rss['ratio_watch_once'], 1.1)))
        out.append(('peak RSS long watch/server show',
                    '%.3f' % rss['ratio_watch_long'], '<= 1.1',
                    common.verdict(rss['ratio_watch_long'], 1.1)))
    soak = result.get('soak')
    if soak and 'error' in soak:
        out.append(('soak failed', soak['error'], '', ''))
    elif soak:
        out.append(('soak: RSS at %s polls' % '/'.join(soak['rss_kib']),
                    '/'.join(str(v) for v in soak['rss_kib'].values())
                    + ' KiB', '', ''))
        out.append(('soak: RSS growth %d -> %d polls' % (
            soak['growth_from'], soak['polls']),
            '%d KiB' % soak['growth_kib'], 'no growth',
            'ok' if soak['growth_kib'] <= 256 else 'MISS'))
    return out
