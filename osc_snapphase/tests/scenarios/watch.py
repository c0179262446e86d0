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

"""``openstack server task-state watch`` through an image-create.

A step the test needs to observe is held until the test has seen the CLI
read the server (the cloud's request log) or the CLI has ended; steps a
test does not need run at once. No wall-clock bound is asserted. The
default order (image ``saving`` as the upload starts): under the default
``image-status`` capture model the disk capture is proven when the
``upload`` step begins.
"""

import signal

ORDER = ['image_snapshot_pending', 'image_snapshot', 'image_backup',
         'image_pending_upload', 'image_uploading', None]
#: Capture states before the proof (the image is still queued).
NOT_PROVEN = ('not-started', 'in-progress')


class WatchScenarios(object):
    """Mixed into a cloud's base class (scenarios.base.CLITestCase)."""

    def watch_vm1(self, *args):
        """Start ``openstack server task-state watch vm1 args... -f json``."""
        return self.start('server', 'task-state', 'watch', 'vm1', *(
            args + ('-f', 'json')))

    def watch_idle(self, *extra):
        """Start a watch of vm1 until idle, polling every 0.5 s."""
        return self.watch_vm1('--until', 'idle', '--interval', '0.5',
                              '--timeout', '600', *extra)

    def assert_in_order(self, states):
        positions = [ORDER.index(s) for s in states]
        self.assertEqual(sorted(positions), positions, states)

    def row_task_states(self, rows):
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
        server_id = self.imaging(hold=('pending', 'snapshot',
                                       'pending_upload', 'upload'))
        watch = self.watch_idle()
        self.walk(watch, server_id,
                  ('pending', 'snapshot', 'pending_upload', 'upload'))
        rows = self.finish(watch).json()
        self.assertEqual(['image_snapshot_pending', 'image_snapshot',
                          'image_pending_upload', 'image_uploading', None],
                         self.row_task_states(rows))
        self.assertEqual('idle', rows[-1]['Phase'])
        for row in rows:
            self.assertEqual(server_id, row['Server ID'], row)
            self.assertEqual('vm1', row['Server Name'], row)
        # The state found when the watch began, begun at an unknown time:
        # no duration for it, neither on its row nor on the next one.
        self.assertIsNone(rows[0]['Previous Duration'], rows)
        self.assertIsNone(rows[1]['Previous Duration'], rows)
        self.assertIn('saving', rows[-2]['Capture Evidence'], rows)
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
        server_id = self.imaging(hold=('snapshot', 'pending_upload', 'upload'))
        watch = self.watch_vm1('--until', 'idle', '--timeout', '600')
        self.walk(watch, server_id, ('snapshot', 'pending_upload', 'upload'))
        rows = self.finish(watch).json()
        states = self.row_task_states(rows)
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
        server_id = self.imaging(hold=('snapshot', 'pending_upload', 'upload'))
        watch = self.watch_vm1('--until', 'disk-safe', '--timeout', '600')
        self.walk(watch, server_id, ('snapshot', 'pending_upload'))
        result = self.finish(watch)
        rows = result.json()
        # Met, off a terminal: nothing on stderr.
        self.assertEqual('', result.stderr)
        self.assertTrue(self.operation_running(server_id))
        self.assertEqual('image_uploading',
                         self.task_state(server_id))
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
        self.release()
        self.operation_ended(server_id)

    def test_until_disk_safe_xenserver_model_after_image_snapshot(self):
        # The seed article's model, chosen explicitly: the task state
        # past image_snapshot proves it, before the image is saving.
        server_id = self.imaging(hold=('snapshot', 'pending_upload'))
        watch = self.start(
            '--os-snapphase-capture-model', 'xenserver',
            'server', 'task-state', 'watch', 'vm1', '--until', 'disk-safe',
            '--timeout', '600', '-f', 'json')
        self.hold_under_polls('snapshot', watch, server_id)
        self.release('snapshot', server_id)
        self.wait_held('pending_upload', server_id)
        rows = self.finish(watch).json()
        self.assertEqual('image_pending_upload',
                         self.task_state(server_id))
        self.assertEqual('queued', self.images_of(server_id)[0]['status'])
        self.assertEqual('image_pending_upload', rows[-1]['Task State'],
                         rows)
        self.assertEqual('complete', rows[-1]['Capture'], rows)
        self.assertIn('xenserver', rows[-1]['Capture Evidence'], rows)
        self.assertIn('image_snapshot', [row['Task State'] for row in rows])
        self.release()
        self.operation_ended(server_id)

    def test_stalled_upload_exit_4(self):
        server_id = self.imaging(hold=('upload',))
        self.wait_held('upload', server_id)
        result = self.openstack('server', 'task-state', 'watch', 'vm1',
                                '--until', 'idle', '--stall-timeout', '3',
                                '--interval', '0.5', '-f', 'json', expect=4)
        self.assertIn('looks stuck', result.stderr)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])
        self.assertEqual('image_uploading', self.task_state(server_id))
        self.assertTrue(self.operation_running(server_id))
        self.release()

    def test_instance_not_running_stuck_task_state(self):
        # Real Nova never reverts the task state here, but deletes the
        # image: the watch must not hang. It saw the upload (image saving)
        # before the failure, so it reports the gone image (exit 3); the
        # stall timeout is only its last resort.
        server_id = self.imaging(hold=('upload',), fail_in='upload',
                                 failure='not_running')
        watch = self.watch_idle('--stall-timeout', '120')
        self.fail_under_polls(watch, server_id, outcome='not_running')
        result = self.finish(watch, expect=3)
        self.assertIn('is gone', result.stderr)
        self.assertEqual('image_uploading', self.task_state(server_id))
        self.assertEqual([], self.images_of(server_id))
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])

    def test_server_deleted_exit_3(self):
        server_id = self.imaging(hold=('upload',))
        self.wait_held('upload', server_id)
        watch = self.watch_idle()
        self.wait_cli_polls(watch, server_id)
        self.openstack('server', 'delete', 'vm1')
        result = self.finish(watch, expect=3)
        self.assertIn('deleted', result.stderr)
        self.assertIn(server_id, result.stderr)
        self.assertTrue(result.json(), result)
        # The watch may end on vm_state deleted, before Nova has finished
        # destroying the instance (GET 404).
        self.wait_for(lambda: self.server_gone(server_id),
                      timeout=60, what='server %s gone' % server_id)
        self.release()

    def test_until_deleted(self):
        server_id = self.boot('vm1')
        watch = self.start(
            'server', 'task-state', 'watch', server_id, '--until', 'deleted',
            '--interval', '0.5', '--timeout', '600', '-f', 'json')
        self.wait_cli_polls(watch, server_id)
        self.openstack('server', 'delete', 'vm1')
        self.finish(watch, expect=0)

    def test_timeout_exit_124(self):
        server_id = self.imaging(hold=('snapshot',))
        self.wait_held('snapshot', server_id)
        result = self.openstack(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--timeout', '2', '-f', 'json', expect=124)
        # It names the server and the state it is still in.
        self.assertIn('Timed out', result.stderr)
        self.assertIn('image_snapshot', result.stderr)
        self.assertIn(server_id, result.stderr)
        self.assertEqual('image_snapshot', result.json()[-1]['Task State'])
        self.assertTrue(self.operation_running(server_id))
        self.release()

    def start_held_watch(self, *extra):
        """A watch of vm1 --until idle, polling while upload is held."""
        server_id = self.imaging(hold=('upload',))
        self.wait_held('upload', server_id)
        watch = self.watch_idle(*extra)
        self.wait_cli_polls(watch, server_id)
        return server_id, watch

    def _signalled(self, signum, code, said):
        server_id, watch = self.start_held_watch()
        self.interrupt(watch, signum)
        result = self.finish(watch, expect=code)
        # The rows so far, a valid JSON document, and why it ended.
        rows = result.json()
        self.assertEqual('image_uploading', rows[-1]['Task State'], rows)
        self.assertEqual(server_id, rows[-1]['Server ID'], rows)
        self.assertIn(said, result.stderr)
        # The image-create goes on in the cloud.
        self.assertTrue(self.operation_running(server_id))
        self.release()
        self.operation_ended(server_id)

    def test_sigint_gives_130_and_valid_json(self):
        self._signalled(signal.SIGINT, 130, 'Interrupted')

    def test_sigterm_gives_143_and_valid_json(self):
        self._signalled(signal.SIGTERM, 143, 'Terminated')

    def _survive(self, code, count, retry_after=None):
        server_id, watch = self.start_held_watch()
        self.http_fault(code, count, path='/v2.1/servers/',
                        retry_after=retry_after)
        self.wait_cli(watch, lambda: self.http_faulted(code) >= count,
                      'every faulty answer')
        # Answered again after the burst, then the step goes on.
        self.wait_cli_polls(watch, server_id)
        self.release()
        result = self.finish(watch)
        self.assertEqual(count, self.http_faulted(code))
        self.assertIsNone(result.json()[-1]['Task State'])
        retrying = [line for line in result.stderr.splitlines()
                    if 'retrying' in line.lower()]
        self.assertEqual(1, len(retrying), result.stderr)
        self.assertIn(str(code), result.stderr)

    def test_503_burst_is_survived(self):
        self._survive(503, 3)

    def test_429_with_retry_after_is_survived(self):
        self._survive(429, 1, retry_after=1)

    def test_failed_upload_names_the_image(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',), fail_in='upload')
        image_id = self.create_image(server_id)
        watch = self.watch_idle()
        self.fail_under_polls(watch, server_id)
        result = self.finish(watch, expect=3)
        self.assertIn(image_id, result.stderr)
        self.assertIsNone(result.json()[-1]['Task State'])
        self.assertEqual([], self.images_of(server_id))
