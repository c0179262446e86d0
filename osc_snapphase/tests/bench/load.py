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

"""API load: requests of a watch per phase, per token, per server count.

Every figure comes from the simulator's request log.
"""

import os
import time

from osc_snapphase.tests.bench import common


def _count(requests, start, end, exclude=()):
    counts = {}
    for entry in requests:
        if start <= entry['time'] < end and entry['key'] not in exclude:
            service = entry['service'] or 'other'
            counts[service] = counts.get(service, 0) + 1
    return counts


def _phases(opts):
    """Requests per minute of a default watch through every phase."""
    if opts.quick:
        idle, durations = 3.0, {'pending': 0.3, 'snapshot': 3.0,
                                'pending_upload': 1.5, 'uploading': 3.0}
    else:
        idle, durations = 20.0, {'pending': 0.5, 'snapshot': 8.0,
                                 'pending_upload': 4.0, 'uploading': 40.0}
    with common.simulator(durations) as sim:
        control = sim.control
        server = control.create_server('bench-load')
        sid = server['id']
        conn = common.connect(sim.clouds_yaml, sim.cloud_name)
        conn.compute.get_server(sid)     # authenticate before the reset
        control.reset_requests()
        watch = common.Proc(['server', 'task-state', 'watch', sid,
                             '--stream', '-f', 'json'],
                            common.cli_env(sim), pipe=True).start_waiter()
        first, _text = common.wait_line(watch, 1)
        time.sleep(idle)
        seq = common.last_seq(control)
        t_create = time.time()
        conn.compute.create_server_image(sid, 'load-image')
        t_created = time.time()
        common.wait_idle(control, sid, timeout=durations['uploading'] + 60)
        time.sleep(idle)
        t_stop = time.time()
        os.kill(watch.pid, 15)
        watch.wait()
        reqs = control.requests()['requests']
        changes = common.task_changes(control, sid, seq)
        at = {}
        for entry in changes:
            at.setdefault(entry['new'], entry['time'])
        windows = {
            'idle': [(first, t_create), (at[None], t_stop)],
            'snapshot': [(at['image_snapshot_pending'],
                          at['image_pending_upload'])],
            'pending-upload': [(at['image_pending_upload'],
                                at['image_uploading'])],
            'upload': [(at['image_uploading'], at[None])],
        }
        # The benchmark's own create request (and its image lookups) run
        # between t_create and t_created; leave that window's POST out.
        own = [e for e in reqs if t_create <= e['time'] <= t_created
               and e['method'] != 'GET']
        per_phase = {}
        for phase, spans in windows.items():
            seconds = sum(b - a for a, b in spans)
            counts = {}
            for a, b in spans:
                for key, value in _count(
                        [e for e in reqs if e not in own], a, b).items():
                    counts[key] = counts.get(key, 0) + value
            total = sum(counts.values())
            per_phase[phase] = {
                'seconds': round(seconds, 2),
                'requests': counts,
                'requests_per_minute': round(total / seconds * 60, 1),
            }
        startup = [e for e in reqs if e['time'] < first]
        return {
            'durations': durations, 'idle_s': idle,
            'watch_rc': watch.returncode,
            'token_requests': common.tokens(reqs),
            'startup_requests': len(startup),
            'per_phase': per_phase,
            'total_requests': len(reqs) - len(own),
        }


def _schedule_model(snapshot=10.0, pending_upload=5.0, upload=600.0):
    """Requests of a default watch --until idle over a scripted operation.

    The engine itself (engine.Watch, the default adaptive schedule) with a
    fake clock and a scripted fetch: no simulator, no real sleep. It counts
    the fetches (one request each) and the image lookups the engine asks
    for over the snapshot, the pending upload and a long upload.
    """
    from osc_snapphase import conditions
    from osc_snapphase import engine
    from osc_snapphase import records
    now = [0.0]
    script = [(0.5, 'image_snapshot_pending'), (snapshot, 'image_snapshot'),
              (snapshot + pending_upload, 'image_pending_upload'),
              (snapshot + pending_upload + upload, 'image_uploading')]
    calls = {'fetch': 0, 'image_get': 0, 'image_latest': 0}

    def task_state():
        for end, state in script:
            if now[0] < end:
                return state
        return None

    def fetch(ids):
        calls['fetch'] += 1
        sid = next(iter(ids))
        return {sid: records.ServerState(sid, 'model', 'ACTIVE', 'active',
                                         task_state(), 1)}

    done = snapshot + pending_upload + upload

    class Images:
        @staticmethod
        def get(image_id):
            calls['image_get'] += 1
            return records.ImageState(image_id, 'model', 'active'
                                      if now[0] >= done else 'saving')

        @staticmethod
        def latest(server_id):
            calls['image_latest'] += 1
            return Images.get('image')

    def sleep(seconds):
        now[0] += seconds
    watch = engine.Watch(fetch, [records.Track('srv', 'model')],
                         condition=conditions.parse_until('idle'),
                         images=Images, clock=lambda: now[0], sleep=sleep)
    for _change in watch:
        pass
    return {'snapshot_s': snapshot, 'pending_upload_s': pending_upload,
            'upload_s': upload, 'outcome': watch.outcome.kind,
            'watch_s': round(now[0], 1), 'polls': watch.polls,
            'requests': sum(calls.values()), 'calls': calls}


def _wait_phase_tokens(opts):
    durations = {'pending': 0.3, 'snapshot': 1.0, 'pending_upload': 0.5,
                 'uploading': 2.0}
    with common.simulator(durations) as sim:
        control = sim.control
        sid = control.create_server('bench-tokens')['id']
        control.reset_requests()
        proc = common.run(['server', 'image', 'create', sid, '--name',
                           'tokens', '--wait-phase', 'upload', '-f', 'json'],
                          common.cli_env(sim))
        reqs = control.requests()
        return {'rc': proc.returncode, 'token_requests': common.tokens(
            reqs['requests']), 'requests': reqs['counts']}


def _n_watch(count, duration, sims):
    """Start a watch of count idle servers on a fresh simulator."""
    sim = common.simulator()
    fixture = sim.__enter__()
    sims.append(sim)
    control = fixture.control
    servers = control.create_servers(count, prefix='n%d-' % count)
    control.reset_requests()
    ids = [s['id'] for s in servers]
    proc = common.Proc(['server', 'task-state', 'watch'] + ids + [
        '--timeout', str(duration), '-f', 'value'],
        common.cli_env(fixture), pipe=True).start_waiter()
    return fixture, proc


def _n_result(fixture, proc, count):
    reqs = fixture.control.requests()['requests']
    counts = {}
    for entry in reqs:
        counts[entry['key']] = counts.get(entry['key'], 0) + 1
    by_id = sum(v for k, v in counts.items()
                if k.startswith('GET ') and k.endswith('/servers/{id}'))
    listing = sum(v for k, v in counts.items()
                  if k.startswith('GET ') and k.endswith('/servers/detail'))
    # Each server is resolved once at start (GET /servers/{id}); one server
    # is then polled with GET /servers/{id}, several with one listing.
    polls = by_id - count if count == 1 else listing
    return {
        'servers': count, 'rc': proc.returncode,
        'total_requests': len(reqs),
        'token_requests': common.tokens(reqs),
        'resolve_requests': by_id if count > 1 else 1,
        'poll_requests': polls,
        'by_route': counts,
    }


def _servers(opts):
    """Watches of 1, 10 and 50 idle servers, side by side, same duration."""
    duration = 8.0 if opts.quick else 40.0
    sims, runs = [], []
    try:
        for count in (1, 10, 50):
            runs.append((count,) + _n_watch(count, duration, sims))
        for _count, _fixture, proc in runs:
            proc.wait()
        return {'watch_duration_s': duration,
                'servers': [_n_result(fixture, proc, count)
                            for count, fixture, proc in runs]}
    finally:
        for _count, _fixture, proc in runs:
            if proc.returncode is None:
                proc.kill()
        for sim in reversed(sims):
            sim.__exit__(None, None, None)


def run(opts):
    return {'phases': _phases(opts), 'schedule_model': _schedule_model(),
            'wait_phase_tokens': _wait_phase_tokens(opts),
            'servers': _servers(opts)}


def rows(result):
    """Table rows: (metric, value, target, verdict)."""
    out = []
    for phase, item in result['phases']['per_phase'].items():
        out.append(('watch req/min/server, %s (%gs)' % (
            phase, item['seconds']), item['requests_per_minute'], '', ''))
    model = result['schedule_model']
    out.append(('model: watch --until idle, %gs snapshot + %gs pending '
                'upload + %gs upload' % (model['snapshot_s'],
                                         model['pending_upload_s'],
                                         model['upload_s']),
                '%d requests' % model['requests'], 'a few hundred', ''))
    for label, count in (
            ('watch run', result['phases']['token_requests']),
            ('--wait-phase run',
             result['wait_phase_tokens']['token_requests'])):
        out.append(('token requests per %s' % label, count, '== 1',
                    'ok' if count == 1 else 'MISS'))
    servers = result['servers']['servers']
    polls = [s['poll_requests'] for s in servers]
    out.append(('N=1/10/50 watch %gs: poll requests' % result['servers'][
        'watch_duration_s'], '/'.join(map(str, polls)), 'independent of N',
        'ok' if max(polls) - min(polls) <= 1 else 'MISS'))
    out.append(('N=1/10/50: all requests (incl. start-up)', '/'.join(
        str(s['total_requests']) for s in servers), '', ''))
    return out
