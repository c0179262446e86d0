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
import subprocess

from osc_snapphase.tests.functional import base

# Each phase lasts long enough for one `openstack` run (about a second, more
# on a loaded machine) to land inside it after wait_task_state.
LONG = 3.0

# task state -> (phase, disk_writes_safe, image_create_allowed)
EXPECTED = {
    None: ('idle', True, True),
    'image_snapshot_pending': ('disk-capture', False, False),
    'image_snapshot': ('disk-capture', False, False),
    'image_backup': ('disk-capture', False, False),
    'image_pending_upload': ('packaging', True, False),
    'image_uploading': ('upload', True, False),
}

IMAGE_SEQUENCE = (('pending', 'image_snapshot_pending'),
                  ('snapshot', 'image_snapshot'),
                  ('pending_upload', 'image_pending_upload'),
                  ('uploading', 'image_uploading'))
BACKUP_SEQUENCE = (('backup', 'image_backup'),
                   ('pending_upload', 'image_pending_upload'),
                   ('uploading', 'image_uploading'))


class TestShowPhases(base.TestCase):
    """Sample ``show -f json`` in every phase of image and backup creation."""

    def show(self, server, *extra, expect=0):
        return self.openstack('server', 'task-state', 'show', server,
                              '-f', 'json', *extra, expect=expect)

    def assert_shown(self, server, task_state):
        data = self.show(server['id']).json()
        phase, safe, allowed = EXPECTED[task_state]
        self.assertEqual(server['id'], data['id'])
        self.assertEqual(server['name'], data['name'])
        # An empty task state is JSON null.
        self.assertEqual(task_state, data['task_state'],
                         'the phase under test ended before show ran')
        self.assertEqual(phase, data['phase'])
        # JSON booleans, not strings.
        self.assertIs(safe, data['disk_writes_safe'])
        self.assertIs(allowed, data['image_create_allowed'])
        self.assertEqual('ACTIVE', data['status'])
        self.assertEqual('active', data['vm_state'])
        self.assertEqual('Running', data['power_state'])
        self.assertTrue(data['description'])
        return data

    def _walk(self, sequence, *create):
        server = self.create_server('vm1')
        self.assert_shown(server, None)
        # One operation whose every phase is long enough for a show run.
        self.control.configure(durations={
            phase: LONG for phase, _state in sequence})
        proc = self.start(*create + (server['id'], '-f', 'json'))
        for _phase, task_state in sequence:
            self.control.wait_task_state(server['id'], task_state)
            self.assert_shown(server, task_state)
        self.finish(proc)
        self.control.wait_task_state(server['id'], None, timeout=30)
        self.assert_shown(server, None)

    def test_every_phase_of_an_image_create(self):
        self._walk(IMAGE_SEQUENCE, 'server', 'image', 'create', '--name',
                   'snap')

    def test_every_phase_of_a_backup(self):
        self._walk(BACKUP_SEQUENCE, 'server', 'backup', 'create', '--name',
                   'bak', '--type', 'daily', '--rotate', '2')

    def test_other_task_state_is_busy(self):
        server = self.create_server('vm1', task_state='rebooting')
        data = self.show('vm1').json()
        self.assertEqual('rebooting', data['task_state'])
        self.assertEqual('other', data['phase'])
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
             'power_state', 'phase', 'description', 'disk_writes_safe',
             'image_create_allowed'}, set(data))
        self.assertIsNone(data['task_state'])
        self.assertIs(True, data['disk_writes_safe'])
        self.assertIs(True, data['image_create_allowed'])

    def test_table(self):
        out = self.show('-f', 'table').stdout
        self.assertIn('| Field', out)
        for field in ('disk_writes_safe', 'image_create_allowed', 'phase',
                      self.server['id']):
            self.assertIn(field, out)

    def test_default_format_is_table(self):
        self.assertIn('| Field', self.show().stdout)

    def test_value(self):
        lines = self.show('-f', 'value').stdout.splitlines()
        self.assertEqual(10, len(lines))
        self.assertEqual(self.server['id'], lines[0])
        self.assertEqual('vm1', lines[1])
        self.assertEqual('idle', lines[6])

    def test_value_with_columns(self):
        out = self.show('-f', 'value', '-c', 'phase', '-c',
                        'disk_writes_safe').stdout
        self.assertEqual(['True', 'idle'], sorted(out.split()))

    def test_shell(self):
        out = self.show('-f', 'shell', '--prefix', 'ts_').stdout
        self.assertIn('ts_id="%s"' % self.server['id'], out)
        self.assertIn('ts_phase="idle"', out)
        self.assertIn('ts_disk_writes_safe="True"', out)

    def test_yaml(self):
        out = self.show('-f', 'yaml').stdout
        self.assertIn('disk_writes_safe: true', out)
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
        started = subprocess.run(
            [base.OPENSTACK, 'server', 'task-state', 'show', 'vm1'],
            env={k: v for k, v in self.environ(env=env).items()
                 if k != 'OS_CLOUD'},
            capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)
        result = base.Result(('no-credentials',), started.returncode,
                             started.stdout, started.stderr, 0, 0)
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
