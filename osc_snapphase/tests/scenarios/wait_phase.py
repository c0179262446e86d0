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

"""``openstack server image create`` / ``server backup create`` with
``--wait-phase``: each phase's end, failures, timeouts, a busy server.
"""

IMAGE_CREATE = ('server', 'image', 'create')
BACKUP_CREATE = ('server', 'backup', 'create')


class WaitPhaseScenarios(object):
    """Mixed into a cloud's base class (scenarios.base.CLITestCase)."""

    def test_snapshot_returns_when_disk_capture_is_over(self):
        # The capture is proven by the image going saving (the upload):
        # the CLI waits through image_snapshot and image_pending_upload.
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot', 'pending_upload',
                                     'upload'))
        proc = self.start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                          '--wait-phase', 'snapshot', '-f',
                          'json')
        self.walk(proc, server_id, ('snapshot', 'pending_upload'))
        result = self.finish(proc).json()
        self.assertEqual('s1', result['name'])
        self.assertEqual(server_id, result['properties']['instance_uuid'])
        self.assertTrue([k for k in result if 'phase' in k], result)
        self.assertEqual('complete', result['capture'], result)
        self.assertEqual('image-status', result['capture_model'], result)
        self.assertIn('saving', result['capture_evidence'], result)
        self.assertTrue(self.operation_running(server_id))
        self.assertEqual('image_uploading', self.task_state(server_id))
        self.assertEqual('saving', self.images_of(server_id)[0]['status'])
        self.release()
        self.operation_ended(server_id)

    def test_pending_upload_phase(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('pending_upload', 'upload'))
        proc = self.start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                          '--wait-phase', 'pending-upload', '-f',
                          'json')
        self.hold_under_polls('pending_upload', proc, server_id)
        self.release('pending_upload', server_id)
        result = self.finish(proc).json()
        self.assertEqual('complete', result['capture'], result)
        self.wait_held('upload', server_id)
        self.assertTrue(self.operation_running(server_id))
        self.assertEqual('image_uploading', self.task_state(server_id))
        self.release()
        self.operation_ended(server_id)

    def test_upload_returns_with_active_image(self):
        # The image saving is not enough: the CLI waits for active.
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',))
        proc = self.start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                          '--wait-phase', 'upload', '-f', 'json')
        self.hold_under_polls('upload', proc, server_id)
        self.assertEqual('saving', self.images_of(server_id)[0]['status'])
        self.release()
        result = self.finish(proc).json()
        self.assertEqual('s1', result['name'])
        images = self.images_of(server_id)
        self.assertEqual(['active'], [i['status'] for i in images])
        self.assertEqual(images[0]['id'], result['id'])
        self.assertEqual('complete', result['capture'], result)
        self.operation_ended(server_id)
        self.wait_task_state(server_id, None)

    def test_busy_server_exit_5_and_no_image(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',))
        self.create_image(server_id, 'one')
        self.wait_held('upload', server_id)
        # 5: busy (another operation runs; retry later).
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'two',
                                '--wait-phase', 'upload', expect=5)
        self.assertIn('409', result.stderr)
        self.assertEqual(['one'], [i['name']
                                   for i in self.images_of(server_id)])
        self.release()

    def test_failure_in_upload_exit_3(self):
        # The driver fails once the CLI is waiting (had it failed at once,
        # Nova could delete the image before core's own image lookup).
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',), fail_in='upload')
        proc = self.start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                          '--wait-phase', 'upload')
        self.fail_under_polls(proc, server_id)
        self.finish(proc, expect=3)
        self.assertEqual([], self.images_of(server_id))
        self.wait_task_state(server_id, None)

    def test_instance_not_running_stuck_task_state_exit_3(self):
        # The task state stays image_uploading, the image is gone (404).
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',), fail_in='upload',
                    failure='not_running')
        proc = self.start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                          '--wait-phase', 'upload',
                          '--wait-phase-timeout', '600')
        self.fail_under_polls(proc, server_id, outcome='not_running')
        result = self.finish(proc, expect=3)
        self.assertIn('gone', result.stderr)
        self.assertEqual('image_uploading', self.task_state(server_id))

    def test_server_deleted_exit_3(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',))
        proc = self.start(*IMAGE_CREATE, 'vm1', '--name', 's1',
                          '--wait-phase', 'upload')
        self.hold_under_polls('upload', proc, server_id)
        self.openstack('server', 'delete', 'vm1')
        result = self.finish(proc, expect=3)
        self.assertIn('deleted', result.stderr)
        self.release()

    def test_timeout_exit_124(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot',))
        self.openstack(*IMAGE_CREATE, 'vm1', '--name', 's1',
                       '--wait-phase', 'snapshot', '--wait-phase-timeout',
                       '2', expect=124)
        # The image creation goes on in the cloud.
        self.assertTrue(self.operation_running(server_id))
        self.assertEqual(['s1'], [i['name']
                                  for i in self.images_of(server_id)])
        self.release()
        self.operation_ended(server_id)

    def test_backup_upload(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot', 'upload'))
        proc = self.start(*BACKUP_CREATE, 'vm1', '--name', 'bk1',
                          '--wait-phase', 'upload', '-f', 'json')
        self.wait_held('snapshot', server_id)
        self.assertEqual('image_backup', self.task_state(server_id))
        self.release('snapshot', server_id)
        # The image saving: the backup waits on for active.
        self.hold_under_polls('upload', proc, server_id)
        self.release()
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
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot',), fail_in='snapshot')
        proc = self.start(*BACKUP_CREATE, 'vm1', '--name', 'bk1',
                          '--wait-phase', 'snapshot')
        self.wait_held('snapshot', server_id)
        self.assertEqual('image_backup', self.task_state(server_id))
        self.fail_under_polls(proc, server_id, 'snapshot')
        result = self.finish(proc, expect=3)
        self.assertIn('gone', result.stderr)
        self.wait_task_state(server_id, None)
        self.assertEqual([], self.images_of(server_id))
