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

"""Tests of the createImage and createBackup task-state machine."""

import time

from osc_snapphase.tests.functional.simulator import base


class TestSnapshot(base.SimulatorTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.control.create_server('vm1')
        self.sid = self.server['id']

    def test_create_image_phases_in_order(self):
        reply = self.create_image(self.sid)
        answered = time.monotonic()
        self.assertEqual(202, reply.status)
        image_id = reply.body['image_id']
        self.wait_idle(self.sid)
        # The API sets the first task state before it answers.
        pending = [e for e in self.control.log(resource_id=self.sid)
                   if e['new'] == 'image_snapshot_pending']
        self.assertLess(pending[0]['monotonic'], answered)
        self.assertEqual(
            [None, 'image_snapshot_pending', 'image_snapshot',
             'image_pending_upload', 'image_uploading', None],
            self.task_states(self.sid))
        self.assertEqual(['queued', 'saving', 'active'],
                         self.image_statuses(image_id))
        image = self.call('GET', '/image/v2/images/' + image_id).body
        self.assertEqual('active', image['status'])
        self.assertEqual(self.sid, image['instance_uuid'])
        self.assertEqual('snapshot', image['image_type'])
        self.assertTrue(image['checksum'])
        self.assertEqual('ACTIVE', self.server_field(self.sid, 'status'))

    def test_image_active_before_task_state_null(self):
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        log = self.control.log()
        active = [e['seq'] for e in log if e['id'] == image_id
                  and e['new'] == 'active']
        done = [e['seq'] for e in log if e['id'] == self.sid
                and e['field'] == 'task_state' and e['new'] is None]
        self.assertLess(active[0], done[-1])

    def test_create_image_old_microversion_location(self):
        reply = self.create_image(self.sid, version='2.1')
        self.assertEqual(202, reply.status)
        self.assertEqual(b'', reply.raw)
        self.assertIn('/image/v2/images/', reply.headers['Location'])
        self.assertEqual('compute 2.1',
                         reply.headers['OpenStack-API-Version'])
        self.assertEqual('2.1', reply.headers['X-OpenStack-Nova-API-Version'])

    def test_second_create_image_conflict(self):
        self.control.configure(durations={'pending': 5})
        self.create_image(self.sid)
        reply = self.create_image(self.sid, name='again')
        self.assertEqual(409, reply.status)
        self.assertEqual(
            {'conflictingRequest': {
                'code': 409,
                'message': "Cannot 'createImage' instance %s while it is in "
                           'task_state image_snapshot_pending' % self.sid}},
            reply.body)

    def test_create_image_wrong_vm_state(self):
        server = self.control.create_server('err', vm_state='error')
        reply = self.create_image(server['id'])
        self.assertEqual(409, reply.status)
        self.assertIn('while it is in vm_state error',
                      reply.body['conflictingRequest']['message'])

    def test_backup_phases_and_rotation(self):
        path = '/compute/v2.1/servers/%s/action' % self.sid
        body = {'createBackup': {'name': 'b', 'backup_type': 'daily',
                                 'rotation': 1}}
        mv = {'OpenStack-API-Version': 'compute 2.45'}
        first = self.call('POST', path, body, headers=mv).body['image_id']
        self.wait_idle(self.sid)
        self.assertEqual(
            [None, 'image_backup', 'image_pending_upload',
             'image_uploading', None], self.task_states(self.sid))
        second = self.call('POST', path, body, headers=mv).body['image_id']
        self.wait_idle(self.sid)
        self.assertEqual(404, self.call(
            'GET', '/image/v2/images/' + first).status)
        image = self.call('GET', '/image/v2/images/' + second).body
        self.assertEqual('backup', image['image_type'])
        self.assertEqual('daily', image['backup_type'])

    def test_volume_backed_snapshot(self):
        server = self.control.create_server('bfv', volume_backed=True)
        image_id = self.create_image(server['id']).body['image_id']
        self.control.wait_for(lambda s: any(
            i['id'] == image_id and i['status'] == 'active'
            for i in s['images']))
        image = self.call('GET', '/image/v2/images/' + image_id).body
        self.assertEqual(0, image['size'])
        self.assertIn('block_device_mapping', image)
        self.assertEqual([None], self.task_states(server['id']))

    def test_instance_action_event_success(self):
        self.create_image(self.sid)
        reply = self.call(
            'GET', '/compute/v2.1/servers/%s/os-instance-actions' % self.sid)
        actions = reply.body['instanceActions']
        self.assertEqual('createImage', actions[0]['action'])
        detail = self.call(
            'GET', '/compute/v2.1/servers/%s/os-instance-actions/%s'
            % (self.sid, actions[0]['request_id'])).body['instanceAction']
        self.assertEqual('compute_snapshot_instance',
                         detail['events'][0]['event'])
        self.assertEqual('Success', detail['events'][0]['result'])

    def test_stop_start(self):
        path = '/compute/v2.1/servers/%s/action' % self.sid
        self.assertEqual(202, self.call('POST', path, {'os-stop': None})
                         .status)
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'status'] == 'SHUTOFF')
        self.assertEqual(4, self.server_field(self.sid,
                                              'OS-EXT-STS:power_state'))
        self.call('POST', path, {'os-start': None})
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'status'] == 'ACTIVE')

    def test_old_nova_event_error_with_traceback(self):
        self.control.configure(old_nova_actions=True)
        self.control.add_fault('uploading', 'driver_error')
        self.create_image(self.sid)
        self.wait_idle(self.sid)
        path = '/compute/v2.1/servers/%s/os-instance-actions' % self.sid
        mv = {'OpenStack-API-Version': 'compute 2.84'}
        action = self.call('GET', path, headers=mv).body[
            'instanceActions'][0]
        detail = self.call('GET', path + '/' + action['request_id'],
                           headers=mv).body['instanceAction']
        self.assertEqual('Error', detail['events'][0]['result'])
        self.assertNotIn('traceback', detail['events'][0])
        self.assertEqual('Error', detail['message'])
        admin = self.call('GET', path + '/' + action['request_id'],
                          headers=mv, user='admin').body['instanceAction']
        self.assertIn('Traceback', admin['events'][0]['traceback'])

    def test_glance_paging_and_property_filter(self):
        for name in ('a', 'b', 'c'):
            self.create_image(self.sid, name=name)
            self.wait_idle(self.sid)
        page = self.call('GET', '/image/v2/images?instance_uuid=%s&limit=2'
                         % self.sid).body
        self.assertEqual(['c', 'b'], [i['name'] for i in page['images']])
        self.assertTrue(page['next'].startswith('/v2/images?'))
        rest = self.call('GET', '/image' + page['next']).body
        self.assertEqual(['a'], [i['name'] for i in rest['images']])
        self.assertNotIn('next', rest)
