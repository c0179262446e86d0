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

"""``openstack server task-state show`` against the simulator."""

import socket

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import base


# Steps the tests do not look at are short; the ones they look at are held.
SHORT = {'pending': 0.05, 'snapshot': 0.1, 'backup': 0.1,
         'pending_upload': 0.1, 'copy': 0.1, 'bounce': 5, 'uploading': 0.2}

# task state -> phase
PHASES = {
    None: 'idle',
    'image_snapshot_pending': 'snapshot',
    'image_snapshot': 'snapshot',
    'image_backup': 'snapshot',
    'image_pending_upload': 'pending-upload',
    'image_uploading': 'upload',
}

# (held step, task state, capture, disk_writes_safe, image status) of each
# step, in the order of the driver. Under the default capture model
# (image-status) only a saving image proves the copy over: the disk is
# unsafe until the final image_uploading.
XENSERVER_IMAGE = (
    ('pending', 'image_snapshot_pending', 'not-started', False, 'queued'),
    ('snapshot', 'image_snapshot', 'in-progress', False, 'queued'),
    ('pending_upload', 'image_pending_upload', 'in-progress', False,
     'queued'),
    ('uploading', 'image_uploading', 'complete', True, 'saving'),
)
XENSERVER_BACKUP = (
    ('backup', 'image_backup', 'in-progress', False, 'queued'),
    ('pending_upload', 'image_pending_upload', 'in-progress', False,
     'queued'),
    ('uploading', 'image_uploading', 'complete', True, 'saving'),
)
# libvirt file-backed disks: the steps of XenServer's image with, before
# the final upload, the image_uploading bounce (queued image) and the copy
# in a second image_pending_upload; neither is safe.
LIBVIRT_FILE_IMAGE = XENSERVER_IMAGE[:-1] + (
    ('bounce', 'image_uploading', 'in-progress', False, 'queued'),
    ('copy', 'image_pending_upload', 'in-progress', False, 'queued'),
) + XENSERVER_IMAGE[-1:]


class TestShowPhases(base.TestCase):
    """Hold every step of an image-create and a backup; show each."""

    durations = SHORT

    def show(self, server, *extra, expect=0):
        return self.openstack(*extra + ('server', 'task-state', 'show',
                                        server, '-f', 'json'),
                              expect=expect).json()

    def assert_shown(self, server, task_state, capture, safe, image=None,
                     status=None):
        data = self.show(server['id'])
        self.assertEqual(server['id'], data['id'])
        self.assertEqual(server['name'], data['name'])
        # An empty task state is JSON null.
        self.assertEqual(task_state, data['task_state'])
        self.assertEqual(PHASES[task_state], data['phase'])
        self.assertEqual((capture, 'image-status'),
                         (data['capture'], data['capture_model']),
                         data['capture_evidence'])
        # JSON booleans, not strings.
        self.assertIs(safe, data['disk_writes_safe'])
        self.assertIs(task_state is None, data['image_create_allowed'])
        self.assertIs(False, data['volume_backed'])
        self.assertEqual('ACTIVE', data['status'])
        self.assertEqual('active', data['vm_state'])
        # As core's server show -f json: the number Nova gives.
        self.assertEqual(1, data['power_state'])
        self.assertTrue(data['description'])
        if capture in ('in-progress', 'complete'):
            # The evidence names the snapshot image and its status.
            self.assertIn(image, data['capture_evidence'])
            self.assertIn(status, data['capture_evidence'])
        return data

    def _walk(self, steps, *create, driver='xenserver', also=None):
        """Hold each step in turn and show the server in it.

        also(server, step): more checks while a step is held.
        """
        server = self.create_server('vm1', driver=driver)
        self.assert_shown(server, None, 'none', True)
        for step in {step for step, *_rest in steps}:
            self.hold(step, server['id'])
        # The CLI prints the image while the first step is held.
        image = self.openstack(*create + (server['id'], '-f',
                                          'json')).json()
        for step, task_state, capture, safe, status in steps:
            self.control.wait_held(step, server['id'], timeout=base.WAIT)
            self.assertEqual(status,
                             self.control.image(image['id'])['status'])
            self.assert_shown(server, task_state, capture, safe,
                              image['id'], status)
            if also:
                also(server, step)
            self.assertEqual(1, self.control.release(step, server['id']))
        self.control.wait_task_state(server['id'], None, timeout=base.WAIT)
        self.assert_shown(server, None, 'none', True)
        self.assertEqual('active', self.control.image(image['id'])['status'])

    def test_every_phase_of_an_image_create(self):
        def xenserver_model(server, step):
            # The xenserver model takes the end of image_snapshot as the
            # proof (right for XenServer only): safe from
            # image_pending_upload on.
            if step == 'pending_upload':
                data = self.show(server['id'],
                                 '--os-snapphase-capture-model', 'xenserver')
                self.assertEqual(('complete', 'xenserver', True), (
                    data['capture'], data['capture_model'],
                    data['disk_writes_safe']))
        self._walk(XENSERVER_IMAGE, 'server', 'image', 'create', '--name',
                   'snap', also=xenserver_model)

    def test_every_phase_of_a_libvirt_file_image_create(self):
        self._walk(LIBVIRT_FILE_IMAGE, 'server', 'image', 'create',
                   '--name', 'snap', driver='libvirt-file')

    def test_every_phase_of_a_backup(self):
        self._walk(XENSERVER_BACKUP, 'server', 'backup', 'create', '--name',
                   'bak', '--type', 'daily', '--rotate', '2')

    def test_other_task_state_is_busy(self):
        server = self.create_server('vm1', task_state='rebooting')
        data = self.show('vm1')
        self.assertEqual('rebooting', data['task_state'])
        self.assertEqual('other', data['phase'])
        self.assertEqual('none', data['capture'])
        self.assertIs(True, data['disk_writes_safe'])
        self.assertIs(False, data['image_create_allowed'])
        self.assertEqual(server['id'], data['id'])


class TestShowFormats(base.TestCase):

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')

    def show(self, *extra):
        return self.openstack('server', 'task-state', 'show', 'vm1', *extra)

    def test_json(self):
        data = self.show('-f', 'json').json()
        self.assertEqual(
            {'id', 'name', 'status', 'vm_state', 'task_state',
             'power_state', 'phase', 'description', 'capture',
             'capture_evidence', 'capture_model', 'disk_writes_safe',
             'image_create_allowed', 'volume_backed'}, set(data))
        self.assertIsNone(data['task_state'])
        self.assertEqual('none', data['capture'])
        self.assertTrue(data['capture_evidence'])
        self.assertEqual('image-status', data['capture_model'])
        self.assertIs(True, data['disk_writes_safe'])
        self.assertIs(True, data['image_create_allowed'])
        self.assertIs(False, data['volume_backed'])

    def test_table(self):
        out = self.show('-f', 'table').stdout
        self.assertIn('| Field', out)
        for field in ('capture', 'capture_evidence', 'capture_model',
                      'disk_writes_safe', 'image_create_allowed', 'phase',
                      'volume_backed', self.server['id']):
            self.assertIn(field, out)

    def test_default_format_is_table(self):
        self.assertIn('| Field', self.show().stdout)

    def test_value(self):
        lines = self.show('-f', 'value').stdout.splitlines()
        # id, name, status, vm_state, task_state, power_state, phase,
        # description, capture, capture_evidence, capture_model,
        # disk_writes_safe, image_create_allowed, volume_backed
        self.assertEqual(14, len(lines))
        self.assertEqual(self.server['id'], lines[0])
        self.assertEqual('vm1', lines[1])
        self.assertEqual('idle', lines[6])
        self.assertEqual(['none', 'image-status', 'True', 'True', 'False'],
                         [lines[8]] + lines[10:])

    def test_value_with_columns(self):
        out = self.show('-f', 'value', '-c', 'phase', '-c',
                        'disk_writes_safe').stdout
        self.assertEqual(['True', 'idle'], sorted(out.split()))

    def test_shell(self):
        out = self.show('-f', 'shell', '--prefix', 'ts_').stdout
        self.assertIn('ts_id="%s"' % self.server['id'], out)
        self.assertIn('ts_phase="idle"', out)
        self.assertIn('ts_capture="none"', out)
        self.assertIn('ts_capture_model="image-status"', out)
        self.assertIn('ts_disk_writes_safe="True"', out)

    def test_yaml(self):
        out = self.show('-f', 'yaml').stdout
        self.assertIn('capture: none', out)
        self.assertIn('disk_writes_safe: true', out)
        self.assertIn('volume_backed: false', out)
        self.assertIn('image_create_allowed: true', out)
        self.assertIn('task_state: null', out)
        self.assertIn('id: %s' % self.server['id'], out)


class TestShowBadInput(base.TestCase):

    def assert_one_line_error(self, result, *fragments, warnings=0):
        self.assertNotEqual(0, result.returncode)
        self.assertEqual('', result.stdout)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        self.assertEqual(1 + warnings, len(lines),
                         'stderr: %r' % result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, lines[-1])

    def test_unknown_server(self):
        result = self.openstack('server', 'task-state', 'show', 'nosuch',
                                expect=1)
        self.assert_one_line_error(result, 'nosuch')

    def test_unknown_server_id(self):
        result = self.openstack(
            'server', 'task-state', 'show',
            '00000000-0000-4000-8000-000000000000', expect=1)
        self.assert_one_line_error(result,
                                   '00000000-0000-4000-8000-000000000000')

    def test_ambiguous_name(self):
        self.create_server('twin')
        self.create_server('twin')
        result = self.openstack('server', 'task-state', 'show', 'twin',
                                expect=1)
        self.assert_one_line_error(result, 'twin')
        self.assertIn('ore than one', result.stderr)

    def test_empty_string(self):
        result = self.openstack('server', 'task-state', 'show', '',
                                expect=2)
        self.assertEqual('', result.stdout)
        last = result.stderr.strip().splitlines()[-1]
        self.assertIn('error:', last)
        self.assertIn('server', last)

    def test_no_credentials(self):
        # Nothing selects a cloud: no OS_* variables, no clouds.yaml.
        env = {'OS_CLIENT_CONFIG_FILE': '/nonexistent/clouds.yaml',
               'HOME': self.sim.state_dir + '/empty-home'}
        result = cli.run(
            ('server', 'task-state', 'show', 'vm1'),
            {k: v for k, v in self.environ(env=env).items()
             if k != 'OS_CLOUD'})
        self.check_result(result, 1)
        self.assert_one_line_error(result)
        self.assertRegex(result.stderr.lower(), 'auth|credential')

    def test_wrong_password(self):
        self.create_server('vm1')
        result = self.openstack('--os-password', 'wrong', 'server',
                                'task-state', 'show', 'vm1', expect=1)
        self.assert_one_line_error(result)
        self.assertIn('authentication', result.stderr)

    def test_unreachable_cloud(self):
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()   # nothing listens there now
        result = self.openstack(
            '--os-auth-url', 'http://127.0.0.1:%d/identity/v3' % port,
            'server', 'task-state', 'show', 'vm1', expect=1)
        # keystoneauth logs one warning line of its own before the error
        # (core commands such as `openstack server show` print the same).
        self.assert_one_line_error(result, '127.0.0.1:%d' % port,
                                   'Unable to establish connection',
                                   warnings=1)
