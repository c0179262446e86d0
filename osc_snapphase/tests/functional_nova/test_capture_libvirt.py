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

"""The disk capture of nova's own LibvirtDriver, seen with ``openstack``.

Each test boots a server on a real Nova whose compute runs
``LibvirtDriver`` over fakelibvirt (:mod:`.libvirt`), holds the disk copy
of one ``createImage`` until the test releases it, and checks with the real
``openstack`` executable that:

(a) ``server image create --wait-phase snapshot`` returns only after the
    copy's point in time, the end of the copy and the moment the Glance
    double turned the image ``saving`` (``active`` for an RBD direct
    snapshot, which never goes ``saving``), on the first poll that shows
    it: after that moment the CLI read each path at most once (besides
    the image read that prints it), so it polled no more;
(b) ``server task-state watch --until disk-safe`` does likewise;
(c) ``server task-state show`` run while the copy is held says
    ``disk_writes_safe: false`` and capture ``in-progress`` (or
    ``not-started``).

Every moment is the driver's or Glance's own ``time.time()`` record; a
CLI "returns" when its stdout holds its complete JSON answer (as in the
functional suite; the interpreter's exit is reported too).  Each CLI's
requests are told apart by its token and counted by arrival: a request in
flight at the Glance change (arrived before it) is not one after it.  No
wall-clock bound: the latencies (also from the answer then in flight) are
reported as details, the figure is the benchmark's
(``osc_snapphase/tests/bench``, delay section).  The uploads of the
file-based paths are held until both CLIs have exited, so a CLI that
waited for ``active`` instead of ``saving`` cannot pass.

Set ``OSC_SNAPPHASE_CAPTURE_TIMINGS=<file>`` to append the measured
latencies of each run to that file.
"""

import collections
import json
import os
import time

import testtools
from testtools import content

from osc_snapphase.tests.functional_nova import base
from osc_snapphase.tests.functional_nova import libvirt
from osc_snapphase.tests import output

IMAGE_CREATE = ('server', 'image', 'create')
#: How long the test waits for a CLI once the copy is released.
CLI_WAIT = 45.0


class LibvirtCaptureTestCase(base.NovaTestCase):
    """A real Nova whose compute is nova's LibvirtDriver on ``BACKEND``."""

    BACKEND = None
    #: the Glance status that proves the capture: 'saving' or 'active'
    PROOF = 'saving'

    def setUp(self):
        # NovaTestCase.setUp with the libvirt variant of the cloud.
        testtools.TestCase.setUp(self)
        self.use_test_timeout()
        self.cloud = self.useFixture(libvirt.LibvirtNovaCloud(self.BACKEND))
        self.record = self.cloud.record
        self.addOnException(self._attach_nova_log)
        self.addOnException(self._attach_record)
        # No require(): these commands exist; each --help probe would cost
        # an openstack start (seconds on a loaded machine).

    def _attach_record(self, exc_info):
        self.addDetail('capture-record',
                       content.text_content(self.record.describe()))

    def start_cli(self, *args):
        proc = self.openstack_start(*args)
        proc.started_wall = time.time()
        return proc, output.AnswerClock(proc)

    def wait_running(self, clock, server_id, since, known_tokens):
        """Wait until a new CLI has polled the server twice, or ended."""
        self.wait_for(
            lambda: (clock.done.is_set() or self.cloud.server_reads(
                server_id, since, known_tokens) >= 2),
            timeout=base.WAIT,
            what='two polls of server %s by the watch' % server_id)

    def start_watch(self, server_id):
        """Start the watch (b) once the create CLI polls; wait its polls."""
        # The create CLI has POSTed createImage with its own token by now.
        since = time.time()
        known_tokens = self.cloud.tokens()
        watch, watch_clock = self.start_cli(
            'server', 'task-state', 'watch', 'vm1', '--until', 'disk-safe',
            '--timeout', '120', '-f', 'json')
        self.wait_running(watch_clock, server_id, since, known_tokens)
        return watch_clock, self.cloud.tokens() - known_tokens

    def run_capture(self):
        rec = self.record
        server_id = self.boot('vm1')
        t0 = time.time()
        create, create_clock = self.start_cli(
            *IMAGE_CREATE, 'vm1', '--name', 'snap1', '--wait-phase',
            'snapshot', '-f', 'json')
        bounce = None
        if 'bounce' in rec.enabled:
            # The watch runs across the bounce and the copy.
            rec.wait_reached('bounce')
            watch_clock, watch_tokens = self.start_watch(server_id)
            bounce = {
                'task_state': self.cloud.task_state(server_id),
                'image_status': [i['status']
                                 for i in self.images_of(server_id)],
                'shown': self.openstack_json('server', 'task-state', 'show',
                                             'vm1'),
                'create_answered': create_clock.output_at is not None,
                'watch_answered': watch_clock.output_at is not None,
            }
            self.assertTrue(rec.is_held('bounce'))
            rec.release('bounce')
            rec.wait_reached('copy')
        else:
            rec.wait_reached('copy')
            watch_clock, watch_tokens = self.start_watch(server_id)
        # (c) while the copy is held
        shown = self.openstack_json('server', 'task-state', 'show', 'vm1')
        self.assertTrue(rec.is_held('copy'), 'the copy was not held')
        held_task_state = self.cloud.task_state(server_id)
        image_status = [i['status'] for i in self.images_of(server_id)]

        rec.release('copy')
        for clock in (create_clock, watch_clock):
            clock.wait(CLI_WAIT)
        upload_held_at_exit = rec.is_held('upload')
        rec.release()
        for clock in (create_clock, watch_clock):
            self.assertTrue(clock.wait(CLI_WAIT), base.result_of(clock))
        self.cloud.wait_task_state(server_id, None)

        self.addDetail('capture-record',
                       content.text_content(rec.describe(t0)))
        action = '/v2.1/servers/%s/action' % server_id
        return {
            'server_id': server_id, 't0': t0, 'shown': shown,
            'bounce': bounce,
            'tokens': {'create': {self.cloud.token_of('POST', action)},
                       'watch': watch_tokens},
            'held_task_state': held_task_state,
            'held_image_status': image_status,
            'create': create_clock, 'watch': watch_clock,
            'upload_held_at_exit': upload_held_at_exit,
        }

    def check(self, run, failures=()):
        """(a), (b) and (c) against the driver's and Glance's record."""
        rec = self.record
        point = rec.get('point_in_time')
        ended = rec.get('copy_ended')
        proof = rec.get('glance_%s' % self.PROOF)
        self.assertIsNotNone(point, rec.describe())
        self.assertIsNotNone(ended, rec.describe())
        self.assertIsNotNone(proof, rec.describe())
        self.assertLessEqual(point, ended)
        self.assertLessEqual(ended, proof)

        shown = run['shown']
        failures = list(failures)
        # (c)
        if shown.get('disk_writes_safe') is not False:
            failures.append('(c) show during the copy: disk_writes_safe=%r'
                            % shown.get('disk_writes_safe'))
        if shown.get('capture') not in ('in-progress', 'not-started'):
            failures.append('(c) show during the copy: capture=%r'
                            % shown.get('capture'))

        timings = {}
        polls = {}
        cloud_answered = {}
        for label, key in (('(a) image create --wait-phase snapshot',
                            'create'),
                           ('(b) task-state watch --until disk-safe',
                            'watch')):
            clock = run[key]
            result = base.result_of(clock)
            answered_at = clock.output_at
            polls[key] = self.polls(run['tokens'][key], proof, answered_at)
            cloud_answered[key] = self.in_flight_until(run['tokens'][key],
                                                       proof)
            timings[key] = (answered_at - proof, clock.ended_at - proof,
                            answered_at - cloud_answered[key])
            if result.returncode != 0:
                failures.append('%s: exit status %s: %r'
                                % (label, result.returncode, result))
                continue
            if answered_at <= point:
                failures.append('%s returned %.3f s BEFORE the point in time'
                                % (label, point - answered_at))
            if answered_at <= ended:
                failures.append('%s returned %.3f s BEFORE the copy ended'
                                % (label, ended - answered_at))
            if answered_at < proof:
                failures.append('%s returned %.3f s before the image went %s'
                                % (label, proof - answered_at, self.PROOF))
            else:
                failures.extend(self.polled_after(
                    label, run['tokens'][key], proof,
                    output_reads=1 if key == 'create' else 0))
            out = result.json()
            row = out if key == 'create' else out[-1]
            capture = row.get('capture', row.get('Capture'))
            if capture != 'complete':
                failures.append('%s: capture=%r in %s'
                                % (label, capture, json.dumps(row)))
            if key == 'watch' and out[0].get('Capture') not in (
                    'in-progress', 'not-started'):
                failures.append('%s: the first row, polled during the held '
                                'capture, is %s' % (label, json.dumps(out[0])))
            if key == 'watch' and any(r.get('Capture') == 'complete'
                                      for r in out[:-1]):
                failures.append('%s: a row before the last says complete: '
                                '%s' % (label, json.dumps(out)))
        if self.PROOF == 'saving' and not run['upload_held_at_exit']:
            failures.append('the CLIs did not both return while the upload '
                            'was held (image saving)')
        self._report(run, point, ended, proof, timings, polls)
        if failures:
            self.fail('\n'.join(failures) + '\n\nrecord:\n' +
                      rec.describe(run['t0']) + '\n\nshow: ' +
                      json.dumps(shown) + '\n\n' + self._polls_text(polls))

    def in_flight_until(self, tokens, proof):
        """When the request a CLI was waiting on at ``proof`` came back.

        A CLI learns of the Glance status only from a request sent after
        it changed; if the (in-process, CPU-starved) cloud was still
        answering an earlier request then, the CLI could not know sooner.
        Reported with the raw latency (details only: the figure is the
        benchmark's, osc_snapphase/tests/bench, delay section).
        """
        ends = [end for token in tokens
                for start, end, _s, _m, _p in self.cloud.requests_of(
                    token, proof - 120.0, proof)
                if end > proof]
        return max([proof] + ends)

    def polled_after(self, label, tokens, proof, output_reads):
        """Failures if a CLI polled again after the proof.

        The poll that saw it reads each path once; ``--wait-phase`` reads
        the image once more to print it (``output_reads``); any more
        reads of a path arrived after the proof mean a later poll.
        """
        reads = collections.Counter(
            (service, path) for token in tokens
            for _start, _end, service, method, path in
            self.cloud.requests_of(token, proof) if method == 'GET')
        found = []
        for (service, path), count in sorted(reads.items()):
            most = 1
            if service == 'glance' and path.startswith('/v2/images/'):
                most += output_reads
            if count > most:
                found.append('%s read %s %s %d times after the image went '
                             '%s (at most %d: it did not answer on the '
                             'first poll that showed it)'
                             % (label, service, path, count, self.PROOF,
                                most))
        return found

    def polls(self, tokens, proof, answered_at):
        """A CLI's requests from 3 s before the proof to its answer."""
        found = []
        for token in tokens:
            found.extend(self.cloud.requests_of(token, proof - 3.0,
                                                answered_at))
        lines = ['%+7.3f..%+7.3f s  %s %s %s' % (
                 start - proof, end - proof, service, method, path)
                 for start, end, service, method, path in sorted(found)]
        lines.append('%+7.3f s  answered' % (answered_at - proof))
        return lines

    def _polls_text(self, polls):
        return '\n'.join(
            'requests of the %s CLI (relative to the Glance %s):\n  %s'
            % (key, self.PROOF, '\n  '.join(lines))
            for key, lines in sorted(polls.items()))

    def _report(self, run, point, ended, proof, timings, polls):
        t0 = run['t0']
        line = ('%s: point_in_time %+.3f s, copy_ended %+.3f s, glance %s '
                '%+.3f s; after %s: create answered %+.3f s (exited '
                '%+.3f s; %+.3f s after the answer in flight), watch '
                'answered %+.3f s (exited %+.3f s; %+.3f s after the answer '
                'in flight); held in %s (image %s); show: '
                'disk_writes_safe=%s capture=%s'
                % (self.BACKEND, point - t0, ended - t0, self.PROOF,
                   proof - t0, self.PROOF,
                   timings['create'][0], timings['create'][1],
                   timings['create'][2],
                   timings['watch'][0], timings['watch'][1],
                   timings['watch'][2],
                   run['held_task_state'],
                   run['held_image_status'],
                   run['shown'].get('disk_writes_safe'),
                   run['shown'].get('capture')))
        if run['bounce']:
            line += ('; during the held bounce (%s, image %s): '
                     'disk_writes_safe=%s capture=%s'
                     % (run['bounce']['task_state'],
                        run['bounce']['image_status'],
                        run['bounce']['shown'].get('disk_writes_safe'),
                        run['bounce']['shown'].get('capture')))
        self.addDetail('timings', content.text_content(line))
        self.addDetail('cli-requests',
                       content.text_content(self._polls_text(polls)))
        path = os.environ.get('OSC_SNAPPHASE_CAPTURE_TIMINGS')
        if path:
            with open(path, 'a') as f:
                f.write('%s %s\n%s\n%s\n'
                        % (self.id(), line, self.record.describe(t0),
                           self._polls_text(polls)))


class TestLiveFileBacked(LibvirtCaptureTestCase):
    """Live snapshot of a qcow2 disk: the mirror, then blockJobAbort.

    The "bounce" is held too: ``image_uploading`` is written, then nova's
    ``Image.direct_snapshot`` refuses (``NotImplementedError``) and the
    state goes back to ``image_pending_upload``; while it is held the image
    is ``queued`` and nothing has been copied yet.
    """

    BACKEND = 'file'

    def test_capture(self):
        self.record.enable('bounce')
        run = self.run_capture()
        times = self.record.times
        self.assertIn('extracted', times)
        self.assertNotIn('suspended', times)
        self.assertLess(times['direct_refused'], times['copy_started'])
        bounce = run['bounce']
        self.assertEqual('image_uploading', bounce['task_state'])
        self.assertEqual(['queued'], bounce['image_status'])
        failures = []
        if bounce['create_answered']:
            failures.append('(a) image create --wait-phase snapshot '
                            'answered during the image_uploading bounce '
                            '(image queued, nothing copied yet)')
        if bounce['watch_answered']:
            failures.append('(b) task-state watch --until disk-safe '
                            'answered during the image_uploading bounce')
        shown = bounce['shown']
        if (shown.get('disk_writes_safe') is not False or
                shown.get('capture') not in ('in-progress', 'not-started')):
            failures.append('(c) show during the image_uploading bounce: '
                            'disk_writes_safe=%r capture=%r'
                            % (shown.get('disk_writes_safe'),
                               shown.get('capture')))
        self.assertEqual('image_pending_upload', run['held_task_state'])
        self.assertEqual(['queued'], run['held_image_status'])
        self.check(run, failures)


class TestColdLVM(LibvirtCaptureTestCase):
    """images_type=lvm: managedSave, qemu-img convert of the LV, resume."""

    BACKEND = 'lvm'

    def test_capture(self):
        run = self.run_capture()
        times = self.record.times
        self.assertLess(times['suspended'], times['extract_started'])
        self.assertLess(times['extract_ended'], times['resumed'])
        self.assertEqual('image_pending_upload', run['held_task_state'])
        self.assertEqual(['queued'], run['held_image_status'])
        self.check(run)


class TestRBDDirect(LibvirtCaptureTestCase):
    """images_type=rbd: create_snap, clone and a held flatten."""

    BACKEND = 'rbd'
    PROOF = 'active'

    def test_capture(self):
        run = self.run_capture()
        times = self.record.times
        self.assertIn('rbd_clone', times)
        self.assertNotIn('glance_saving', times)
        self.assertNotIn('suspended', times)
        self.assertEqual('image_uploading', run['held_task_state'])
        self.assertEqual(['queued'], run['held_image_status'])
        self.check(run)


class TestRBDFallback(LibvirtCaptureTestCase):
    """images_type=rbd, direct snapshot refused: suspend and convert."""

    BACKEND = 'rbd-fallback'

    def test_capture(self):
        run = self.run_capture()
        times = self.record.times
        self.assertIn('direct_refused', times)
        self.assertNotIn('rbd_clone', times)
        self.assertLess(times['direct_refused'], times['suspended'])
        self.assertLess(times['extract_ended'], times['resumed'])
        self.assertEqual('image_pending_upload', run['held_task_state'])
        self.assertEqual(['queued'], run['held_image_status'])
        self.check(run)
