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

"""Capture-end detection delay per Nova driver order.

Delays from the true end of the disk copy (the simulator's capture
record), signed: ``--wait-phase snapshot`` and ``watch --until
disk-safe`` with the default capture model and the seed article's.
"""

import contextlib
import json
import random

from osc_snapphase.tests.bench import common

# The seed article's script polls every 45 s: the end of the disk capture
# falls anywhere in an interval, so the delay is uniform on [0, 45).
SEED_INTERVAL = 45.0

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
    return {'n': len(values), 'median_s': common.rnd(common.median(values)),
            'p95_s': common.rnd(common.percentile(values, 0.95)),
            'min_s': common.rnd(min(values) if values else None),
            'max_s': common.rnd(max(values) if values else None),
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
        self.seq = common.last_seq(control)
        self.known = len(control.captures(sid))
        self.watch = None
        control.hold('pending', sid)
        self.create = common.Proc(self.prefix + [
            'server', 'image', 'create', sid, '--name', name,
            '--wait-phase', 'snapshot', '-f', 'json'],
            env, pipe=True).start_waiter()

    def start_watch(self):
        self.control.wait_held('pending', self.sid, timeout=300)
        self.watch = common.Proc(self.prefix + [
            'server', 'task-state', 'watch', self.sid, '--until',
            'disk-safe', '--stream', '-f', 'json'],
            self.env, pipe=True).start_waiter()

    def wait_ready(self):
        common.wait_line(self.watch, 1, timeout=300)

    def abort(self):
        self.control.release('pending', self.sid)
        for proc in (self.create, self.watch):
            if proc is not None and proc.poll() is None:
                proc.kill()

    def finish(self):
        control, sid = self.control, self.sid
        control.release('pending', sid)
        self.create.wait()
        self.watch.wait()
        common.wait_idle(control, sid)
        captures = control.captures(sid)[self.known:]
        if len(captures) != 1 or captures[0]['ended'] is None:
            raise RuntimeError('%s: expected one ended copy, got %r'
                               % (self.name, captures))
        capture = captures[0]
        ended = capture['ended']
        changes = common.task_changes(control, sid, self.seq)
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
    lead_median = common.median(lead) or 0.0
    out['seed_45s_poll_model'] = {
        'median_s': common.rnd(SEED_INTERVAL * 0.5 - lead_median),
        'p95_s': common.rnd(SEED_INTERVAL * 0.95 - lead_median),
        'share_before_copy_end': common.rnd(
            min(1.0, max(0.0, lead_median) / SEED_INTERVAL), 4)}
    return out


def run(opts):
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
    with common.LoadSampler() as loads:
        _delay_runs(opts, out, orders, runs, old_runs, rng)
    out['loadavg_1min'] = loads.summary()
    core = out['core_wait']['runs']
    out['summary'] = {
        'orders': {order: item['summary']
                   for order, item in out['orders'].items()},
        'seed_45s_poll_model': {'median_s': SEED_INTERVAL * 0.5,
                                'p95_s': SEED_INTERVAL * 0.95},
        'core_wait': {'n': len(core), 'median_s': common.rnd(common.median(
            [c['delay_s'] for c in core]))},
    }
    return out


def _delay_runs(opts, out, orders, runs, old_runs, rng):
    with common.simulator(DELAY_DURATIONS) as sim:
        control = sim.control
        env = common.cli_env(sim)
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
                common.log('delay %d/%d %s %s: copy %.2fs wait-phase %s '
                           'watch %s' % (index + 1, rounds, order,
                                         trial['model'], trial['copy_s'],
                                         trial['wait_phase_output_s'],
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
            seq = common.last_seq(control)
            known = len(control.captures(sid))
            proc = common.run(['server', 'image', 'create', sid, '--name',
                               'core-%d' % index, '--wait', '-f', 'json'],
                              env, timeout=300)
            common.wait_idle(control, sid)
            ended = control.captures(sid)[known]['ended']
            idle = next(e['time'] for e in common.task_changes(
                control, sid, seq) if e['new'] is None)
            core.append({'rc': proc.returncode,
                         'delay_s': round(proc.ended - ended, 3),
                         'after_upload_end_s': round(proc.ended - idle, 3)})
            common.log('core --wait %d: %.3fs after the copy end' % (
                index + 1, core[-1]['delay_s']))
        out['core_wait'] = {'runs': core, 'order': 'libvirt-file',
                            'uploading_s': upload}


def rows(result):
    """Table rows: (metric, value, target, verdict)."""
    out = []

    def add(metric, value, target='', status=''):
        out.append((metric, value, target, status))
    s = result['summary']
    labels = (('wait_phase_output', '--wait-phase snapshot JSON'),
              ('wait_phase_exit', '--wait-phase snapshot exit'),
              ('watch_row', 'watch --until disk-safe row'),
              ('watch_exit', 'watch --until disk-safe exit'))
    for order, item in s['orders'].items():
        add('%s: image proof after the copy end, median' % order,
            '%+.3f s' % item['image_proof_after_copy_end']['median_s'])
        for model in MODELS:
            if model not in item:
                continue
            for key, label in labels:
                fig = item[model][key]
                if not fig['n']:
                    add('%s %s %s' % (order, model, label),
                        'no runs')
                    continue
                target = ('<= 0.3 / 0.8 s' if model == 'image-status'
                          and key in ('wait_phase_output', 'watch_row')
                          else '')
                mark = ''
                if target:
                    mark = '%s/%s' % (
                        common.verdict(fig['median_s'], 0.3),
                        common.verdict(fig['p95_s'], 0.8))
                add('%s, %s model: %s, median / p95 (n=%d, '
                    '%d before the copy end)' % (
                        order, model, label, fig['n'],
                        fig['before_copy_end']),
                    '%+.3f / %+.3f s' % (fig['median_s'],
                                         fig['p95_s']), target, mark)
        seed = item['seed_45s_poll_model']
        add('%s: seed script, 45 s poll (model) median / p95 '
            '(share before the copy end)' % order,
            '%+.1f / %+.1f s (%.3f)' % (
                seed['median_s'], seed['p95_s'],
                seed['share_before_copy_end']))
    add('seed script, 45 s poll (model) median / p95 after '
        'the task state left image_snapshot',
        '%.1f / %.1f s' % (s['seed_45s_poll_model']['median_s'],
                           s['seed_45s_poll_model']['p95_s']))
    add('core --wait (n=%d, upload %gs) median' % (
        s['core_wait']['n'], result['core_wait']['uploading_s']),
        '%.3f s' % s['core_wait']['median_s'])
    return out
