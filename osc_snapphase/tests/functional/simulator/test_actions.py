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

"""Tests of the server actions reboot, stop and start (as nova 34)."""

from osc_snapphase.tests.functional.simulator import base

SOFT = ['rebooting', 'reboot_pending', 'reboot_started', None]
HARD = ['rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard', None]


class TestServerActions(base.SimulatorTestCase):

    def setUp(self):
        super().setUp()
        self.sid = self.control.create_server('vm1')['id']
        self.path = '/compute/v2.1/servers/%s/action' % self.sid

    def act(self, body, user='demo'):
        return self.call('POST', self.path, body, user=user)

    def reboot(self, kind, user='demo'):
        return self.act({'reboot': {'type': kind}}, user=user)

    def log(self, field):
        return [e['new'] for e in self.control.log(resource_id=self.sid)
                if e['field'] == field]

    def held_then_released(self, step, request, task_state):
        """Hold step, send request (202), see task_state, release."""
        self.control.hold(step, self.sid)
        self.assertEqual(202, request().status)
        self.control.wait_held(step, self.sid)
        self.assertEqual(task_state, self.server_field(
            self.sid, 'OS-EXT-STS:task_state'))
        self.assertEqual(1, self.control.release(step, self.sid))
        self.control.wait_task_state(self.sid, None)

    def conflict(self, reply, action, attr, value):
        self.assertEqual(409, reply.status)
        self.assertEqual(
            "Cannot '%s' instance %s while it is in %s %s"
            % (action, self.sid, attr, value),
            reply.body['conflictingRequest']['message'])

    def test_reboot_task_states_and_status(self):
        for kind, states, status in (('SOFT', SOFT, 'REBOOT'),
                                     ('hard', HARD, 'HARD_REBOOT')):
            self.held_then_released(
                'reboot', lambda: self.reboot(kind), states[0])
            logged = self.log('task_state')
            self.assertEqual(states, logged[logged.index(states[0]):])
            self.assertEqual([status, 'ACTIVE'], self.log('status')[-2:])
        actions = self.call('GET', self.path.replace(
            'action', 'os-instance-actions')).body['instanceActions']
        self.assertEqual(['reboot', 'reboot'],
                         [a['action'] for a in actions[:2]])

    def test_soft_reboot_refused_while_rebooting_hard_allowed(self):
        self.control.hold('reboot', self.sid)
        self.assertEqual(202, self.reboot('Soft').status)
        self.conflict(self.reboot('SOFT'), 'reboot', 'task_state',
                      'rebooting')
        # A hard reboot takes over a soft one under way, as in Nova.
        self.assertEqual(202, self.reboot('HARD').status)
        self.assertEqual('rebooting_hard', self.server_field(
            self.sid, 'OS-EXT-STS:task_state'))
        self.control.release()
        self.control.wait_task_state(self.sid, None)
        self.assertEqual('ACTIVE', self.control.server(self.sid)['status'])

    def test_reboot_type_checked(self):
        for kind in ('hArd', 'warm', None, 3):
            reply = self.reboot(kind)
            self.assertEqual(400, reply.status, kind)
            self.assertIn("is not one of ['HARD', 'Hard', 'hard', 'SOFT'",
                          reply.body['badRequest']['message'])
        self.assertEqual(400, self.act({'reboot': None}).status)

    def test_stop_then_start(self):
        for action, task_state, shown in (
                ('os-stop', 'powering-off', ('SHUTOFF', 'stopped', 4)),
                ('os-start', 'powering-on', ('ACTIVE', 'active', 1))):
            self.held_then_released(
                'power', lambda: self.act({action: None}), task_state)
            server = self.control.server(self.sid)
            self.assertEqual(shown, (server['status'],
                                     server['OS-EXT-STS:vm_state'],
                                     server['OS-EXT-STS:power_state']))
        self.assertEqual(['powering-off', None, 'powering-on', None],
                         self.log('task_state')[-4:])

    def test_vm_states_refused_as_nova(self):
        self.conflict(self.act({'os-start': None}), 'start', 'vm_state',
                      'active')
        self.control.set_server_state(self.sid, vm_state='stopped',
                                      power_state=4)
        self.conflict(self.act({'os-stop': None}), 'stop', 'vm_state',
                      'stopped')
        self.conflict(self.reboot('SOFT'), 'reboot', 'vm_state', 'stopped')
        self.control.set_server_state(self.sid, vm_state='building',
                                      task_state='spawning')
        self.conflict(self.reboot('HARD'), 'reboot', 'vm_state', 'building')

    def test_hard_reboot_of_stopped_server_starts_it(self):
        self.control.set_server_state(self.sid, vm_state='stopped',
                                      power_state=4)
        self.control.hold('reboot', self.sid)
        self.assertEqual(202, self.reboot('HARD').status)
        self.control.wait_held('reboot', self.sid)
        # Nova shows a stopped server in a hard reboot as SHUTOFF.
        self.assertEqual('SHUTOFF', self.control.server(self.sid)['status'])
        self.control.release()
        self.control.wait_task_state(self.sid, None)
        server = self.control.server(self.sid)
        self.assertEqual(('ACTIVE', 1), (server['status'],
                                         server['OS-EXT-STS:power_state']))

    def test_busy_server_refused(self):
        self.control.hold('pending', self.sid)
        self.assertEqual(202, self.create_image(self.sid).status)
        self.control.wait_held('pending', self.sid)
        for body, action in (({'os-stop': None}, 'stop'),
                             ({'reboot': {'type': 'SOFT'}}, 'reboot')):
            self.conflict(self.act(body), action, 'task_state',
                          'image_snapshot_pending')

    def test_reset_state_pre_empts_the_snapshot(self):
        self.control.hold('snapshot', self.sid)
        old = self.create_image(self.sid).body['image_id']
        self.control.wait_held('snapshot', self.sid)
        reset = self.act({'os-resetState': {'state': 'active'}}, 'admin')
        self.assertEqual(202, reset.status)
        # The task state is clear: a new image-create is accepted.
        self.control.hold('pending', self.sid)
        new = self.create_image(self.sid).body['image_id']
        self.control.wait_held('pending', self.sid)
        self.control.release('snapshot', self.sid)
        # The old one expected image_snapshot: it ends, its image goes.
        self.control.wait_for(lambda state: old not in [
            i['id'] for i in state['images']])
        server = self.control.server(self.sid)
        self.assertEqual('image_snapshot_pending',
                         server['OS-EXT-STS:task_state'])
        self.assertIn('Conflict updating instance',
                      server['instance_faults'][-1]['message'])
        self.control.release()
        self.wait_idle(self.sid)
        self.assertEqual('active', self.control.image(new)['status'])
        self.assertIsNone(self.control.image(old))
