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
"""

import time

from osc_snapphase.tests.functional_nova import base

ORDER = ['image_snapshot_pending', 'image_snapshot', 'image_backup',
         'image_pending_upload', 'image_uploading', None]
SHOW_KEYS = {'id', 'name', 'status', 'vm_state', 'task_state',
             'power_state', 'phase', 'description', 'disk_writes_safe',
             'image_create_allowed'}
IMAGE_CREATE = ('server', 'image', 'create')
BACKUP_CREATE = ('server', 'backup', 'create')


class TestTaskStateShow(base.SnapphaseTestCase):

    def setUp(self):
        super().setUp()
        self.require('server', 'task-state', 'show')

    def test_show_idle_and_during_each_phase(self):
        server_id = self.boot('vm1')
        shown = self.openstack_json('server', 'task-state', 'show', 'vm1')
        self.assertEqual(SHOW_KEYS, set(shown))
        self.assertEqual(server_id, shown['id'])
        self.assertEqual('vm1', shown['name'])
        self.assertEqual('ACTIVE', shown['status'])
        self.assertEqual('active', shown['vm_state'])
        self.assertIsNone(shown['task_state'])
        self.assertIs(True, shown['disk_writes_safe'])
        self.assertIs(True, shown['image_create_allowed'])

        plan = self.plan('vm1', hold=('snapshot', 'upload'))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        plan.wait_entered('snapshot')
        shown = self.openstack_json('server', 'task-state', 'show', 'vm1')
        self.assertEqual('image_snapshot', shown['task_state'])
        self.assertIs(False, shown['disk_writes_safe'])
        self.assertIs(False, shown['image_create_allowed'])
        plan.release('snapshot')
        plan.wait_entered('upload')
        shown = self.openstack_json('server', 'task-state', 'show', 'vm1')
        self.assertEqual('image_uploading', shown['task_state'])
        self.assertIs(True, shown['disk_writes_safe'])
        self.assertIs(False, shown['image_create_allowed'])
        plan.release()
        self.assertEqual('ok', plan.wait_done())


class TestTaskStateWatch(base.SnapphaseTestCase):

    def setUp(self):
        super().setUp()
        self.require('server', 'task-state', 'watch')

    def assert_in_order(self, states):
        positions = [ORDER.index(s) for s in states]
        self.assertEqual(sorted(positions), positions, states)

    def test_until_idle_sees_every_phase_in_order(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('pending', 'snapshot',
                                      'pending_upload', 'upload'))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--interval', '0.5', '--timeout', '120', '-f', 'json')
        for phase in ('pending', 'snapshot', 'pending_upload', 'upload'):
            plan.wait_entered(phase)
            self.wait_polled(server_id, polls=2)
            plan.release(phase)
        rows = self.finish(watch).json()
        states = [row['Task State'] for row in rows]
        self.assertEqual(['image_snapshot_pending', 'image_snapshot',
                          'image_pending_upload', 'image_uploading', None],
                         states)
        self.assertEqual('idle', rows[-1]['Phase'])
        self.assertEqual(['active'], [
            i['status'] for i in self.images_of(server_id)])

    def test_until_idle_with_a_slow_driver_and_default_interval(self):
        server_id = self.boot('vm1')
        self.plan('vm1', sleeps={'snapshot': 2.0, 'pending_upload': 1.0,
                                 'upload': 2.0})
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        rows = self.openstack_json('server', 'task-state', 'watch', 'vm1',
                                   '--until', 'idle', '--timeout', '120')
        states = [row['Task State'] for row in rows]
        self.assertIsNone(states[-1])
        self.assert_in_order(states)
        self.assertEqual('active', self.images_of(server_id)[0]['status'])

    def test_until_disk_safe_returns_while_upload_runs(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot', 'upload'))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'disk-safe',
            '--timeout', '120', '-f', 'json')
        plan.wait_entered('snapshot')
        self.wait_polled(server_id, polls=2)
        plan.release('snapshot')
        rows = self.finish(watch).json()
        self.assertFalse(plan.done.is_set())
        self.assertEqual('image_uploading',
                         self.cloud.task_state(server_id))
        self.assertEqual('saving', self.images_of(server_id)[0]['status'])
        self.assertIn(rows[-1]['Task State'],
                      ('image_pending_upload', 'image_uploading'))
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_stalled_upload_exit_4(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        plan.wait_entered('upload')
        started = time.monotonic()
        result = self.openstack('server', 'task-state', 'watch', 'vm1',
                                '--until', 'idle', '--stall-timeout', '3',
                                '--interval', '0.5', '-f', 'json', expect=4)
        self.assertLess(time.monotonic() - started, 60)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        plan.release()

    def test_instance_not_running_stuck_task_state(self):
        # Real Nova never reverts the task state here, but deletes the
        # image: the watch must not hang.
        server_id = self.boot('vm1')
        plan = self.plan('vm1', not_running_in='upload',
                         sleeps={'upload': 1.0})
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        result = self.openstack('server', 'task-state', 'watch', 'vm1',
                                '--until', 'idle', '--stall-timeout', '5',
                                '--interval', '0.5', '--timeout', '90',
                                '-f', 'json', expect=None)
        plan.wait_done()
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        self.assertEqual([], self.images_of(server_id))
        self.assertIn(result.returncode, (3, 4), result)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])

    def test_server_deleted_exit_3(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        plan.wait_entered('upload')
        watch = self.openstack_start(
            'server', 'task-state', 'watch', 'vm1', '--until', 'idle',
            '--interval', '0.5', '--timeout', '120', '-f', 'json')
        self.wait_polled(server_id, polls=2)
        self.openstack('server', 'delete', 'vm1')
        result = self.finish(watch, expect=3)
        self.assertIsNone(self.cloud.server(server_id))
        self.assertTrue(result.stdout.strip().startswith('['), result)
        plan.release()

    def test_until_deleted(self):
        server_id = self.boot('vm1')
        watch = self.openstack_start(
            'server', 'task-state', 'watch', server_id, '--until', 'deleted',
            '--interval', '0.5', '--timeout', '120', '-f', 'json')
        self.wait_polled(server_id, polls=1)
        self.openstack('server', 'delete', 'vm1')
        self.finish(watch, expect=0)

    def test_timeout_exit_124(self):
        self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap1')
        plan.wait_entered('snapshot')
        self.openstack('server', 'task-state', 'watch', 'vm1', '--until',
                       'idle', '--timeout', '2', '-f', 'json', expect=124)
        plan.release()


class TestWaitPhase(base.SnapphaseTestCase):

    def setUp(self):
        super().setUp()
        self.require(*IMAGE_CREATE, option='--wait-phase')

    def test_snapshot_returns_when_disk_capture_is_over(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', sleeps={'snapshot': 1.5}, hold=('upload',))
        result = self.openstack_json(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                     '--wait-phase', 'snapshot')
        self.assertEqual('s1', result['name'])
        self.assertEqual(server_id, result['properties']['instance_uuid'])
        self.assertTrue([k for k in result if 'phase' in k], result)
        self.assertFalse(plan.done.is_set())
        self.assertIn(self.cloud.task_state(server_id),
                      ('image_pending_upload', 'image_uploading'))
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_pending_upload_phase(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', sleeps={'pending_upload': 1.0},
                         hold=('upload',))
        self.openstack_json(*IMAGE_CREATE, 'vm1', '--name', 's1',
                            '--wait-phase', 'pending-upload')
        self.assertTrue(plan.entered['upload'].is_set())
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))
        plan.release()

    def test_upload_returns_with_active_image(self):
        server_id = self.boot('vm1')
        self.plan('vm1', sleeps={'snapshot': 0.5, 'pending_upload': 0.5,
                                 'upload': 1.5})
        result = self.openstack_json(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                     '--wait-phase', 'upload')
        self.assertEqual('s1', result['name'])
        images = self.images_of(server_id)
        self.assertEqual(['active'], [i['status'] for i in images])
        self.assertEqual(images[0]['id'], result['id'])
        self.cloud.wait_task_state(server_id, None)

    def test_busy_server_exit_1_and_no_image(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'one')
        plan.wait_entered('upload')
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'two',
                                '--wait-phase', 'upload', expect=1)
        self.assertIn('409', result.stderr)
        self.assertEqual(['one'], [i['name']
                                   for i in self.images_of(server_id)])
        plan.release()

    def test_failure_in_upload_exit_3(self):
        server_id = self.boot('vm1')
        self.plan('vm1', fail_in='upload', sleeps={'upload': 0.5})
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 's1',
                       '--wait-phase', 'upload', expect=3)
        self.assertEqual([], self.images_of(server_id))
        self.cloud.wait_task_state(server_id, None)

    def test_instance_not_running_stuck_task_state_exit_3(self):
        # The task state stays image_uploading, the image is gone (404).
        server_id = self.boot('vm1')
        self.plan('vm1', not_running_in='upload', sleeps={'upload': 0.5})
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                '--wait-phase', 'upload',
                                '--wait-phase-timeout', '90', expect=3)
        self.assertIn('gone', result.stderr)
        self.assertEqual('image_uploading', self.cloud.task_state(server_id))

    def test_server_deleted_exit_3(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        proc = self.openstack_start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                                    '--wait-phase', 'upload')
        plan.wait_entered('upload')
        self.wait_polled(server_id, polls=1)
        self.openstack('server', 'delete', 'vm1')
        self.finish(proc, expect=3)
        plan.release()

    def test_timeout_exit_124(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 's1',
                       '--wait-phase', 'snapshot', '--wait-phase-timeout',
                       '2', expect=124)
        # The image creation goes on in the cloud.
        self.assertEqual(['s1'], [i['name']
                                  for i in self.images_of(server_id)])
        plan.release()
        self.assertEqual('ok', plan.wait_done())

    def test_backup_upload(self):
        self.require(*BACKUP_CREATE, option='--wait-phase')
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('pending',), sleeps={'upload': 1.0})
        proc = self.openstack_start(*BACKUP_CREATE, 'vm1', '--name', 'bk1',
                                    '--wait-phase', 'upload', '-f', 'json')
        plan.wait_entered('pending')
        self.assertEqual('image_backup', self.cloud.task_state(server_id))
        plan.release()
        result = self.finish(proc).json()
        self.assertEqual('bk1', result['name'])
        images = self.images_of(server_id)
        self.assertEqual(['active'], [i['status'] for i in images])
        self.assertEqual('backup', images[0]['properties']['image_type'])

    def test_backup_failure_exit_3(self):
        self.require(*BACKUP_CREATE, option='--wait-phase')
        server_id = self.boot('vm1')
        self.plan('vm1', fail_in='snapshot')
        self.openstack(*BACKUP_CREATE, 'vm1', '--name', 'bk1',
                       '--wait-phase', 'snapshot', expect=3)
        self.cloud.wait_task_state(server_id, None)
