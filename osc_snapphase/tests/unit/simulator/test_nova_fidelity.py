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

"""The simulator does what real nova 34 does (issue 8 item 3).

Each test pins a behaviour that tests/functional_nova/test_core.py shows
for the real Nova: deleted servers, the createBackup event, a server
deleted mid-snapshot and the instance faults.
"""

from osc_snapphase.tests.unit.simulator import base

MV = {'OpenStack-API-Version': 'compute 2.96'}


class TestNovaFidelity(base.SimulatorTestCase):

    def setUp(self):
        super().setUp()
        self.sid = self.control.create_server('vm1')['id']
        self.path = '/compute/v2.1/servers/' + self.sid

    def _backup(self, name='bk1'):
        reply = self.call('POST', self.path + '/action', {'createBackup': {
            'name': name, 'backup_type': 'daily', 'rotation': 2}},
            headers=MV)
        self.assertEqual(202, reply.status)
        return reply.body['image_id']

    def _action(self, name, user='demo'):
        actions = self.call('GET', self.path + '/os-instance-actions',
                            headers=MV, user=user).body['instanceActions']
        for action in actions:
            if action['action'] == name:
                return self.call(
                    'GET', self.path + '/os-instance-actions/'
                    + action['request_id'], headers=MV,
                    user=user).body['instanceAction']
        self.fail('no %s action' % name)

    def _event(self, name, user='demo'):
        (event,) = self._action(name, user)['events']
        return event

    def _image(self, image_id):
        return self.call('GET', '/image/v2/images/' + image_id)

    def _faults(self):
        return self.control.server(self.sid)['instance_faults']

    def _wait_task_state(self, task_state):
        self.control.wait_task_state(self.sid, task_state, timeout=5)

    # 1. A deleted server is gone from GET /servers/{id} at once.

    def test_deleted_server_is_404_by_id_even_for_admin(self):
        self.assertEqual(204, self.call('DELETE', self.path).status)
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'status'] == 'DELETED')
        for user in ('demo', 'admin'):
            reply = self.call('GET', self.path, headers=MV, user=user)
            self.assertEqual(404, reply.status)
            self.assertEqual('Instance %s could not be found.' % self.sid,
                             reply.body['itemNotFound']['message'])
            self.assertEqual(404, self.call('GET', self.path + '/ips',
                                            user=user).status)
        listed = self.call(
            'GET', '/compute/v2.1/servers/detail?deleted=True&all_tenants=1',
            headers=MV, user='admin').body['servers']
        self.assertEqual([(self.sid, 'DELETED')],
                         [(s['id'], s['status']) for s in listed])
        # The instance actions stay readable (microversion 2.21+).
        self.assertEqual('delete', self._action('delete')['action'])

    # 2. The createBackup event stays open until the backup ends.

    def test_backup_event_open_until_the_end(self):
        self.control.configure(durations={'uploading': 0.5})
        self._backup()
        self._wait_task_state('image_uploading')
        event = self._event('createBackup')
        self.assertEqual('compute_backup_instance', event['event'])
        self.assertIsNone(event['result'])
        self.assertIsNone(event['finish_time'])
        self.wait_idle(self.sid)
        event = self._event('createBackup')
        self.assertEqual('Success', event['result'])
        self.assertIsNotNone(event['finish_time'])
        self.assertIsNone(self._action('createBackup')['message'])

    def test_backup_driver_error_ends_event_error(self):
        self.control.add_fault('uploading', 'driver_error')
        image_id = self._backup()
        self.wait_idle(self.sid)
        self.assertEqual('Error', self._event('createBackup')['result'])
        self.assertEqual('Error', self._action('createBackup')['message'])
        admin = self._event('createBackup', user='admin')
        self.assertIn('backup_instance', admin['traceback'])
        server = self.call('GET', self.path, headers=MV).body['server']
        self.assertEqual('active', server['OS-EXT-STS:vm_state'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertNotIn('fault', server)
        self.assertEqual(404, self._image(image_id).status)
        # Two instance faults (backup_instance and the snapshot in it).
        self.assertEqual(2, len(self._faults()))

    def test_image_driver_error_event_success_one_fault(self):
        self.control.add_fault('uploading', 'driver_error')
        self.create_image(self.sid)
        self.wait_idle(self.sid)
        action = self._action('createImage')
        self.assertEqual('Success', action['events'][0]['result'])
        self.assertIsNone(action['message'])
        self.assertEqual(1, len(self._faults()))

    # 3. A server deleted mid-snapshot leaves the image until the task
    # notices at its next phase change.

    def test_server_deleted_mid_snapshot_keeps_image_saving(self):
        self.control.configure(durations={'uploading': 0.6})
        image_id = self.create_image(self.sid).body['image_id']
        self._wait_task_state('image_uploading')
        self.assertEqual(204, self.call('DELETE', self.path).status)
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'status'] == 'DELETED')
        self.assertEqual(404, self.call('GET', self.path,
                                        user='admin').status)
        self.assertEqual('saving', self._image(image_id).body['status'])
        self.wait_idle(self.sid)
        self.assertEqual(404, self._image(image_id).status)
        self.assertEqual([], self._faults())

    def test_server_deleted_mid_backup_ends_event_success(self):
        self.control.configure(durations={'backup': 0.4})
        image_id = self._backup()
        self._wait_task_state('image_backup')
        self.assertEqual(204, self.call('DELETE', self.path).status)
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'status'] == 'DELETED')
        self.assertEqual('queued', self._image(image_id).body['status'])
        self.wait_idle(self.sid)
        self.assertEqual(404, self._image(image_id).status)
        self.assertEqual('Success', self._event('createBackup')['result'])
        # No phase was entered after the delete.
        self.assertNotIn('image_pending_upload', self.task_states(self.sid))

    def test_finished_image_survives_server_delete(self):
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        self.assertEqual(204, self.call('DELETE', self.path).status)
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'status'] == 'DELETED')
        self.assertEqual('active', self._image(image_id).body['status'])

    # 4. Not running ("stuck") and an image deleted meanwhile record no
    # fault; nova swallows both.

    def test_stuck_records_no_fault(self):
        self.control.add_fault('uploading', 'stuck')
        self._backup()
        self.wait_idle(self.sid)
        self.assertEqual('image_uploading', self.server_field(
            self.sid, 'OS-EXT-STS:task_state'))
        self.assertEqual([], self._faults())
        self.assertIsNone(self.server_field(self.sid, 'internal_fault'))
        self.assertEqual('Success', self._event('createBackup')['result'])

    def test_image_deleted_records_no_fault(self):
        self.control.add_fault('pending_upload', 'image_deleted')
        self._backup()
        self.wait_idle(self.sid)
        self.assertIsNone(self.server_field(self.sid,
                                            'OS-EXT-STS:task_state'))
        self.assertEqual([], self._faults())
        self.assertEqual('Success', self._event('createBackup')['result'])

    def test_image_deleted_by_user_records_no_fault(self):
        self.control.configure(durations={'snapshot': 0.4})
        image_id = self.create_image(self.sid).body['image_id']
        self._wait_task_state('image_snapshot')
        self.assertEqual(204, self.call('DELETE', '/image/v2/images/'
                                        + image_id).status)
        self.wait_idle(self.sid)
        self.assertIsNone(self.server_field(self.sid,
                                            'OS-EXT-STS:task_state'))
        self.assertEqual([], self._faults())
