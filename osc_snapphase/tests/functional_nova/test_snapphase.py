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

"""osc-snapphase commands against the real Nova.

Each test skips while the command (or option) it needs is not installed, so
this module can be run while the commands are still being written.

The tests wait for events, never for a fixed time: a phase that a test
needs to observe is held by the driver (``plan.hold``) until the test has
seen the CLI read the server (Nova's HTTP log, :meth:`CLITestCase.
wait_cli_polls`) or until the CLI has ended; phases a test does not need
run at once.  No wall-clock bound is asserted.  The plans use the driver's
default order (copy unknown to the driver, image ``saving`` as the upload
starts), so under the default ``image-status`` capture model the disk
capture is proven when the ``upload`` phase begins.
"""

import time

from osc_snapphase.tests.functional_nova import base
from osc_snapphase.tests.functional_nova import driver

ORDER = ['image_snapshot_pending', 'image_snapshot', 'image_backup',
         'image_pending_upload', 'image_uploading', None]
SHOW_KEYS = {'id', 'name', 'status', 'vm_state', 'task_state',
             'power_state', 'phase', 'description', 'capture',
             'capture_evidence', 'capture_model', 'disk_writes_safe',
             'image_create_allowed', 'volume_backed'}
IMAGE_CREATE = ('server', 'image', 'create')
BACKUP_CREATE = ('server', 'backup', 'create')
#: How long a started CLI may take to read the server (its start included)
#: on a machine with a load average of 30.
CLI_START = 240.0
#: Capture states before the proof (the image is still queued).
NOT_PROVEN = ('not-started', 'in-progress')


class CLITestCase(base.SnapphaseTestCase):
    """Helpers to follow a background ``openstack`` by its requests."""

    def create_image(self, server_id, name='snap1'):
        """createImage through the API (one CLI start less)."""
        return self._nova_post('/servers/%s/action' % server_id,
                               {'createImage': {'name': name}})['image_id']

    def wait_cli_polls(self, proc, server_id, polls=2, timeout=CLI_START):
        """Wait until ``proc`` read the server ``polls`` more times.

        Counted from now in Nova's HTTP log (the test's own reads use
        python-requests and are left out); fails at once, with the CLI's
        output, if the CLI ends first. The log has the arrival of each
        request, not the moment Nova read its database: only once the
        (sequential) CLI's next request has arrived is the one before it
        known to have been answered, so ``polls`` is at least 2.
        """
        self.assertGreaterEqual(polls, 2)
        since = time.monotonic()
        path = '/v2.1/servers/%s' % server_id

        def polled():
            if proc.poll() is not None:
                self.fail('the CLI ended before it read %s %d times: %r'
                          % (path, polls, self.finish(proc, expect=None)))
            return self.cloud.nova_http.count('GET', path, since) >= polls
        self.wait_for(polled, timeout=timeout,
                      what='%d reads of %s by the CLI' % (polls, path))

    def assert_running(self, proc, what):
        """The CLI has not ended (it read the server meanwhile)."""
        if proc.poll() is not None:
            self.fail('the CLI ended %s: %r'
                      % (what, self.finish(proc, expect=None)))

    def hold_under_polls(self, plan, phase, proc, server_id, polls=2):
        """``phase`` is held: the CLI reads the server and keeps running."""
        plan.wait_entered(phase)
        self.wait_cli_polls(proc, server_id, polls)
        self.assert_running(proc, 'while phase %s was held' % phase)


class TestTaskStateShow(CLITestCase):

    def setUp(self):
        super().setUp()
        self.require('server', 'task-state', 'show')

    def show(self):
        return self.openstack_json('server', 'task-state', 'show', 'vm1')

    def test_show_idle_and_during_each_phase(self):
        server_id = self.boot('vm1')
        shown = self.show()
        self.assertEqual(SHOW_KEYS, set(shown))
        self.assertEqual(server_id, shown['id'])
        self.assertEqual('vm1', shown['name'])
        self.assertEqual('ACTIVE', shown['status'])
        self.assertEqual('active', shown['vm_state'])
        self.assertIsNone(shown['task_state'])
        self.assertEqual('idle', shown['phase'])
        self.assertEqual('none', shown['capture'])
        self.assertEqual('image-status', shown['capture_model'])
        self.assertIs(True, shown['disk_writes_safe'])
        self.assertIs(True, shown['image_create_allowed'])
        self.assertIs(False, shown['volume_backed'])

        plan = self.plan('vm1', hold=('snapshot', 'pending_upload',
                                      'upload'))
        image_id = self.create_image(server_id)
        # The image is queued in image_snapshot and image_pending_upload:
        # no proof that the copy is over, whatever the task state.
        for phase, task_state in (('snapshot', 'image_snapshot'),
                                  ('pending_upload', 'image_pending_upload')):
            plan.wait_entered(phase)
            shown = self.show()
            self.assertEqual(task_state, shown['task_state'], shown)
            self.assertEqual('in-progress', shown['capture'], shown)
            self.assertIn(image_id, shown['capture_evidence'], shown)
            self.assertIn('queued', shown['capture_evidence'], shown)
            self.assertIs(False, shown['disk_writes_safe'], shown)
            self.assertIs(False, shown['image_create_allowed'], shown)
            plan.release(phase)
        # image_uploading with the image saving: the copy is over.
        plan.wait_entered('upload')
        shown = self.show()
        self.assertEqual('image_uploading', shown['task_state'], shown)
        self.assertEqual('complete', shown['capture'], shown)
        self.assertIn(image_id, shown['capture_evidence'], shown)
        self.assertIn('saving', shown['capture_evidence'], shown)
        self.assertIs(True, shown['disk_writes_safe'], shown)
        self.assertIs(False, shown['image_create_allowed'], shown)
        self.assertIs(False, shown['volume_backed'], shown)
        plan.release()
        self.assertEqual('ok', plan.wait_done())


class TestTaskStateWatch(CLITestCase):

    def setUp(self):
        super().setUp()
        self.require('server', 'task-state', 'watch')

    def assert_in_order(self, states):
        positions = [ORDER.index(s) for s in states]
        self.assertEqual(sorted(positions), positions, states)

    def task_states(self, rows):
        """The task states of the rows, a repeat (capture-only row) once.

        A row is printed also when only the capture changes (the image
        goes saving while the task state stays image_uploading): such
        rows must differ from the previous one by Capture.
        """
        states = []
        for previous, row in zip([None] + rows[:-1], rows):
            if previous is not None and (
                    previous['Task State'] == row['Task State']):
                self.assertNotEqual(previous['Capture'], row['Capture'],
                                    rows)
                continue
            states.append(row['Task State'])
        return states

    def test_until_idle_sees_every_phase_in_order(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('pending', 'snapshot',
                                      'pending_upload', 'upload'))
        self.create_image(server_id)
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--interval', '0.5', '--timeout', '600', '-f', 'json')
        for phase in ('pending', 'snapshot', 'pending_upload', 'upload'):
            self.hold_under_polls(plan, phase, watch, server_id)
            plan.release(phase)
        rows = self.finish(watch).json()
        self.assertEqual(['image_snapshot_pending', 'image_snapshot',
                          'image_pending_upload', 'image_uploading', None],
                         self.task_states(rows))
        self.assertEqual('idle', rows[-1]['Phase'])
        captures = {}
        for row in rows:
            captures.setdefault(row['Task State'], []).append(
                row['Capture'])
        self.assertEqual(['not-started'], captures['image_snapshot_pending'],
                         rows)
        self.assertEqual(['in-progress'], captures['image_snapshot'], rows)
        # A poll reads the server, then the image: one that read the server
        # just before image_uploading and the image just after it went
        # saving shows image_pending_upload with the capture complete.
        self.assertIn(captures['image_pending_upload'],
                      (['in-progress'], ['in-progress', 'complete']), rows)
        # Held until the watch had read it with the image saving.
        self.assertEqual('complete', captures['image_uploading'][-1], rows)
        self.assertEqual(['active'], [
            i['status'] for i in self.images_of(server_id)])

    def test_until_idle_with_a_slow_driver_and_default_interval(self):
        # The adaptive interval: each phase lasts until the watch has read
        # the server in it (a slow driver), then the next one starts.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot', 'pending_upload',
                                      'upload'))
        self.create_image(server_id)
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--timeout', '600', '-f', 'json')
        for phase in ('snapshot', 'pending_upload', 'upload'):
            self.hold_under_polls(plan, phase, watch, server_id)
            plan.release(phase)
        rows = self.finish(watch).json()
        states = self.task_states(rows)
        self.assertIsNone(states[-1])
        self.assert_in_order(states)
        for state in ('image_snapshot', 'image_pending_upload',
                      'image_uploading'):
            self.assertIn(state, states, rows)
        self.assertEqual('active', self.images_of(server_id)[0]['status'])

    def test_until_disk_safe_returns_while_upload_runs(self):
        # disk-safe: the image is saving (default image-status model); no
        # task state before it proves the copy, so the watch runs on
        # through image_snapshot and image_pending_upload.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot', 'pending_upload',
                                      'upload'))
        self.create_image(server_id)
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'disk-safe',
            '--timeout', '600', '-f', 'json')
        for phase in ('snapshot', 'pending_upload'):
            self.hold_under_polls(plan, phase, watch, server_id)
            plan.release(phase)
        rows = self.finish(watch).json()
        self.assertFalse(plan.done.is_set())
        self.assertEqual('image_uploading',
                         self.cloud.task_state(server_id))
        self.assertEqual('saving', self.images_of(server_id)[0]['status'])
        # The proof is the image, read after the server: the last row may
        # still show the task state image_pending_upload (see above).
        self.assertIn(rows[-1]['Task State'],
                      ('image_pending_upload', 'image_uploading'), rows)
        self.assertEqual('complete', rows[-1]['Capture'], rows)
        self.assertIn('saving', rows[-1]['Capture Evidence'], rows)
        for row in rows[:-1]:
            self.assertIn(row['Capture'], NOT_PROVEN, rows)
        self.assertIn('image_pending_upload',
                      [row['Task State'] for row in rows[:-1]], rows)
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_until_disk_safe_xenserver_model_after_image_snapshot(self):
        # The seed article's model, chosen explicitly: the task state
        # past image_snapshot proves it, before the image is saving.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot', 'pending_upload'))
        self.create_image(server_id)
        watch = self.openstack_start(
            '--os-snapphase-capture-model', 'xenserver',
            'server', 'task-state', 'watch', 'vm1', '--until', 'disk-safe',
            '--timeout', '600', '-f', 'json')
        self.hold_under_polls(plan, 'snapshot', watch, server_id)
        plan.release('snapshot')
        plan.wait_entered('pending_upload')
        rows = self.finish(watch).json()
        self.assertFalse(plan.entered['upload'].is_set())
        self.assertEqual('image_pending_upload',
                         self.cloud.task_state(server_id))
        self.assertEqual('queued', self.images_of(server_id)[0]['status'])
        self.assertEqual('image_pending_upload', rows[-1]['Task State'],
                         rows)
        self.assertEqual('complete', rows[-1]['Capture'], rows)
        self.assertIn('xenserver', rows[-1]['Capture Evidence'], rows)
        self.assertIn('image_snapshot', [row['Task State'] for row in rows])
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_stalled_upload_exit_4(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.create_image(server_id)
        plan.wait_entered('upload')
        result = self.openstack('server', 'task-state', 'watch', 'vm1',
                                '--until', 'idle', '--stall-timeout', '3',
                                '--interval', '0.5', '-f', 'json', expect=4)
        self.assertIn('looks stuck', result.stderr)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        self.assertFalse(plan.done.is_set())
        plan.release()

    def test_instance_not_running_stuck_task_state(self):
        # Real Nova never reverts the task state here, but deletes the
        # image: the watch must not hang. It saw the upload (image saving)
        # before the failure, so it reports the gone image (exit 3); the
        # stall timeout is only its last resort.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', not_running_in='upload', hold=('upload',))
        self.create_image(server_id)
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--stall-timeout', '120', '--interval', '0.5',
            '--timeout', '600', '-f', 'json')
        self.hold_under_polls(plan, 'upload', watch, server_id)
        plan.release()
        self.assertIsInstance(plan.wait_done(),
                              driver.exception.InstanceNotRunning)
        result = self.finish(watch, expect=3)
        self.assertIn('is gone', result.stderr)
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        self.assertEqual([], self.images_of(server_id))
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])

    def test_server_deleted_exit_3(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.create_image(server_id)
        plan.wait_entered('upload')
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--interval', '0.5', '--timeout', '600', '-f', 'json')
        self.wait_cli_polls(watch, server_id)
        self.openstack('server', 'delete', 'vm1')
        result = self.finish(watch, expect=3)
        self.assertIn('deleted', result.stderr)
        self.assertTrue(result.stdout.strip().startswith('['), result)
        # The watch may end on vm_state deleted, before Nova has finished
        # destroying the instance (GET 404).
        self.wait_for(lambda: self.cloud.server(server_id) is None,
                      timeout=60, what='server %s gone' % server_id)
        plan.release()

    def test_until_deleted(self):
        server_id = self.boot('vm1')
        watch = self.openstack_start(
            'server', 'task-state', 'watch', server_id, '--until', 'deleted',
            '--interval', '0.5', '--timeout', '600', '-f', 'json')
        self.wait_cli_polls(watch, server_id)
        self.openstack('server', 'delete', 'vm1')
        self.finish(watch, expect=0)

    def test_timeout_exit_124(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot',))
        self.create_image(server_id)
        plan.wait_entered('snapshot')
        self.openstack('server', 'task-state', 'watch', 'vm1', '--until',
                       'idle', '--timeout', '2', '-f', 'json', expect=124)
        self.assertFalse(plan.done.is_set())
        plan.release()


class TestWaitPhase(CLITestCase):

    def setUp(self):
        super().setUp()
        self.require(*IMAGE_CREATE, option='--wait-phase')

    def test_snapshot_returns_when_disk_capture_is_over(self):
        # The capture is proven by the image going saving (the upload):
        # the CLI waits through image_snapshot and image_pending_upload.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot', 'pending_upload',
                                      'upload'))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'snapshot', '-f',
                                    'json')
        for phase in ('snapshot', 'pending_upload'):
            self.hold_under_polls(plan, phase, proc, server_id)
            plan.release(phase)
        result = self.finish(proc).json()
        self.assertEqual('s1', result['name'])
        self.assertEqual(server_id, result['properties']['instance_uuid'])
        self.assertTrue([k for k in result if 'phase' in k], result)
        self.assertEqual('complete', result['capture'], result)
        self.assertEqual('image-status', result['capture_model'], result)
        self.assertIn('saving', result['capture_evidence'], result)
        self.assertFalse(plan.done.is_set())
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        self.assertEqual('saving', self.images_of(server_id)[0]['status'])
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_pending_upload_phase(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('pending_upload', 'upload'))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'pending-upload', '-f',
                                    'json')
        self.hold_under_polls(plan, 'pending_upload', proc, server_id)
        plan.release('pending_upload')
        result = self.finish(proc).json()
        self.assertEqual('complete', result['capture'], result)
        self.assertTrue(plan.entered['upload'].is_set())
        self.assertFalse(plan.done.is_set())
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_upload_returns_with_active_image(self):
        # The image saving is not enough: the CLI waits for active.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'upload', '-f', 'json')
        self.hold_under_polls(plan, 'upload', proc, server_id)
        self.assertEqual('saving', self.images_of(server_id)[0]['status'])
        plan.release()
        result = self.finish(proc).json()
        self.assertEqual('s1', result['name'])
        images = self.images_of(server_id)
        self.assertEqual(['active'], [i['status'] for i in images])
        self.assertEqual(images[0]['id'], result['id'])
        self.assertEqual('complete', result['capture'], result)
        self.assertEqual('ok', plan.wait_done())
        self.cloud.wait_task_state(server_id, None)

    def test_busy_server_exit_1_and_no_image(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.create_image(server_id, 'one')
        plan.wait_entered('upload')
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'two',
                                '--wait-phase', 'upload', expect=1)
        self.assertIn('409', result.stderr)
        self.assertEqual(['one'], [i['name']
                                   for i in self.images_of(server_id)])
        plan.release()

    def test_failure_in_upload_exit_3(self):
        # The driver fails once the CLI is waiting (had it failed at once,
        # Nova could delete the image before core's own image lookup).
        server_id = self.boot('vm1')
        plan = self.plan('vm1', fail_in='upload', hold=('upload',))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'upload')
        self.hold_under_polls(plan, 'upload', proc, server_id)
        plan.release()
        self.assertIsInstance(plan.wait_done(), driver.InjectedFailure)
        self.finish(proc, expect=3)
        self.assertEqual([], self.images_of(server_id))
        self.cloud.wait_task_state(server_id, None)

    def test_instance_not_running_stuck_task_state_exit_3(self):
        # The task state stays image_uploading, the image is gone (404).
        server_id = self.boot('vm1')
        plan = self.plan('vm1', not_running_in='upload', hold=('upload',))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'upload',
                                    '--wait-phase-timeout', '600')
        self.hold_under_polls(plan, 'upload', proc, server_id)
        plan.release()
        self.assertIsInstance(plan.wait_done(),
                              driver.exception.InstanceNotRunning)
        result = self.finish(proc, expect=3)
        self.assertIn('gone', result.stderr)
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))

    def test_server_deleted_exit_3(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'upload')
        self.hold_under_polls(plan, 'upload', proc, server_id)
        self.openstack('server', 'delete', 'vm1')
        result = self.finish(proc, expect=3)
        self.assertIn('deleted', result.stderr)
        plan.release()

    def test_timeout_exit_124(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 's1',
                       '--wait-phase', 'snapshot', '--wait-phase-timeout',
                       '2', expect=124)
        # The image creation goes on in the cloud.
        self.assertFalse(plan.done.is_set())
        self.assertEqual(['s1'], [i['name']
                                  for i in self.images_of(server_id)])
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_backup_upload(self):
        self.require(*BACKUP_CREATE, option='--wait-phase')
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('pending', 'upload'))
        proc = self.openstack_start(*BACKUP_CREATE, 'vm1', '--name', 'bk1',
                                    '--wait-phase', 'upload', '-f', 'json')
        plan.wait_entered('pending')
        self.assertEqual('image_backup', self.cloud.task_state(server_id))
        plan.release('pending')
        # The image saving: the backup waits on for active.
        self.hold_under_polls(plan, 'upload', proc, server_id)
        plan.release()
        result = self.finish(proc).json()
        self.assertEqual('bk1', result['name'])
        images = self.images_of(server_id)
        self.assertEqual(['active'], [i['status'] for i in images])
        self.assertEqual('backup', images[0]['properties']['image_type'])
        self.assertEqual(images[0]['id'], result['id'])

    def test_backup_failure_exit_3(self):
        # The driver fails in image_backup once the CLI is waiting: failed
        # at once, Nova deletes the image before core's `server backup
        # create` looks it up by name (exit 1 "No Image found", before
        # --wait-phase runs).
        self.require(*BACKUP_CREATE, option='--wait-phase')
        server_id = self.boot('vm1')
        plan = self.plan('vm1', fail_in='snapshot', hold=('snapshot',))
        proc = self.openstack_start(*BACKUP_CREATE, 'vm1', '--name', 'bk1',
                                    '--wait-phase', 'snapshot')
        self.hold_under_polls(plan, 'snapshot', proc, server_id)
        self.assertEqual('image_backup', self.cloud.task_state(server_id))
        plan.release()
        self.assertIsInstance(plan.wait_done(), driver.InjectedFailure)
        result = self.finish(proc, expect=3)
        self.assertIn('gone', result.stderr)
        self.cloud.wait_task_state(server_id, None)
        self.assertEqual([], self.images_of(server_id))
