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

"""``--wait-phase`` of ``server image create`` / ``server backup create``."""

import re
import signal

from osc_snapphase.tests.functional import base

# The product requirement: return within 1 s of the end of the phase,
# measured when the JSON output was complete (not the interpreter's exit).
MAX_LATENCY = 1.0
UPLOADING = ('image_pending_upload', 'image_uploading')
CORE_IMAGE_KEYS = {'container_format', 'created_at', 'disk_format', 'file',
                   'id', 'min_disk', 'min_ram', 'name', 'owner',
                   'properties', 'protected', 'schema', 'status',
                   'tags', 'updated_at', 'visibility'}
STAMP = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ')


class WaitPhaseMixin:
    """The --wait-phase tests; subclasses say image or backup."""

    durations = {'pending': 0.3, 'snapshot': 1.5, 'backup': 1.5,
                 'pending_upload': 1.5, 'uploading': 3.0}

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')
        self.names = iter('snapname-%03d' % i for i in range(1, 1000))

    def create_args(self, *extra, command=None, server=None):
        server = server or self.server
        args = ['server', self.noun, command or 'create', server['id'],
                '--name', next(self.names)]
        if self.noun == 'backup':
            args += ['--type', 'daily', '--rotate', '2']
        return args + list(extra)

    def create(self, *extra, expect=0, command=None, server=None):
        return self.openstack_timed(*self.create_args(
            *extra, command=command, server=server), expect=expect)

    def images(self):
        return self.control.state()['images']

    def assert_returned_after(self, result, old_state):
        """Returned after the change out of old_state, within 1 s."""
        ended_phase = self.changed_at(self.server['id'], old_state)
        latency = result.output_at - ended_phase
        self.assertGreaterEqual(latency, 0)
        self.assertLessEqual(latency, MAX_LATENCY,
                             'returned %.2fs after the end of %s'
                             % (latency, old_state))

    def assert_still_uploading(self, image_id):
        self.assertIn(self.control.server(self.server['id'])[
            'OS-EXT-STS:task_state'], UPLOADING)
        self.assertIn(self.control.image(image_id)['status'],
                      ('queued', 'saving'))

    # -- success -----------------------------------------------------------

    def test_snapshot_phase(self):
        result = self.create('--wait-phase', 'snapshot', '-f', 'json')
        data = result.json()
        self.assert_still_uploading(data['id'])
        self.assert_returned_after(result, self.capture_state)
        self.assertIn(data['server_phase'], ('packaging', 'upload'))
        self.assertIn('disk-capture', data['phase_durations'])
        self.assertIn(data['id'], result.stderr)
        self.assertEqual(CORE_IMAGE_KEYS | {'server_phase',
                                            'phase_durations'}, set(data))

    def test_pending_upload_phase(self):
        result = self.create('--wait-phase', 'pending-upload', '-f', 'json')
        data = result.json()
        self.assert_still_uploading(data['id'])
        self.assertEqual('image_uploading', self.control.server(
            self.server['id'])['OS-EXT-STS:task_state'])
        self.assert_returned_after(result, 'image_pending_upload')
        self.assertEqual('upload', data['server_phase'])

    def test_upload_phase(self):
        self.control.configure(durations={
            'pending': 0.3, 'snapshot': 0.8, 'backup': 0.8,
            'pending_upload': 0.8, 'uploading': 2.0})
        result = self.create('--wait-phase', 'upload', '-f', 'json')
        data = result.json()
        self.assertEqual('active', data['status'])
        self.assertEqual('active', self.control.image(data['id'])['status'])
        self.assertIsNone(self.control.server(self.server['id'])[
            'OS-EXT-STS:task_state'])
        self.assert_returned_after(result, 'image_uploading')
        self.assertEqual('idle', data['server_phase'])
        self.assertEqual(CORE_IMAGE_KEYS | {'server_phase',
                                            'phase_durations'}, set(data))
        for seconds in data['phase_durations'].values():
            self.assertIsInstance(seconds, (int, float))

    def test_yaml_and_value_formats(self):
        self.control.configure(durations={
            'pending': 0.2, 'snapshot': 0.5, 'backup': 0.5,
            'pending_upload': 0.5, 'uploading': 0.5})
        out = self.create('--wait-phase', 'upload', '-f', 'yaml').stdout
        self.assertIn('server_phase: idle', out)
        self.assertIn('phase_durations:', out)
        self.assertIn('status: active', out)
        # Another server: no need to wait for this one to settle.
        out = self.create('--wait-phase', 'snapshot', '-f', 'value', '-c',
                          'status', '-c', 'server_phase',
                          server=self.create_server('vm2')).stdout
        # Columns come in the order of the output: sorted, as core's.
        phase, status = out.split()
        self.assertIn(status, ('queued', 'saving'))
        self.assertIn(phase, ('packaging', 'upload'))

    # -- failures ----------------------------------------------------------

    def _fail_in(self, phase):
        self.control.configure(durations={
            'pending': 0.2, 'snapshot': 0.6, 'backup': 0.6,
            'pending_upload': 0.6, 'uploading': 0.6})
        self.control.add_fault(phase, 'driver_error')
        result = self.create('--wait-phase', 'upload', '-f', 'json',
                             expect=3)
        self.assertEqual('', result.stdout)
        image_id = re.search(r'Image (\S+) of server', result.stderr)
        self.assertIsNotNone(image_id, result.stderr)
        cause = result.stderr.strip().splitlines()[-1]
        self.assertIn(image_id.group(1), cause)
        self.assertIn('without an active image', cause)
        self.assertIsNone(self.control.image(image_id.group(1)))

    def test_failure_in_disk_capture(self):
        self._fail_in(self.capture_fault_phase)

    def test_failure_in_pending_upload(self):
        self._fail_in('pending_upload')

    def test_failure_in_uploading(self):
        self._fail_in('uploading')

    def test_busy_server(self):
        self.control.set_server_state(self.server['id'],
                                      task_state='rebooting')
        before = len(self.images())
        result = self.create('--wait-phase', 'snapshot', expect=1)
        self.assertEqual(before, len(self.images()))
        self.assertIn('rebooting', result.stderr)
        self.assertIn('openstack server task-state watch %s --until idle'
                      % self.server['id'], result.stderr)
        self.assertEqual('', result.stdout)

    def test_wait_and_wait_phase_is_a_usage_error(self):
        before = len(self.images())
        result = self.create('--wait', '--wait-phase', 'snapshot',
                             expect=2)
        self.assertIn('--wait', result.stderr)
        self.assertEqual(before, len(self.images()))
        self.assertNotIn('POST /compute/v2.1/servers/{id}/action',
                         self.control.request_counts())

    def test_stuck_task_state_times_out(self):
        # Stuck in image_uploading about 1 s after the request, so that
        # the task state is unchanged for most of the 3 s.
        self.control.configure(durations={
            'pending': 0.2, 'snapshot': 0.3, 'backup': 0.3,
            'pending_upload': 0.3, 'uploading': 0.4})
        self.control.add_fault('uploading', 'stuck_saving')
        result = self.create('--wait-phase', 'upload',
                             '--wait-phase-timeout', '3', expect=124)
        image_id = re.search(r'Image (\S+) of server', result.stderr)
        self.assertIsNotNone(image_id, result.stderr)
        message = result.stderr.strip().splitlines()[-1]
        self.assertIn(image_id.group(1), message)
        self.assertIn('openstack server task-state watch', message)
        self.assertIn('stuck', message)

    def test_sigint(self):
        self.control.configure(durations={'uploading': 30})
        proc = self.start(*self.create_args('--wait-phase', 'upload',
                                            '-f', 'json'))
        line = self.read_line(proc, stream='stderr')
        image_id = re.search(r'Image (\S+) of server', line).group(1)
        self.assertIsNotNone(self.control.image(image_id))
        self.interrupt(proc, signal.SIGINT)
        result = self.finish(proc, expect=130)
        self.assertEqual('', result.stdout)
        self.assertIn('goes on in the cloud', result.stderr)
        self.assertIn(image_id, result.stderr.splitlines()[-1])

    # -- without --wait-phase: core's output -------------------------------

    def _core_and_hooked(self, fmt):
        # Two servers, so that both images are printed in the same phase
        # (queued) without waiting for the first to finish.
        other = self.create_server('vm2')
        outputs = []
        # Abbreviated command names skip hooks: that is core alone.
        for command, server in (('cre', self.server), ('create', other)):
            before = {i['id'] for i in self.images()}
            result = self.create('-f', fmt, command=command, server=server)
            new = [i for i in self.images() if i['id'] not in before]
            self.assertEqual(1, len(new))
            text = result.stdout.replace(new[0]['id'], 'IMAGE-ID')
            text = text.replace(new[0]['name'], 'NAME')
            text = text.replace(server['id'], 'SERVER-ID')
            outputs.append((STAMP.sub('STAMP', text), result.stderr))
        return outputs

    def test_without_wait_phase_json_is_core(self):
        (core, core_err), (hooked, hooked_err) = self._core_and_hooked(
            'json')
        self.assertEqual(core, hooked)
        self.assertEqual(core_err, hooked_err)
        self.assertNotIn('server_phase', hooked)

    def test_without_wait_phase_table_is_core(self):
        (core, core_err), (hooked, hooked_err) = self._core_and_hooked(
            'table')
        self.assertEqual(core, hooked)
        self.assertEqual(core_err, hooked_err)

    def test_help_shows_the_option(self):
        out = self.openstack('help', 'server', self.noun, 'create').stdout
        self.assertIn('--wait-phase', out)
        self.assertIn('--wait-phase-timeout', out)
        self.assertIn('pending-upload', out)


class TestImageCreateWaitPhase(WaitPhaseMixin, base.TestCase):
    noun = 'image'
    capture_state = 'image_snapshot'
    capture_fault_phase = 'snapshot'


class TestBackupCreateWaitPhase(WaitPhaseMixin, base.TestCase):
    noun = 'backup'
    capture_state = 'image_backup'
    capture_fault_phase = 'backup'
