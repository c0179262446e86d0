#!/usr/bin/env python3
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

"""Benchmark suite of osc-snapphase (``tox -e bench``; issue 6).

Runs the real ``openstack`` executable (the one next to ``sys.executable``)
and the Python API against the bundled simulator on 127.0.0.1, prints a
table and optionally writes every figure as JSON (``--output FILE``).
Each figure is measured in the same run as the one it is compared with.

Sections: startup, delay, load, cost, scale (``--sections`` picks some).
See doc/source/user/performance.rst for the method of each.
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')
SECTIONS = ('startup', 'delay', 'load', 'cost', 'scale')
CLK_TCK = os.sysconf('SC_CLK_TCK')
TOKEN_KEY_RE = re.compile(r'^POST .*auth/tokens$')

# The seed article's script polls every 45 s: the end of the disk capture
# falls anywhere in an interval, so the delay is uniform on [0, 45).
SEED_INTERVAL = 45.0

# Which distribution each startup variant hides (see _hide_dir).
HIDE_SITECUSTOMIZE = '''\
# Written by tools/bench.py: hide a distribution from importlib.metadata so
# that stevedore/OpenStackClient find none of its entry points.
import importlib.metadata as _md

_HIDDEN = set(%(hidden)r)
_discover = _md.Distribution.discover.__func__


def _filtered(cls, **kwargs):
    for dist in _discover(cls, **kwargs):
        name = (dist.metadata['Name'] or '').lower().replace('_', '-')
        if name not in _HIDDEN:
            yield dist


_md.Distribution.discover = classmethod(_filtered)
'''


# -- helpers -----------------------------------------------------------------

def log(message):
    sys.stderr.write('[bench %s] %s\n' % (
        time.strftime('%H:%M:%S'), message))
    sys.stderr.flush()


def median(values):
    return statistics.median(values) if values else None


def percentile(values, share):
    """Linear-interpolated percentile (share in 0..1)."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = share * (len(data) - 1)
    low = int(math.floor(pos))
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def rnd(value, digits=3):
    return None if value is None else round(value, digits)


class Proc:
    """A child process whose end is reaped with os.wait4 (rusage)."""

    def __init__(self, args, env, stdout=None, stderr=None):
        self.args = args
        self.started = time.time()
        self._t0 = time.perf_counter()
        self.errors = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=stderr if stderr is not None else self.errors)
        self.pid = self.popen.pid
        self.ended = None
        self.wall = None
        self.returncode = None
        self.rusage = None
        self.lines = []          # (receipt time, text) when stdout is a pipe
        self._reader = None
        self._waiter = None
        if stdout is subprocess.PIPE:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self):
        for raw in self.popen.stdout:
            self.lines.append((time.time(), raw.decode(errors='replace')))

    def stderr_tail(self):
        self.errors.seek(0)
        return self.errors.read()[-1500:].decode(errors='replace')

    def start_waiter(self):
        self._waiter = threading.Thread(target=self.wait, daemon=True)
        self._waiter.start()
        return self

    def wait(self, timeout=None):
        if self._waiter is not None and (
                threading.current_thread() is not self._waiter):
            self._waiter.join(timeout)
            return self.returncode
        _pid, status, rusage = os.wait4(self.pid, 0)
        self.ended = time.time()
        self.wall = time.perf_counter() - self._t0
        self.rusage = rusage
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode
        if self._reader is not None:
            self._reader.join(5)
        return self.returncode

    @property
    def cpu(self):
        return self.rusage.ru_utime + self.rusage.ru_stime

    @property
    def maxrss_kib(self):
        return self.rusage.ru_maxrss

    def proc_cpu(self):
        """utime+stime so far, from /proc/<pid>/stat (10 ms ticks)."""
        with open('/proc/%d/stat' % self.pid) as stream:
            fields = stream.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run(args, env, timeout=120):
    """Run to the end; return the reaped Proc (stdout/stderr discarded)."""
    proc = Proc(args, env)
    timer = threading.Timer(timeout, _kill, (proc,))
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    return proc


def _kill(proc):
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, 9)


def base_env():
    # What a user's shell gives the CLI: no OS_* or PYTHONPATH left over,
    # and no PYTHONUNBUFFERED (it would hide a missing flush of live output
    # through a pipe, as it did for watch -f value before f50f504).
    return {k: v for k, v in os.environ.items()
            if not k.startswith('OS_')
            and k not in ('PYTHONPATH', 'PYTHONUNBUFFERED')}


@contextlib.contextmanager
def simulator(durations=None):
    from osc_snapphase.tests import fixture
    sim = fixture.SimulatorFixture(durations=durations or {})
    sim.setUp()
    try:
        yield sim
    finally:
        sim.cleanUp()


def cli_env(sim):
    env = base_env()
    env.update(sim.cloud_env())
    return env


def os_cmd(*args):
    return [OPENSTACK] + list(args)


def task_changes(control, server_id, since=0):
    return [e for e in control.log(since=since, resource_id=server_id)
            if e['field'] == 'task_state']


def last_seq(control):
    entries = control.log()
    return entries[-1]['seq'] if entries else 0


def wait_idle(control, server_id, timeout=60.0):
    control.wait_for(lambda s: any(
        v['id'] == server_id and v['OS-EXT-STS:task_state'] is None
        for v in s['servers']), timeout, interval=0.05)


def wait_line(proc, count=1, timeout=120.0):
    deadline = time.monotonic() + timeout
    while len(proc.lines) < count:
        if time.monotonic() > deadline or proc.popen.poll() is not None:
            if len(proc.lines) >= count:
                break
            raise RuntimeError('no output from %s (exit %s) after %.0fs: %s'
                               % (' '.join(proc.args), proc.popen.poll(),
                                  time.time() - proc.started,
                                  proc.stderr_tail()))
        time.sleep(0.01)
    return proc.lines[count - 1]


# -- 1. start-up overhead ----------------------------------------------------

def _hide_dir(root, name, hidden):
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, 'sitecustomize.py'), 'w') as stream:
        stream.write(HIDE_SITECUSTOMIZE % {'hidden': tuple(hidden)})
    return path


def _has_sitecustomize():
    code = ('import importlib.util, sys; '
            'sys.exit(0 if importlib.util.find_spec("sitecustomize") '
            'else 1)')
    return subprocess.call([sys.executable, '-c', code],
                           env=base_env()) == 0


def bench_startup(opts):
    """Plugin installed vs its entry points hidden, interleaved."""
    if _has_sitecustomize():
        raise RuntimeError('this Python already has a sitecustomize; the '
                           'hiding method would shadow it')
    runs = 3 if opts.quick else 11
    tmp = tempfile.mkdtemp(prefix='bench-startup-')
    # Both variants get a sitecustomize with the same code; only the name
    # hidden differs ("with" hides a name that does not exist), so both pay
    # the same import-time cost for the hiding itself.
    with_dir = _hide_dir(tmp, 'with', ['no-such-distribution'])
    without_dir = _hide_dir(tmp, 'without', ['osc-snapphase'])
    env_with = base_env()
    env_with['PYTHONPATH'] = with_dir
    env_without = base_env()
    env_without['PYTHONPATH'] = without_dir
    # Check the method: the plugin's commands are visible only "with".
    check = {}
    for label, env in (('with', env_with), ('without', env_without)):
        out = subprocess.run(os_cmd('help', 'server', 'task-state'),
                             env=env, capture_output=True, text=True)
        check[label] = 'task-state watch' in out.stdout
    if not check['with'] or check['without']:
        raise RuntimeError('hiding the entry points did not work: %s'
                           % check)
    commands = [('openstack --version', ['--version']),
                ('openstack --help', ['--help']),
                ('openstack server show --help',
                 ['server', 'show', '--help'])]
    results = {}
    for label, args in commands:
        # Warm both variants (page cache, stevedore's entry point cache).
        if not opts.quick or label == commands[0][0]:
            for env in (env_with, env_without):
                run(os_cmd(*args), env)
        wall = {'with': [], 'without': []}
        cpu = {'with': [], 'without': []}
        for index in range(runs):
            order = [('with', env_with), ('without', env_without)]
            if index % 2:
                order.reverse()
            for variant, env in order:
                proc = run(os_cmd(*args), env)
                if proc.returncode != 0:
                    raise RuntimeError('%s failed: %s' % (label,
                                                          proc.returncode))
                wall[variant].append(proc.wall)
                cpu[variant].append(proc.cpu)
        pair_wall = [a / b for a, b in zip(wall['with'], wall['without'])]
        pair_cpu = [a / b for a, b in zip(cpu['with'], cpu['without'])]
        results[label] = {
            'runs': runs,
            'wall_with_median_s': rnd(median(wall['with'])),
            'wall_without_median_s': rnd(median(wall['without'])),
            'cpu_with_median_s': rnd(median(cpu['with'])),
            'cpu_without_median_s': rnd(median(cpu['without'])),
            'ratio_of_medians_wall': rnd(median(wall['with'])
                                         / median(wall['without'])),
            'median_paired_ratio_wall': rnd(median(pair_wall)),
            'median_paired_ratio_cpu': rnd(median(pair_cpu)),
            'wall_with_s': [rnd(v) for v in wall['with']],
            'wall_without_s': [rnd(v) for v in wall['without']],
        }
        log('startup %s: paired ratio wall %.3f cpu %.3f' % (
            label, median(pair_wall), median(pair_cpu)))
    # -X importtime of the plugin module (its own cost, cold interpreter).
    imports = []
    for _ in range(3 if opts.quick else 7):
        out = subprocess.run(
            [sys.executable, '-X', 'importtime', '-c',
             'import osc_snapphase.plugin'],
            env=base_env(), capture_output=True, text=True)
        found = {}
        for line in out.stderr.splitlines():
            parts = [p.strip() for p in line.split('|')]
            if len(parts) == 3 and parts[2].strip() in (
                    'osc_snapphase', 'osc_snapphase.plugin'):
                found[parts[2].strip()] = int(parts[1])
        imports.append(found)
    shutil.rmtree(tmp, ignore_errors=True)
    cumulative = [f.get('osc_snapphase', 0) + f.get('osc_snapphase.plugin', 0)
                  for f in imports]
    return {
        'method': 'same virtualenv; the "without" runs get a sitecustomize '
                  'on PYTHONPATH that filters the osc-snapphase '
                  'distribution out of importlib.metadata discovery, the '
                  '"with" runs an identical one that filters a name that '
                  'does not exist',
        'check_plugin_visible': check,
        'commands': results,
        'importtime_us': {
            'runs': len(imports),
            'osc_snapphase_plugin_cumulative_median': median(
                [f.get('osc_snapphase.plugin') for f in imports
                 if 'osc_snapphase.plugin' in f]),
            'osc_snapphase_package_cumulative_median': median(
                [f.get('osc_snapphase') for f in imports
                 if 'osc_snapphase' in f]),
            'total_median': median(cumulative),
        },
    }


# -- 2. capture-end detection delay ------------------------------------------

# The Nova driver orders the delay section plays (the simulator's drivers)
# and the simulator duration that is each order's disk copy.
DELAY_ORDERS = ('xenserver', 'libvirt-file', 'libvirt-rbd', 'vmware')
COPY_DURATION = {'xenserver': 'snapshot', 'libvirt-file': 'copy',
                 'libvirt-lvm': 'copy', 'libvirt-rbd': 'flatten',
                 'libvirt-rbd-fallback': 'copy', 'vmware': 'copy'}
# Short steps: the copy about 1 s (varied per run), the rest 0.1-0.3 s.
DELAY_DURATIONS = {'pending': 0.2, 'snapshot': 0.3, 'pending_upload': 0.3,
                   'copy': 1.0, 'bounce': 5.0, 'rbd_snapshot': 0.2,
                   'flatten': 1.0, 'uploading': 0.3}
# The models: the product's default, and the seed article's task-state
# model (run for real with --os-snapphase-capture-model xenserver).
MODELS = ('image-status', 'xenserver')
PROOF_STATUSES = ('saving', 'importing', 'active')
DELAY_METRICS = ('wait_phase_output', 'wait_phase_exit', 'watch_row',
                 'watch_exit')


def _json_rows(lines):
    rows = []
    for receipt, text in lines:
        with contextlib.suppress(ValueError, AttributeError):
            rows.append((receipt, json.loads(text)))
    return rows


def _stats(values):
    """Signed delays: median, p95, min, max and how many were < 0."""
    return {'n': len(values), 'median_s': rnd(median(values)),
            'p95_s': rnd(percentile(values, 0.95)),
            'min_s': rnd(min(values) if values else None),
            'max_s': rnd(max(values) if values else None),
            'before_copy_end': sum(1 for v in values if v < 0)}


class _DelayTrial:
    """One image-create watched by --wait-phase snapshot and a watch.

    The operation is held at image_snapshot_pending until the watch has
    printed its first row, so both CLI processes poll before the copy
    starts whatever their start-up costs on a busy machine. The trials of
    a batch start together (their start-up overlaps) and are released
    one at a time (their measured windows do not).
    """

    def __init__(self, control, env, sid, name, model):
        self.control, self.env, self.sid = control, env, sid
        self.name, self.model = name, model
        self.prefix = [] if model == 'image-status' else [
            '--os-snapphase-capture-model', model]
        self.seq = last_seq(control)
        self.known = len(control.captures(sid))
        self.watch = None
        control.hold('pending', sid)
        self.create = Proc(os_cmd(*(self.prefix + [
            'server', 'image', 'create', sid, '--name', name,
            '--wait-phase', 'snapshot', '-f', 'json'])),
            env, stdout=subprocess.PIPE).start_waiter()

    def start_watch(self):
        self.control.wait_held('pending', self.sid, timeout=300)
        self.watch = Proc(os_cmd(*(self.prefix + [
            'server', 'task-state', 'watch', self.sid, '--until',
            'disk-safe', '--stream', '-f', 'json'])),
            self.env, stdout=subprocess.PIPE).start_waiter()

    def wait_ready(self):
        wait_line(self.watch, 1, timeout=300)

    def abort(self):
        self.control.release('pending', self.sid)
        for proc in (self.create, self.watch):
            if proc is not None and proc.popen.poll() is None:
                _kill(proc)

    def finish(self):
        control, sid = self.control, self.sid
        control.release('pending', sid)
        self.create.wait()
        self.watch.wait()
        wait_idle(control, sid)
        captures = control.captures(sid)[self.known:]
        if len(captures) != 1 or captures[0]['ended'] is None:
            raise RuntimeError('%s: expected one ended copy, got %r'
                               % (self.name, captures))
        capture = captures[0]
        ended = capture['ended']
        changes = task_changes(control, sid, self.seq)
        left = next((e['time'] for e in changes
                     if e['old'] == 'image_snapshot'), None)
        proof = next((e['time'] for e in control.log(
            since=self.seq, resource_id=capture['image_id'])
            if e['field'] == 'status' and e['new'] in PROOF_STATUSES),
            None)
        rows = _json_rows(self.watch.lines)
        first_capture = rows[0][1].get('Capture') if rows else None
        safe = next((t for t, row in rows
                     if row.get('Capture') in ('complete', 'none')), None)
        # The JSON is complete when its last line is received.
        output = self.create.lines[-1][0] if self.create.lines else None

        def since_end(moment):
            return None if moment is None else round(moment - ended, 3)
        return {
            'model': self.model,
            'copy_s': round(ended - capture['started'], 3),
            'task_state_left_image_snapshot_s': since_end(left),
            'proof_s': since_end(proof),
            'wait_phase_rc': self.create.returncode,
            'wait_phase_output_s': since_end(output),
            'wait_phase_exit_s': since_end(self.create.ended),
            'watch_rc': self.watch.returncode,
            'watch_first_capture': first_capture,
            'watch_row_s': since_end(safe),
            'watch_exit_s': since_end(self.watch.ended),
        }


def _delay_batch(control, env, batch):
    """Run one trial per (order, sid, name, model, copy length)."""
    trials = []
    try:
        for order, sid, name, model, length in batch:
            durations = dict(DELAY_DURATIONS)
            durations[COPY_DURATION[order]] = length
            # Durations are read when a step starts: set each server's
            # copy length just before its release (see below).
            trials.append((order, durations, _DelayTrial(
                control, env, sid, name, model)))
        for _order, _durations, trial in trials:
            trial.start_watch()
        for _order, _durations, trial in trials:
            trial.wait_ready()
    except Exception:
        for _order, _durations, trial in trials:
            trial.abort()
        raise
    results = []
    for index, (order, durations, trial) in enumerate(trials):
        try:
            control.configure(durations=durations)
            results.append((order, trial.finish()))
        except Exception:
            for _o, _d, rest in trials[index:]:
                rest.abort()
            raise
    return results


def _delay_summary(trials):
    out = {}
    for model in MODELS:
        runs = [t for t in trials if t['model'] == model]
        if not runs:
            continue
        ok = [t for t in runs if t['wait_phase_rc'] == 0]
        # A watch whose first row already was past the capture started
        # too late; it is left out of the watch figures.
        watched = [t for t in runs if t['watch_rc'] == 0
                   and t['watch_first_capture'] not in ('complete', 'none')]
        item = {'runs': len(runs),
                'wait_phase_failed': len(runs) - len(ok),
                'watch_left_out': len(runs) - len(watched)}
        for metric in DELAY_METRICS:
            source = ok if metric.startswith('wait_phase') else watched
            item[metric] = _stats([t[metric + '_s'] for t in source
                                   if t[metric + '_s'] is not None])
        out[model] = item
    proof = [t['proof_s'] for t in trials if t['proof_s'] is not None]
    lead = [-t['task_state_left_image_snapshot_s'] for t in trials
            if t['task_state_left_image_snapshot_s'] is not None]
    out['image_proof_after_copy_end'] = _stats(proof)
    # How long before the true copy end the task state left
    # image_snapshot (negative: after it), and what the seed article's
    # 45 s poll would say from the copy end: uniform on [0, 45) after the
    # task state left image_snapshot, minus that lead.
    out['task_state_lead_s'] = _stats(lead)
    lead_median = median(lead) or 0.0
    out['seed_45s_poll_model'] = {
        'median_s': rnd(SEED_INTERVAL * 0.5 - lead_median),
        'p95_s': rnd(SEED_INTERVAL * 0.95 - lead_median),
        'share_before_copy_end': rnd(
            min(1.0, max(0.0, lead_median) / SEED_INTERVAL), 4)}
    return out


def bench_delay(opts):
    runs = opts.delay_runs or (5 if opts.quick else 30)
    old_runs = opts.delay_old_runs or (3 if opts.quick else 10)
    orders = [o.strip() for o in (opts.delay_orders or ','.join(
        DELAY_ORDERS)).split(',') if o.strip()]
    unknown = set(orders) - set(COPY_DURATION)
    if unknown:
        raise ValueError('unknown orders: %s' % ', '.join(sorted(unknown)))
    rng = random.Random(6)
    out = {'method': 'delays from the true end of the disk copy '
                     '(simulator captures()[0].ended), signed',
           'durations': DELAY_DURATIONS, 'runs': runs, 'old_runs': old_runs,
           'orders': {}}
    # The 1-minute load average every 15 s, for the record.
    loads, stop = [], threading.Event()

    def sample():
        while not stop.wait(0 if not loads else 15):
            loads.append(round(os.getloadavg()[0], 2))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _delay_runs(opts, out, orders, runs, old_runs, rng)
    finally:
        stop.set()
        sampler.join(5)
    out['loadavg_1min'] = {'samples': loads, 'median': median(loads),
                           'max': max(loads) if loads else None}
    core = out['core_wait']['runs']
    out['summary'] = {
        'orders': {order: item['summary']
                   for order, item in out['orders'].items()},
        'seed_45s_poll_model': {'median_s': SEED_INTERVAL * 0.5,
                                'p95_s': SEED_INTERVAL * 0.95},
        'core_wait': {'n': len(core), 'median_s': rnd(median(
            [c['delay_s'] for c in core]))},
    }
    return out


def _delay_runs(opts, out, orders, runs, old_runs, rng):
    with simulator(DELAY_DURATIONS) as sim:
        control = sim.control
        env = cli_env(sim)
        plans = {}
        for order in orders:
            sid = control.create_server('bench-delay-' + order,
                                        driver=order)['id']
            # Models interleaved in a shuffled order; the copy lasts 0.6
            # to 1.6 s, varied so that its end falls anywhere in the
            # polling interval.
            plan = ['image-status'] * runs + ['xenserver'] * old_runs
            rng.shuffle(plan)
            plans[order] = [(order, sid, 'delay-%s-%d' % (order, index),
                             model, round(rng.uniform(0.6, 1.6), 3))
                            for index, model in enumerate(plan)]
            out['orders'][order] = {'trials': []}
        rounds = max(len(plan) for plan in plans.values())
        for index in range(rounds):
            batch = [plans[order][index] for order in orders
                     if index < len(plans[order])]
            for order, trial in _delay_batch(control, env, batch):
                out['orders'][order]['trials'].append(trial)
                log('delay %d/%d %s %s: copy %.2fs wait-phase %s watch %s'
                    % (index + 1, rounds, order, trial['model'],
                       trial['copy_s'], trial['wait_phase_output_s'],
                       trial['watch_row_s']))
        for order, item in out['orders'].items():
            item['summary'] = _delay_summary(item['trials'])
        # Core --wait on a few creates: returns after the upload.
        core_runs = 1 if opts.quick else 3
        upload = 2.0 if opts.quick else 10.0
        durations = dict(DELAY_DURATIONS)
        durations['uploading'] = upload
        control.configure(durations=durations)
        sid = control.create_server('bench-core', driver='libvirt-file')['id']
        core = []
        for index in range(core_runs):
            seq = last_seq(control)
            known = len(control.captures(sid))
            proc = run(os_cmd('server', 'image', 'create', sid, '--name',
                              'core-%d' % index, '--wait', '-f', 'json'),
                       env, timeout=300)
            wait_idle(control, sid)
            ended = control.captures(sid)[known]['ended']
            idle = next(e['time'] for e in task_changes(control, sid, seq)
                        if e['new'] is None)
            core.append({'rc': proc.returncode,
                         'delay_s': round(proc.ended - ended, 3),
                         'after_upload_end_s': round(proc.ended - idle, 3)})
            log('core --wait %d: %.3fs after the copy end' % (
                index + 1, core[-1]['delay_s']))
        out['core_wait'] = {'runs': core, 'order': 'libvirt-file',
                            'uploading_s': upload}


# -- 3. API load ------------------------------------------------------------

def _connect(sim):
    import openstack.config
    import openstack.connection
    config = openstack.config.OpenStackConfig(
        config_files=[sim.clouds_yaml])
    region = config.get_one(cloud=sim.cloud_name)
    return openstack.connection.Connection(config=region)


def _count(requests, start, end, exclude=()):
    counts = {}
    for entry in requests:
        if start <= entry['time'] < end and entry['key'] not in exclude:
            service = entry['service'] or 'other'
            counts[service] = counts.get(service, 0) + 1
    return counts


def _tokens(requests):
    return sum(1 for e in requests if TOKEN_KEY_RE.match(e['key']))


def bench_phase_load(opts):
    """Requests per minute of a default watch through every phase."""
    if opts.quick:
        idle, durations = 3.0, {'pending': 0.3, 'snapshot': 3.0,
                                'pending_upload': 1.5, 'uploading': 3.0}
    else:
        idle, durations = 20.0, {'pending': 0.5, 'snapshot': 8.0,
                                 'pending_upload': 4.0, 'uploading': 40.0}
    with simulator(durations) as sim:
        control = sim.control
        server = control.create_server('bench-load')
        sid = server['id']
        conn = _connect(sim)
        conn.compute.get_server(sid)     # authenticate before the reset
        control.reset_requests()
        watch = Proc(os_cmd('server', 'task-state', 'watch', sid,
                            '--stream', '-f', 'json'),
                     cli_env(sim), stdout=subprocess.PIPE).start_waiter()
        first, _text = wait_line(watch, 1)
        time.sleep(idle)
        seq = last_seq(control)
        t_create = time.time()
        conn.compute.create_server_image(sid, 'load-image')
        t_created = time.time()
        wait_idle(control, sid, timeout=durations['uploading'] + 60)
        time.sleep(idle)
        t_stop = time.time()
        os.kill(watch.pid, 15)
        watch.wait()
        reqs = control.requests()['requests']
        changes = task_changes(control, sid, seq)
        at = {}
        for entry in changes:
            at.setdefault(entry['new'], entry['time'])
        windows = {
            'idle': [(first, t_create), (at[None], t_stop)],
            'disk-capture': [(at['image_snapshot_pending'],
                              at['image_pending_upload'])],
            'packaging': [(at['image_pending_upload'],
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
            'token_requests': _tokens(reqs),
            'startup_requests': len(startup),
            'per_phase': per_phase,
            'total_requests': len(reqs) - len(own),
        }


def schedule_model(capture=10.0, packaging=5.0, upload=600.0):
    """Requests of a default watch --until idle over a scripted operation.

    The engine itself (engine.Watch, the default adaptive schedule) with a
    fake clock and a scripted fetch: no simulator, no real sleep. It counts
    the fetches (one request each) and the image lookups the engine asks
    for over capture + packaging + a long upload.
    """
    from osc_snapphase import conditions
    from osc_snapphase import engine
    from osc_snapphase import records
    now = [0.0]
    script = [(0.5, 'image_snapshot_pending'), (capture, 'image_snapshot'),
              (capture + packaging, 'image_pending_upload'),
              (capture + packaging + upload, 'image_uploading')]
    calls = {'fetch': 0, 'image_get': 0, 'image_latest': 0}

    def task_state():
        for end, state in script:
            if now[0] < end:
                return state
        return None

    def fetch(ids):
        calls['fetch'] += 1
        return {ids[0]: records.ServerState(ids[0], 'model', 'ACTIVE',
                                            'active', task_state(), 1)}

    done = capture + packaging + upload

    class Images:
        @staticmethod
        def get(image_id):
            calls['image_get'] += 1
            return records.ImageState(image_id, 'model', 'active'
                                      if now[0] >= done else 'saving', False)

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
    return {'capture_s': capture, 'packaging_s': packaging,
            'upload_s': upload, 'outcome': watch.outcome.kind,
            'watch_s': round(now[0], 1), 'polls': watch.polls,
            'requests': sum(calls.values()), 'calls': calls}


def bench_wait_phase_tokens(opts):
    durations = {'pending': 0.3, 'snapshot': 1.0, 'pending_upload': 0.5,
                 'uploading': 2.0}
    with simulator(durations) as sim:
        control = sim.control
        sid = control.create_server('bench-tokens')['id']
        control.reset_requests()
        proc = run(os_cmd('server', 'image', 'create', sid, '--name',
                          'tokens', '--wait-phase', 'upload', '-f', 'json'),
                   cli_env(sim))
        reqs = control.requests()
        return {'rc': proc.returncode, 'token_requests': _tokens(
            reqs['requests']), 'requests': reqs['counts']}


def _n_watch(count, duration, sims):
    """Start a watch of count idle servers on a fresh simulator."""
    sim = simulator()
    fixture = sim.__enter__()
    sims.append(sim)
    control = fixture.control
    servers = control.create_servers(count, prefix='n%d-' % count)
    control.reset_requests()
    ids = [s['id'] for s in servers]
    proc = Proc(os_cmd('server', 'task-state', 'watch', *ids,
                       '--timeout', str(duration), '-f', 'value'),
                cli_env(fixture), stdout=subprocess.PIPE).start_waiter()
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
        'token_requests': _tokens(reqs),
        'resolve_requests': by_id if count > 1 else 1,
        'poll_requests': polls,
        'by_route': counts,
    }


# -- 4. cost of a long watch -------------------------------------------------

def _status_rss_kib():
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return None


def bench_load_and_cpu(opts):
    """API load with N=1/10/50 and the CPU of an idle watch, side by side."""
    duration = 8.0 if opts.quick else 40.0
    cpu_minutes = 1 / 6.0 if opts.quick else 1.0
    sims = []
    procs = []
    hangs = []
    try:
        runs = [(n,) + _n_watch(n, duration, sims) for n in (1, 10, 50)]
        procs.extend(proc for _n, _fx, proc in runs)
        # The CPU watch: one idle server, its own simulator, defaults.
        cpu_sim = simulator()
        fixture = cpu_sim.__enter__()
        sims.append(cpu_sim)
        sid = fixture.control.create_server('bench-cpu')['id']
        watch = None
        for attempt in (1, 2):
            env = dict(cli_env(fixture), PYTHONFAULTHANDLER='1')
            watch = Proc(os_cmd('server', 'task-state', 'watch', sid,
                                '-f', 'value'),
                         env, stdout=subprocess.PIPE).start_waiter()
            procs.append(watch)
            try:
                wait_line(watch, 1)
                break
            except RuntimeError:
                # A guard: before f50f504 watch -f value did not flush its
                # rows, so through this pipe (without PYTHONUNBUFFERED) the
                # first row stayed in the buffer. If a row is ever missing
                # again, ask faulthandler where it is, keep that (in
                # cost.hangs_before_first_row), try once more.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(watch.pid, 6)
                watch.wait()
                hangs.append(watch.stderr_tail())
                log('idle watch printed nothing in 120 s (attempt %d): %s'
                    % (attempt, hangs[-1][-600:]))
                if attempt == 2:
                    raise
        c0, t0 = watch.proc_cpu(), time.monotonic()
        time.sleep(cpu_minutes * 60)
        c1, t1 = watch.proc_cpu(), time.monotonic()
        os.kill(watch.pid, 15)
        watch.wait()
        for n, _fixture, proc in runs:
            proc.wait()
        scaling = [_n_result(fx, proc, n) for n, fx, proc in runs]
        cpu = {
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
        env = cli_env(fixture)
        rss = {'watch_once': [], 'server_show': []}
        for _ in range(2 if opts.quick else 5):
            proc = run(os_cmd('server', 'task-state', 'watch', sid,
                              '--until', 'idle', '-f', 'json'), env)
            rss['watch_once'].append(proc.maxrss_kib)
            proc = run(os_cmd('server', 'show', sid, '-f', 'json'), env)
            rss['server_show'].append(proc.maxrss_kib)
        show = median(rss['server_show'])
        cpu['rss'] = {
            'server_show_median_kib': show,
            'watch_once_median_kib': median(rss['watch_once']),
            'watch_long_kib': cpu['maxrss_kib'],
            'ratio_watch_once': rnd(median(rss['watch_once']) / show),
            'ratio_watch_long': rnd(cpu['maxrss_kib'] / show),
            'samples': rss,
        }
    finally:
        for proc in procs:
            if proc.returncode is None:
                _kill(proc)
        for sim in reversed(sims):
            sim.__exit__(None, None, None)
    return {'watch_duration_s': duration, 'servers': scaling}, cpu


# -- child processes: soak and scale (Python API, sleep that doesn't) -------

def child_soak(args):
    from osc_snapphase import cloud
    from osc_snapphase import engine
    from osc_snapphase import records
    from osc_snapphase.simulator import client
    conn = _connect_files(args.clouds_yaml, args.cloud)
    control = client.ControlClient(args.control_url)
    server = cloud.find_server(conn.compute, args.server)
    marks = sorted(set(int(m) for m in args.marks.split(',')))
    samples = {}
    rows = [0]

    def on_poll(watch):
        if watch.polls % 250 == 0:
            # A change now and then, so rows go through the whole path.
            control.set_server_state(
                server.id, power_state=4 if watch.polls % 500 else 1)
        if watch.polls in marks:
            samples[watch.polls] = _status_rss_kib()
        if watch.polls >= marks[-1]:
            watch.stop(engine.INTERRUPTED, 'soak done')
    watch = engine.Watch(
        cloud.ServerFetcher(conn.compute),
        [records.Track(server.id, server.name)],
        images=cloud.ImageLookup(conn.image), interval=0.2,
        sleep=lambda seconds: None, on_poll=on_poll)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _change in watch:
        rows[0] += 1
    json.dump({'polls': watch.polls, 'rows': rows[0],
               'rss_kib': {str(k): v for k, v in samples.items()},
               'wall_s': round(time.perf_counter() - t0, 2),
               'cpu_s': round(time.process_time() - c0, 2)}, sys.stdout)
    return 0


def child_scale(args):
    from osc_snapphase import cloud
    from osc_snapphase import engine
    from osc_snapphase import records
    conn = _connect_files(args.clouds_yaml, args.cloud)
    ids = args.server.split(',')
    tracks = [records.Track(i) for i in ids]
    fetch = cloud.ServerFetcher(conn.compute)
    if args.raw:
        fetch = _raw_fetcher(conn.compute, records)
    fetch(ids)              # warm-up: token, endpoint discovery
    times = []

    def on_poll(watch):
        times.append((time.perf_counter(), time.process_time()))
        if watch.polls >= args.polls:
            watch.stop(engine.INTERRUPTED, 'done')
    watch = engine.Watch(fetch, tracks, interval=0.2,
                         sleep=lambda seconds: None, on_poll=on_poll)
    start = (time.perf_counter(), time.process_time())
    for _change in watch:
        pass
    points = [start] + times
    walls = [b[0] - a[0] for a, b in zip(points, points[1:])]
    cpus = [b[1] - a[1] for a, b in zip(points, points[1:])]
    json.dump({'polls': watch.polls, 'wall_per_poll_s': walls,
               'cpu_per_poll_s': cpus,
               'cpu_total_s': sum(cpus)}, sys.stdout)
    return 0


def _raw_fetcher(compute, records):
    """A candidate request shape: one GET /servers/detail, read as JSON.

    Not the product's: the benchmark compares it with ServerFetcher, which
    builds an openstacksdk Server object for every listed server. (It does
    not follow pagination links; fine for the 500 servers here.)
    """
    def fetch(server_ids):
        wanted = set(server_ids)
        response = compute.get('/servers/detail')
        states = {}
        for body in response.json()['servers']:
            if body['id'] in wanted:
                fault = body.get('fault') or {}
                states[body['id']] = records.ServerState(
                    body['id'], body.get('name'), body.get('status'),
                    body.get('OS-EXT-STS:vm_state'),
                    body.get('OS-EXT-STS:task_state'),
                    body.get('OS-EXT-STS:power_state'),
                    fault.get('message'))
        return states
    return fetch


def _connect_files(clouds_yaml, cloud_name):
    import openstack.config
    import openstack.connection
    config = openstack.config.OpenStackConfig(config_files=[clouds_yaml])
    return openstack.connection.Connection(
        config=config.get_one(cloud=cloud_name))


def _child(sim, mode, server, extra):
    cmd = [sys.executable, os.path.abspath(__file__), '--child', mode,
           '--clouds-yaml', sim.clouds_yaml, '--cloud', sim.cloud_name,
           '--control-url', sim.control_url, '--server', server] + extra
    env = base_env()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError('%s child failed: %s' % (mode, out.stderr[-2000:]))
    return json.loads(out.stdout)


def _sim_cpu(sim):
    with open('/proc/%d/stat' % sim.pid) as stream:
        fields = stream.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Soak(threading.Thread):
    """The soak, in the background while other sections run.

    At about 50 ms per simulator request, 10,000 polls take minutes that
    are mostly spent waiting.
    """

    def __init__(self, opts):
        super().__init__(daemon=True)
        self.opts = opts
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = bench_soak(self.opts)
        except Exception as exc:    # reported in the results
            self.error = repr(exc)


def bench_soak(opts):
    marks = ([100, 250, 500, 1000] if opts.quick
             else [100, 1000, 5000, 10000])
    with simulator() as sim:
        sid = sim.control.create_server('bench-soak')['id']
        result = _child(sim, 'soak', sid,
                        ['--marks', ','.join(str(m) for m in marks)])
    rss = result['rss_kib']
    first = str(marks[1])
    result['growth_kib'] = rss[str(marks[-1])] - rss[first]
    result['growth_from'] = int(first)
    log('soak: %d polls in %.0f s' % (result['polls'], result['wall_s']))
    return result


def bench_scale(opts):
    polls = 3 if opts.quick else 30
    out = {}
    for count in (10, 100, 500):
        with simulator() as sim:
            servers = sim.control.create_servers(count, prefix='s')
            ids = ','.join(s['id'] for s in servers)
            for variant, extra in (('sdk', []), ('raw_json', ['--raw'])):
                s0 = _sim_cpu(sim)
                result = _child(sim, 'scale', ids,
                                ['--polls', str(polls)] + extra)
                s1 = _sim_cpu(sim)
                walls = result['wall_per_poll_s'][1:]
                cpus = result['cpu_per_poll_s'][1:]
                out.setdefault(variant, {})[str(count)] = {
                    'polls': result['polls'],
                    'wall_per_poll_median_s': rnd(median(walls), 4),
                    'client_cpu_per_poll_s': rnd(sum(cpus) / len(cpus), 4),
                    'simulator_cpu_per_poll_s': rnd(
                        (s1 - s0) / result['polls'], 4),
                }
                log('scale %d %s: %.4fs/poll, client cpu %.4fs/poll' % (
                    count, variant,
                    out[variant][str(count)]['wall_per_poll_median_s'],
                    out[variant][str(count)]['client_cpu_per_poll_s']))
    for variant in ('sdk', 'raw_json'):
        base, top = out[variant]['10'], out[variant]['500']
        for key in ('wall_per_poll_median_s', 'client_cpu_per_poll_s'):
            ratio = top[key] / base[key]
            out[variant]['growth_' + key] = {
                'ratio_500_vs_10': rnd(ratio, 2),
                'server_ratio': 50,
                'exponent': rnd(math.log(ratio) / math.log(50), 2),
            }
    return out


# -- the table ---------------------------------------------------------------

def verdict(value, target, lower_is_better=True):
    if value is None:
        return 'n/a'
    ok = value <= target if lower_is_better else value >= target
    return 'ok' if ok else 'MISS'


def table(results):
    rows = []

    def add(section, metric, value, target='', status=''):
        rows.append((section, metric, str(value), str(target), status))
    startup = results.get('startup')
    if startup:
        for label, item in startup['commands'].items():
            add('startup', '%s (wall %.3f/%.3f s)' % (
                label, item['wall_with_median_s'],
                item['wall_without_median_s']),
                'ratio %.3f (cpu %.3f)' % (item['median_paired_ratio_wall'],
                                           item['median_paired_ratio_cpu']),
                '<= 1.02', verdict(item['median_paired_ratio_wall'], 1.02))
        imp = startup['importtime_us']
        add('startup', 'importtime osc_snapphase.plugin (+package)',
            '%s us' % imp['total_median'])
    delay = results.get('delay')
    if delay:
        s = delay['summary']
        labels = (('wait_phase_output', '--wait-phase snapshot JSON'),
                  ('wait_phase_exit', '--wait-phase snapshot exit'),
                  ('watch_row', 'watch --until disk-safe row'),
                  ('watch_exit', 'watch --until disk-safe exit'))
        for order, item in s['orders'].items():
            add('delay', '%s: image proof after the copy end, median' % order,
                '%+.3f s' % item['image_proof_after_copy_end']['median_s'])
            for model in MODELS:
                if model not in item:
                    continue
                for key, label in labels:
                    fig = item[model][key]
                    if not fig['n']:
                        add('delay', '%s %s %s' % (order, model, label),
                            'no runs')
                        continue
                    target = ('<= 0.3 / 0.8 s' if model == 'image-status'
                              and key in ('wait_phase_output', 'watch_row')
                              else '')
                    mark = ''
                    if target:
                        mark = '%s/%s' % (
                            verdict(fig['median_s'], 0.3),
                            verdict(fig['p95_s'], 0.8))
                    add('delay', '%s, %s model: %s, median / p95 (n=%d, '
                        '%d before the copy end)' % (
                            order, model, label, fig['n'],
                            fig['before_copy_end']),
                        '%+.3f / %+.3f s' % (fig['median_s'],
                                             fig['p95_s']), target, mark)
            seed = item['seed_45s_poll_model']
            add('delay', '%s: seed script, 45 s poll (model) median / p95 '
                '(share before the copy end)' % order,
                '%+.1f / %+.1f s (%.3f)' % (
                    seed['median_s'], seed['p95_s'],
                    seed['share_before_copy_end']))
        add('delay', 'seed script, 45 s poll (model) median / p95 after '
            'the task state left image_snapshot',
            '%.1f / %.1f s' % (s['seed_45s_poll_model']['median_s'],
                               s['seed_45s_poll_model']['p95_s']))
        add('delay', 'core --wait (n=%d, upload %gs) median' % (
            s['core_wait']['n'], delay['core_wait']['uploading_s']),
            '%.3f s' % s['core_wait']['median_s'])
    load = results.get('load')
    if load:
        for phase, item in load['phases']['per_phase'].items():
            add('load', 'watch req/min/server, %s (%gs)' % (
                phase, item['seconds']), item['requests_per_minute'])
        model = load['schedule_model']
        add('load', 'model: watch --until idle, %gs capture + %gs packaging '
            '+ %gs upload' % (model['capture_s'], model['packaging_s'],
                              model['upload_s']),
            '%d requests' % model['requests'], 'a few hundred')
        add('load', 'token requests per watch run',
            load['phases']['token_requests'], '== 1',
            'ok' if load['phases']['token_requests'] == 1 else 'MISS')
        add('load', 'token requests per --wait-phase run',
            load['wait_phase_tokens']['token_requests'], '== 1',
            'ok' if load['wait_phase_tokens']['token_requests'] == 1
            else 'MISS')
        servers = load['servers']['servers']
        polls = [s['poll_requests'] for s in servers]
        add('load', 'N=1/10/50 watch %gs: poll requests' % load[
            'servers']['watch_duration_s'], '/'.join(map(str, polls)),
            'independent of N',
            'ok' if max(polls) - min(polls) <= 1 else 'MISS')
        add('load', 'N=1/10/50: all requests (incl. start-up)',
            '/'.join(str(s['total_requests']) for s in servers))
    cost = results.get('cost')
    if cost:
        add('cost', 'CPU per minute, idle watch (%gs)' % cost['watched_s'],
            '%.3f s/min' % cost['cpu_s_per_minute'], '<= 0.6',
            verdict(cost['cpu_s_per_minute'], 0.6))
        rss = cost['rss']
        add('cost', 'peak RSS watch(once)/server show', '%.3f (%d/%d KiB)' % (
            rss['ratio_watch_once'], rss['watch_once_median_kib'],
            rss['server_show_median_kib']), '<= 1.1',
            verdict(rss['ratio_watch_once'], 1.1))
        add('cost', 'peak RSS long watch/server show', '%.3f' % (
            rss['ratio_watch_long']), '<= 1.1',
            verdict(rss['ratio_watch_long'], 1.1))
    soak = results.get('soak')
    if soak and 'error' in soak:
        add('soak', 'failed', soak['error'])
    elif soak:
        add('soak', 'RSS at %s polls' % '/'.join(soak['rss_kib']),
            '/'.join(str(v) for v in soak['rss_kib'].values()) + ' KiB')
        add('soak', 'RSS growth %d -> %d polls' % (
            soak['growth_from'], soak['polls']),
            '%d KiB' % soak['growth_kib'], 'no growth',
            'ok' if soak['growth_kib'] <= 256 else 'MISS')
    scale = results.get('scale')
    if scale:
        for variant, label in (('sdk', 'product'),
                               ('raw_json', 'raw JSON (candidate)')):
            for count in ('10', '100', '500'):
                item = scale[variant][count]
                add('scale', '%s, %s servers: wall / client CPU / sim CPU '
                    'per poll' % (label, count), '%.4f / %.4f / %.4f s' % (
                        item['wall_per_poll_median_s'],
                        item['client_cpu_per_poll_s'],
                        item['simulator_cpu_per_poll_s']))
            for key, name in (('wall_per_poll_median_s', 'wall'),
                              ('client_cpu_per_poll_s', 'client CPU')):
                growth = scale[variant]['growth_' + key]
                add('scale', '%s, %s per poll, 500 vs 10 servers' % (
                    label, name),
                    'x%.2f (exponent %.2f)' % (growth['ratio_500_vs_10'],
                                               growth['exponent']),
                    '<= x50 (exp <= 1)',
                    verdict(growth['exponent'], 1.0))
    widths = [max(len(r[i]) for r in rows + [('section', 'metric', 'value',
                                             'target', '')])
              for i in range(5)]
    lines = []
    header = ('section', 'metric', 'value', 'target', '')
    for row in [header] + rows:
        lines.append('  '.join(c.ljust(w) for c, w in zip(row, widths))
                     .rstrip())
    return '\n'.join(lines)


def machine():
    model = None
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as stream:
            for line in stream:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    load = os.getloadavg()
    return {'nproc': os.cpu_count(), 'cpu_model': model,
            'python': platform.python_version(),
            'platform': platform.platform(),
            'loadavg_at_start': [round(v, 2) for v in load]}


def versions():
    import importlib.metadata as md
    out = {}
    for name in ('python-openstackclient', 'openstacksdk', 'osc-lib',
                 'cliff', 'keystoneauth1', 'stevedore', 'osc-snapphase'):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='osc-snapphase benchmarks against the simulator')
    parser.add_argument('--quick', action='store_true',
                        help='fewer, shorter runs (under 2 minutes)')
    parser.add_argument('--output', help='write the figures as JSON here')
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help='comma-separated subset of %s' % (SECTIONS,))
    parser.add_argument('--delay-runs', type=int,
                        help='delay section: runs per order with the '
                             'default capture model (30; --quick 5)')
    parser.add_argument('--delay-old-runs', type=int,
                        help='delay section: runs per order with the '
                             'xenserver (seed) model (10; --quick 3)')
    parser.add_argument('--delay-orders',
                        help='delay section: comma-separated driver '
                             'orders (default %s)' % ','.join(DELAY_ORDERS))
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--clouds-yaml', help=argparse.SUPPRESS)
    parser.add_argument('--cloud', help=argparse.SUPPRESS)
    parser.add_argument('--control-url', help=argparse.SUPPRESS)
    parser.add_argument('--server', help=argparse.SUPPRESS)
    parser.add_argument('--marks', help=argparse.SUPPRESS)
    parser.add_argument('--polls', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--raw', action='store_true', help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child == 'soak':
        return child_soak(opts)
    if opts.child == 'scale':
        return child_scale(opts)
    sections = [s.strip() for s in opts.sections.split(',') if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error('unknown sections: %s' % ', '.join(sorted(unknown)))
    if not os.path.exists(OPENSTACK):
        parser.error('no openstack executable next to %s' % sys.executable)
    started = time.monotonic()
    results = {
        'mode': 'quick' if opts.quick else 'full',
        'started_at': datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec='seconds'),
        'machine': machine(),
        'versions': versions(),
        'sections': sections,
    }
    failed = []

    def section(name, func, *args):
        try:
            return func(*args)
        except Exception as exc:
            log('%s failed: %r' % (name, exc))
            failed.append(name)
            results.setdefault('errors', {})[name] = repr(exc)
            return None
    if 'startup' in sections:
        log('start-up overhead')
        results['startup'] = section('startup', bench_startup, opts)
    soak = None
    if 'cost' in sections:
        # In the background from here on: after the start-up section (the
        # most load-sensitive ratios), next to the others. The soak child
        # uses about 0.1 of a core (it mostly waits for the simulator).
        log('soak (in the background)')
        soak = Soak(opts)
        soak.start()
    if 'delay' in sections:
        log('capture-end detection delay')
        results['delay'] = section('delay', bench_delay, opts)
    if 'load' in sections or 'cost' in sections:
        log('API load and CPU of an idle watch')
        load = {'phases': section('load', bench_phase_load, opts),
                'schedule_model': schedule_model(),
                'wait_phase_tokens': section('load', bench_wait_phase_tokens,
                                             opts)}
        both = section('cost', bench_load_and_cpu, opts)
        load['servers'], cost = both or (None, None)
        if None in (load['phases'], load['wait_phase_tokens'],
                    load['servers']):
            load = None
        results['load'] = load
        results['cost'] = cost
    if 'scale' in sections:
        log('scale')
        results['scale'] = section('scale', bench_scale, opts)
    if soak is not None:
        soak.join()
        results['soak'] = soak.result or {'error': soak.error}
    results['wall_time_s'] = round(time.monotonic() - started, 1)
    results['machine']['loadavg_at_end'] = [
        round(v, 2) for v in os.getloadavg()]
    text = table(results)
    print(text)
    print('\n%s run: %.0f s wall' % (results['mode'],
                                     results['wall_time_s']))
    results['table'] = text
    if failed:
        print('failed sections: %s' % ', '.join(failed))
    if opts.output:
        with open(opts.output, 'w') as stream:
            json.dump(results, stream, indent=1, sort_keys=False)
            stream.write('\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
