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

"""Drive the real openstack CLI against the simulator subprocess."""

import json

from osc_snapphase.tests.functional import base

WAIT = 60


class TestRealCliAgainstSimulator(base.TestCase):

    # Short steps: the tests hold the ones they look at.
    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'uploading': 0.2}

    def openstack(self, *args, cloud=None, fail_ok=False, env=None):
        return super().openstack(*args, cloud=cloud, env=env,
                                 expect=None if fail_ok else 0)

    def test_server_image_create_phases_and_conflict(self):
        server = json.loads(self.openstack(
            'server', 'create', '--flavor', 'm1.tiny', '--image', 'cirros',
            '--nic', 'none', '--wait', 'vm1', '-f', 'json').stdout)
        self.assertEqual('ACTIVE', server['status'])
        # Held in image_snapshot until the end of the test.
        control = self.sim.control
        control.hold('snapshot', 'vm1')
        image = json.loads(self.openstack(
            'server', 'image', 'create', 'vm1', '--name', 's1',
            '-f', 'json').stdout)
        self.assertEqual('queued', image['status'])
        control.wait_held('snapshot', 'vm1', timeout=WAIT)
        shown = json.loads(self.openstack(
            'server', 'show', 'vm1', '-f', 'json').stdout)
        self.assertEqual('image_snapshot', shown['OS-EXT-STS:task_state'])
        self.assertEqual(1, shown['OS-EXT-STS:power_state'])
        second = self.openstack('server', 'image', 'create', 'vm1',
                                '--name', 's2', fail_ok=True)
        self.assertEqual(1, second.returncode)
        self.assertIn("Cannot 'createImage' instance %s while it is in "
                      'task_state image_snapshot' % server['id'],
                      second.stderr)
        self.assertEqual('queued', control.image(image['id'])['status'])
        counts = control.request_counts()
        self.assertEqual(2, counts[
            'POST /compute/v2.1/servers/{id}/action'])
        # Released, the image-create goes on to an active image.
        self.assertEqual(1, control.release('snapshot', 'vm1'))
        control.wait_task_state(server['id'], None, timeout=WAIT)
        self.assertEqual('active', control.image(image['id'])['status'])
        self.assertEqual(['s1'], [i['name'] for i in control.state()[
            'images'] if i['name'] in ('s1', 's2')])

    def test_wrong_password_is_a_clear_error(self):
        proc = self.openstack('--os-password', 'wrong', 'server', 'list',
                              fail_ok=True)
        self.assertEqual(1, proc.returncode)
        self.assertIn('requires authentication', proc.stderr)
