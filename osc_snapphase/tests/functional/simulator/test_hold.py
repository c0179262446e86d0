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

"""Tests of hold/release, Cloud.checkpoint and the capture records."""

from osc_snapphase.simulator import client
from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.tests.functional.simulator import base


class TestCheckpoint(base.SimulatorTestCase):
    """Cloud.checkpoint as the Cinder path calls it (no key)."""

    def setUp(self):
        super().setUp()
        self.cloud = self.sim.cloud
        self.server = self.control.create_server('vm1')
        self.srv = self.cloud.servers[self.server['id']]
        self.calls = []

    def proceed(self):
        self.calls.append('go')

    def test_no_rule_proceeds_at_once(self):
        with self.cloud.lock:
            self.cloud.checkpoint(self.srv, 'volume_snapshot', self.proceed)
        self.assertEqual(['go'], self.calls)

    def test_held_until_released(self):
        self.control.hold('volume_snapshot', 'vm1')
        with self.cloud.lock:
            self.cloud.checkpoint(self.srv, 'volume_snapshot', self.proceed)
        self.assertEqual([], self.calls)
        held = self.control.wait_held('volume_snapshot', 'vm1')['held']
        self.assertEqual([(self.srv['id'], 'vm1', 'volume_snapshot')],
                         [(h['server_id'], h['server_name'], h['step'])
                          for h in held])
        self.assertEqual(1, self.control.release('volume_snapshot'))
        self.assertEqual(['go'], self.calls)
        self.assertEqual([], self.control.state()['held'])
        self.assertEqual([], self.control.state()['holds'])

    def test_other_step_or_server_not_held(self):
        self.control.hold('copy', self.srv['id'])
        self.control.hold('volume_snapshot', 'other')
        with self.cloud.lock:
            self.cloud.checkpoint(self.srv, 'volume_snapshot', self.proceed)
        self.assertEqual(['go'], self.calls)

    def test_release_before_reached_removes_rule(self):
        self.control.hold('volume_snapshot')
        self.assertEqual(0, self.control.release(server='vm1'))
        with self.cloud.lock:
            self.cloud.checkpoint(self.srv, 'volume_snapshot', self.proceed)
        self.assertEqual(['go'], self.calls)

    def test_release_by_id_of_a_hold_by_name(self):
        self.control.hold('volume_snapshot', 'vm1')
        self.control.hold('copy')
        with self.cloud.lock:
            self.cloud.checkpoint(self.srv, 'volume_snapshot', self.proceed)
        self.assertEqual(1, self.control.release(server=self.srv['id']))
        self.assertEqual(['go'], self.calls)
        # Every rule that could hold vm1 is gone, the any-server one too.
        self.assertEqual([], self.control.state()['holds'])

    def test_release_other_server_keeps_rule(self):
        self.control.create_server('vm2')
        self.control.hold('copy', 'vm1')
        self.assertEqual(0, self.control.release('copy', 'vm2'))
        self.assertEqual([{'step': 'copy', 'server': 'vm1'}],
                         self.control.state()['holds'])

    def test_once_per_key(self):
        self.control.hold('copy')
        with self.cloud.lock:
            self.cloud.checkpoint(self.srv, 'copy', self.proceed, key=1)
            self.cloud.checkpoint(self.srv, 'copy', self.proceed, key=1)
            self.cloud.checkpoint(self.srv, 'copy', self.proceed, key=2)
        self.assertEqual(['go'], self.calls)
        self.assertEqual(2, self.control.release())
        self.assertEqual(['go'] * 3, self.calls)

    def test_bad_step(self):
        error = self.assertRaises(client.ControlError, self.control.hold,
                                  'nonsense')
        self.assertEqual(400, error.status)

    def test_record_capture(self):
        with self.cloud.lock:
            entry = self.cloud.record_capture(
                self.srv['id'], 'img', 'cinder', 1.0, point_in_time=1.0,
                task_state=None, snapshot_id='snap')
            entry['ended'] = 2.0
        other = self.control.create_server('vm2')
        with self.cloud.lock:
            self.cloud.record_capture(other['id'], 'img2', 'xenserver', 3.0)
        captures = self.control.captures(self.srv['id'])
        self.assertEqual([{'server_id': self.srv['id'], 'image_id': 'img',
                           'driver': 'cinder', 'started': 1.0,
                           'point_in_time': 1.0, 'ended': 2.0,
                           'task_state': None, 'snapshot_id': 'snap'}],
                         captures)
        self.assertEqual(2, len(self.control.captures()))


class TestHoldSnapshot(base.SimulatorTestCase):

    def test_hold_each_phase(self):
        sid = self.control.create_server('vm1')['id']
        for step in ('pending', 'snapshot', 'pending_upload', 'uploading'):
            self.control.hold(step, sid)
        image_id = self.create_image(sid).body['image_id']
        seen = []
        for step, state in (('pending', 'image_snapshot_pending'),
                            ('snapshot', 'image_snapshot'),
                            ('pending_upload', 'image_pending_upload'),
                            ('uploading', 'image_uploading')):
            self.control.wait_held(step, sid)
            seen.append(self.server_field(sid, 'OS-EXT-STS:task_state'))
            self.assertEqual(state, seen[-1])
            self.control.release(step, sid)
        self.wait_idle(sid)
        self.assertEqual('active', self.control.image(image_id)['status'])

    def test_duration_bounce_in_ms(self):
        cloud = cloud_mod.Cloud(durations={'bounce': 5})
        self.addCleanup(cloud.timers.stop)
        self.assertEqual(0.005, cloud.duration('bounce'))
