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
import os
import subprocess
import sys

import testtools

from osc_snapphase.tests import fixture

OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')
WAIT = 60


class TestRealCliAgainstSimulator(testtools.TestCase):

    def setUp(self):
        super().setUp()
        if not os.path.exists(OPENSTACK):
            self.skipTest('no openstack executable next to %s'
                          % sys.executable)
        # Short steps: the tests hold the ones they look at.
        self.sim = self.useFixture(fixture.SimulatorFixture(durations={
            'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
            'uploading': 0.2}))

    def openstack(self, *args, cloud='snapsim', fail_ok=False, env=None):
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith('OS_')}
        environ.update(self.sim.cloud_env(cloud))
        environ.update(env or {})
        proc = subprocess.run([OPENSTACK] + list(args), env=environ,
                              capture_output=True, text=True, timeout=120)
        for secret in self.sim.control.secret_values():
            self.assertNotIn(secret, proc.stdout + proc.stderr)
        if not fail_ok and proc.returncode:
            self.fail('openstack %s: rc=%d\n%s' % (
                ' '.join(args), proc.returncode, proc.stderr))
        return proc

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

    def test_server_deleted_mid_snapshot_as_real_nova(self):
        # Pinned for nova 34 by functional_nova test_core
        # test_server_deleted_during_snapshot.
        control = self.sim.control
        server_id = control.create_server('vm1')['id']
        # The upload (image saving) is held until the server is gone.
        control.hold('uploading', server_id)
        image = json.loads(self.openstack(
            'server', 'image', 'create', 'vm1', '--name', 'snap1',
            '-f', 'json').stdout)
        control.wait_held('uploading', server_id, timeout=WAIT)
        self.openstack('server', 'delete', 'vm1')
        control.wait_for(lambda s: control.server(server_id)[
            'status'] == 'DELETED', timeout=WAIT)
        # The image outlives the server until the snapshot task notices.
        self.assertEqual('saving', control.image(image['id'])['status'])
        self.assertEqual(1, control.release('uploading', server_id))
        control.wait_for(lambda s: control.image(image['id']) is None,
                         timeout=WAIT)
        # Not even an admin gets a deleted server by ID ...
        admin = self.sim.cloud_name + '-admin'
        shown = self.openstack('server', 'show', server_id, cloud=admin,
                               fail_ok=True)
        self.assertEqual(1, shown.returncode)
        self.assertIn('No Server found', shown.stderr)
        # ... only the admin list of deleted servers shows it.
        listed = json.loads(self.openstack(
            'server', 'list', '--deleted', '--all-projects', '-f', 'json',
            cloud=admin).stdout)
        self.assertEqual([(server_id, 'DELETED')], [
            (s['ID'], s['Status']) for s in listed])
