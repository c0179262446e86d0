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

"""What Nova does during createImage and createBackup, seen with core
``openstack`` commands; the osc-snapphase commands rely on exactly this.

Run against the real Nova these pin nova 34's behaviour; run against the
simulator they prove that it does the same (they replace the hand-kept
fidelity tests). A phase a test needs to see is held until the test has
seen it; a driver failure is injected in a held phase, released once core
``openstack`` has its answer, so that the cloud cannot delete the image
before the CLI has looked it up.
"""

ORDER = ['image_snapshot_pending', 'image_snapshot', 'image_pending_upload',
         'image_uploading', None]
STEP_OF = {'image_snapshot_pending': 'pending', 'image_snapshot': 'snapshot',
           'image_pending_upload': 'pending_upload',
           'image_uploading': 'upload'}


class OperationScenarios(object):
    """Mixed into a cloud's base class (scenarios.base.CLITestCase)."""

    def test_server_create_wait(self):
        server = self.openstack_json(
            'server', 'create', '--flavor', 'm1.tiny', '--image',
            self.BOOT_IMAGE, '--nic', 'none', 'vm1', '--wait')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('active', server['OS-EXT-STS:vm_state'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual(server['id'], shown['id'])
        self.assertIn(shown['OS-EXT-STS:power_state'], (1, 'Running'))

    def test_image_create_every_phase_held(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('pending', 'snapshot', 'pending_upload',
                                     'upload'))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        self.assertEqual('queued', image['status'])
        self.assertEqual(server_id, image['properties']['instance_uuid'])
        self.assertEqual('snapshot', image['properties']['image_type'])
        expected = [('pending', 'image_snapshot_pending', 'queued'),
                    ('snapshot', 'image_snapshot', 'queued'),
                    ('pending_upload', 'image_pending_upload', 'queued'),
                    ('upload', 'image_uploading', 'saving')]
        for step, task_state, image_status in expected:
            self.wait_held(step, server_id)
            shown = self.openstack_json('server', 'show', 'vm1')
            self.assertEqual(task_state, shown['OS-EXT-STS:task_state'],
                             step)
            self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
            self.assertEqual('ACTIVE', shown['status'])
            self.assertEqual(image_status, self.openstack_json(
                'image', 'show', image['id'])['status'], step)
            self.release(step, server_id)
        self.operation_ended(server_id)
        self.wait_task_state(server_id, None)
        self.assertEqual('active', self.openstack_json(
            'image', 'show', image['id'])['status'])

    def test_image_create_sampled_with_server_show(self):
        server_id = self.boot('vm1')
        # A slow driver: each step lasts until `openstack server show`,
        # sampling in a loop, has reported its task state.
        self.script(server_id, hold=STEP_OF.values())
        self.openstack('server', 'image', 'create', 'vm1', '--name', 's')
        seen = []
        for _sample in range(50):
            state = self.openstack_json(
                'server', 'show', 'vm1', '-c',
                'OS-EXT-STS:task_state')['OS-EXT-STS:task_state']
            if not seen or seen[-1] != state:
                seen.append(state)
            if state is None:
                break
            self.wait_held(STEP_OF[state], server_id)
            self.release(STEP_OF[state], server_id)
            self.wait_for(lambda: self.task_state(server_id) != state,
                          what='task state after %s' % state)
        self.assertEqual(ORDER, seen)
        self.operation_ended(server_id)
        self.assertEqual(['active'], self.image_statuses(server_id))

    def test_backup_create(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot', 'upload'))
        image = self.openstack_json('server', 'backup', 'create', 'vm1',
                                    '--name', 'bk1')
        self.assertEqual('backup', image['properties']['image_type'])
        # The API sets image_backup itself: there is no *_pending state.
        for step, task_state in (('snapshot', 'image_backup'),
                                 ('upload', 'image_uploading')):
            self.wait_held(step, server_id)
            self.assertEqual(task_state, self.openstack_json(
                'server', 'show', 'vm1')['OS-EXT-STS:task_state'])
            if step == 'upload':
                # Unlike createImage, nova 34 runs backup_instance inside
                # the RPC handler: its event stays open until the end.
                event = self.instance_event(server_id, 'createBackup')
                self.assertEqual('compute_backup_instance', event['event'])
                self.assertIsNone(event['result'])
                self.assertIsNone(event['finish_time'])
            self.release(step, server_id)
        self.operation_ended(server_id)
        self.wait_task_state(server_id, None)
        self.assertEqual('active', self.openstack_json(
            'image', 'show', image['id'])['status'])
        self.wait_event_result(server_id, 'createBackup', 'Success')
        self.assertIsNotNone(self.instance_event(
            server_id, 'createBackup')['finish_time'])
        self.assertIsNone(self.instance_action(server_id,
                                               'createBackup')['message'])

    def failed_in_upload(self, *create):
        """A server whose image-create (``create``) fails in the upload.

        Held until core has looked the image up by name after the request:
        failed at once, the cloud could delete it first ("No Image
        found"). Returns the server ID and the image core printed.
        """
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',), fail_in='upload')
        image = self.openstack_json(*create)
        self.wait_held('upload', server_id)
        self.release()
        self.operation_ended(server_id, 'error')
        self.wait_task_state(server_id, None)
        return server_id, image

    def test_backup_driver_failure_event_is_error(self):
        server_id, image = self.failed_in_upload(
            'server', 'backup', 'create', 'vm1', '--name', 'bk1')
        self.wait_event_result(server_id, 'createBackup', 'Error')
        self.assertEqual('Error', self.instance_action(
            server_id, 'createBackup')['message'])
        # An admin sees where it failed.
        self.assertIn('backup_instance', self.instance_event(
            server_id, 'createBackup')['traceback'])
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.assertIsNone(shown['OS-EXT-STS:task_state'])
        self.assertIsNone(shown.get('fault'))
        self.openstack('image', 'show', image['id'], expect=1)
        self.assertEqual([], self.images_of(server_id))

    def test_second_image_create_while_busy_is_409(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',))
        self.openstack('server', 'image', 'create', 'vm1', '--name', 'one')
        self.wait_held('upload', server_id)
        result = self.openstack('server', 'image', 'create', 'vm1',
                                '--name', 'two', expect=1)
        self.assertIn('ConflictException: 409', result.stderr)
        self.assertIn("Cannot 'createImage' instance %s while it is in "
                      "task_state image_uploading" % server_id,
                      result.stderr)
        result = self.openstack('server', 'backup', 'create', 'vm1',
                                '--name', 'three', expect=1)
        self.assertIn("Cannot 'createBackup' instance %s while it is in "
                      "task_state image_uploading" % server_id,
                      result.stderr)
        self.assertEqual(['one'], [i['name']
                                   for i in self.images_of(server_id)])
        self.release()
        self.operation_ended(server_id)
        self.wait_task_state(server_id, None)

    def test_driver_failure_in_upload_reverts_and_deletes_image(self):
        server_id, image = self.failed_in_upload(
            'server', 'image', 'create', 'vm1', '--name', 'snap1')
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.assertEqual('ACTIVE', shown['status'])
        self.assertIsNone(shown.get('fault'))
        result = self.openstack('image', 'show', image['id'], expect=1)
        self.assertIn('No Image found', result.stderr)
        self.assertEqual([], self.images_of(server_id))
        # nova 34 runs the snapshot as a separate task: the instance
        # action's compute event ended Success before the failure.
        action = self.instance_action(server_id, 'createImage')
        events = {e['event']: e['result'] for e in action['events']}
        self.assertEqual('Success', events['compute_snapshot_instance'])
        self.assertIsNone(action['message'])

    def test_image_deleted_during_snapshot(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot', 'pending_upload'))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        self.wait_held('snapshot', server_id)
        self.openstack('image', 'delete', image['id'])
        self.release('snapshot', server_id)
        # Nova does not notice at once: the driver carries on into the
        # next phase and fails only when it next talks to Glance.
        self.wait_held('pending_upload', server_id)
        self.assertEqual('image_pending_upload', self.task_state(server_id))
        self.release()
        self.assert_image_gone_swallowed(server_id, image['id'])

    def assert_image_gone_swallowed(self, server_id, image_id):
        """ImageNotFound is swallowed: task state cleared, no fault."""
        self.operation_ended(server_id, 'image_gone')
        self.wait_task_state(server_id, None)
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.assertIsNone(shown.get('fault'))
        self.openstack('image', 'show', image_id, expect=1)

    def test_instance_not_running_in_upload_leaves_task_state_stuck(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',), fail_in='upload',
                    failure='not_running')
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        self.wait_held('upload', server_id)
        self.release()
        self.operation_ended(server_id, 'not_running')
        # Deleting the image is the last thing Nova does about it
        # (ComputeManager._snapshot_instance swallows InstanceNotRunning;
        # nothing reverts the task state after the delete).
        self.wait_images_gone(server_id)
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('image_uploading', shown['OS-EXT-STS:task_state'])
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.assertIsNone(shown.get('fault'))
        self.openstack('image', 'show', image['id'], expect=1)
        result = self.openstack('server', 'image', 'create', 'vm1',
                                '--name', 'snap2', expect=1)
        self.assertIn('task_state image_uploading', result.stderr)
        # Only an admin reset clears it.
        self.openstack('server', 'set', '--state', 'active',
                       '--auto-approve', server_id, cloud=self.admin_cloud)
        self.wait_task_state(server_id, None)

    def test_server_deleted_during_snapshot(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        self.wait_held('upload', server_id)
        self.openstack('server', 'delete', 'vm1')
        self.wait_for(lambda: self.server_gone(server_id),
                      what='server gone')
        # The image outlives the server until the snapshot task notices.
        self.assertEqual([('snap1', 'saving')], [
            (i['name'], i['status']) for i in self.images_of(server_id)])
        self.release()
        self.operation_ended(server_id, 'server_gone')
        self.wait_images_gone(server_id)
        # Not even an admin gets a deleted server from GET /servers/{id};
        # only the admin list with deleted=True shows it as DELETED.
        for cloud in (None, self.admin_cloud):
            result = self.openstack('server', 'show', server_id, expect=1,
                                    cloud=cloud)
            self.assertIn('No Server found', result.stderr)
        self.openstack('image', 'show', image['id'], expect=1)
        listed = self.openstack_json('server', 'list', '--deleted',
                                     '--all-projects',
                                     cloud=self.admin_cloud)
        self.assertEqual([(server_id, 'DELETED')], [
            (s['ID'], s['Status']) for s in listed])
        # The instance actions stay readable (microversion 2.21+).
        self.assertEqual('delete', self.instance_action(
            server_id, 'delete')['action'])

    def test_finished_image_survives_server_delete(self):
        server_id = self.boot('vm1')
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1', '--wait')
        self.wait_task_state(server_id, None)
        self.openstack('server', 'delete', 'vm1', '--wait')
        self.assertTrue(self.server_gone(server_id))
        self.assertEqual('active', self.openstack_json(
            'image', 'show', image['id'])['status'])

    def test_server_deleted_during_backup(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot',))
        self.openstack('server', 'backup', 'create', 'vm1', '--name', 'bk1')
        self.wait_held('snapshot', server_id)
        self.assertEqual('image_backup', self.task_state(server_id))
        self.openstack('server', 'delete', 'vm1')
        self.wait_for(lambda: self.server_gone(server_id),
                      what='server gone')
        self.assertEqual(['queued'], self.image_statuses(server_id))
        self.release()
        # Noticed at the end of the step: no step after it, the image
        # deleted, the backup's event ends Success.
        self.operation_ended(server_id, 'server_gone')
        self.wait_images_gone(server_id)
        self.wait_event_result(server_id, 'createBackup', 'Success')

    def test_backup_instance_not_running_event_success(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('upload',), fail_in='upload',
                    failure='not_running')
        self.openstack('server', 'backup', 'create', 'vm1', '--name', 'bk1')
        self.wait_held('upload', server_id)
        self.release()
        self.operation_ended(server_id, 'not_running')
        self.wait_images_gone(server_id)
        # Swallowed: no fault, the event ends Success, the task state
        # stays.
        self.wait_event_result(server_id, 'createBackup', 'Success')
        self.assertEqual('image_uploading', self.task_state(server_id))
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertIsNone(shown.get('fault'))

    def test_image_deleted_during_backup_pending_upload(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('pending_upload',))
        image = self.openstack_json('server', 'backup', 'create', 'vm1',
                                    '--name', 'bk1')
        self.wait_held('pending_upload', server_id)
        self.openstack('image', 'delete', image['id'])
        self.release()
        self.assert_image_gone_swallowed(server_id, image['id'])
        # The backup's event ends Success.
        self.wait_event_result(server_id, 'createBackup', 'Success')
