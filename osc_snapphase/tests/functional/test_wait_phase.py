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

"""``--wait-phase`` of ``server image create`` / ``server backup create``.

Every step the tests look at is held by the simulator until the test has
seen the CLI poll it (request counters); the others are short. No test
asserts a wall-clock bound: the 1 s answer is test_capture's.
"""

import re
import signal

from osc_snapphase.tests.functional import base

WAIT = 60
GET_IMAGE = 'GET /image/v2/images/{id}'
CORE_IMAGE_KEYS = {'container_format', 'created_at', 'disk_format', 'file',
                   'id', 'min_disk', 'min_ram', 'name', 'owner',
                   'properties', 'protected', 'schema', 'status',
                   'tags', 'updated_at', 'visibility'}
WAIT_PHASE_KEYS = CORE_IMAGE_KEYS | {'server_phase', 'phase_durations',
                                     'capture', 'capture_evidence',
                                     'capture_model'}
STAMP = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ')


class WaitPhaseMixin:
    """The --wait-phase tests; subclasses say image or backup."""

    # Short steps; the tests hold the ones they look at.
    durations = {'pending': 0.05, 'snapshot': 0.1, 'backup': 0.1,
                 'pending_upload': 0.1, 'copy': 0.1, 'bounce': 5,
                 'uploading': 0.2}

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
        return self.openstack(*self.create_args(
            *extra, command=command, server=server), expect=expect)

    def start_create(self, *extra, server=None):
        return self.start(*self.create_args(*extra, server=server))

    def images(self):
        return self.control.state()['images']

    def still_waiting(self, proc, step, server=None):
        """The CLI polls on while the operation is held at step.

        Waits until the step is held and the CLI has read the server and
        the image twice more, then checks that it has not returned.
        """
        server = server or self.server
        self.control.wait_held(step, server['id'], timeout=WAIT)
        for key in (base.GET_SERVER, GET_IMAGE):
            self.wait_requests(key, self.request_count(key) + 2,
                               timeout=WAIT)
        if proc.poll() is not None:
            self.fail('returned in the held %s step: %s'
                      % (step, proc.communicate(timeout=WAIT)))

    def status_at(self, image_id, status):
        """When the simulator set the image status (time.time())."""
        for entry in self.control.log(resource_id=image_id):
            if entry['field'] == 'status' and entry['new'] == status:
                return entry['time']
        self.fail('image %s was never %s' % (image_id, status))

    def assert_returned_after(self, result, image_id, status):
        """The output came after the image went status (an order)."""
        self.assertGreaterEqual(result.output_at,
                                self.status_at(image_id, status))

    # -- success -----------------------------------------------------------

    def _returns_once_saving(self, phase, driver):
        """--wait-phase phase returns in the final image_uploading.

        Holds every step where the capture is not proven (the image is
        queued) and checks that the CLI polls on there; holds the final
        image_uploading (image saving) until the CLI has returned.
        """
        server = self.create_server('vm-' + driver, driver=driver)
        sid = server['id']
        if driver == 'xenserver':
            unproven = ['pending_upload']
        else:
            unproven = ['bounce', 'copy']
        for step in set([self.first_step, 'uploading'] + unproven):
            self.hold(step, sid)
        proc = self.start_create('--wait-phase', phase, '-f', 'json',
                                 server=server)
        # The CLI sees the disk capture (its first step).
        self.release_after_polls(self.first_step, server=sid, timeout=WAIT)
        for step in unproven:
            self.still_waiting(proc, step, server)
            self.assertEqual('queued', self.image_of(sid)['status'])
            self.assertEqual(1, self.control.release(step, sid))
        result = self.finish_timed(proc)
        data = result.json()
        self.assertEqual(WAIT_PHASE_KEYS, set(data))
        # Returned while the upload is still held: image saving.
        self.assertEqual(['uploading'], [
            h['step'] for h in self.control.state()['held']])
        self.assertEqual('image_uploading', self.control.server(sid)[
            'OS-EXT-STS:task_state'])
        self.assertEqual('saving', self.control.image(data['id'])['status'])
        self.assert_returned_after(result, data['id'], 'saving')
        self.assertEqual(('saving', 'complete', 'image-status'), (
            data['status'], data['capture'], data['capture_model']))
        if phase == 'snapshot':
            # The saving image alone proves the capture: the server may
            # have been read just before, still in image_pending_upload.
            self.assertIn(data['server_phase'], ('pending-upload', 'upload'))
        else:
            self.assertEqual('upload', data['server_phase'])
        self.assertIn(data['id'], data['capture_evidence'])
        self.assertIn('saving', data['capture_evidence'])
        self.assertIn('snapshot', data['phase_durations'])
        self.assertIn(data['id'], result.stderr)
        return data

    def image_of(self, server_id):
        image, = [i for i in self.images()
                  if i['properties'].get('instance_uuid') == server_id]
        return image

    def test_snapshot_phase(self):
        self._returns_once_saving('snapshot', 'xenserver')

    def test_snapshot_phase_libvirt_file(self):
        self._returns_once_saving('snapshot', 'libvirt-file')

    def test_pending_upload_phase(self):
        self._returns_once_saving('pending-upload', 'xenserver')

    def test_pending_upload_phase_libvirt_file(self):
        # The bounce is past image_pending_upload, but its image is
        # queued: the capture is not proven there.
        self._returns_once_saving('pending-upload', 'libvirt-file')

    def test_upload_phase(self):
        sid = self.server['id']
        self.hold('uploading', sid)
        proc = self.start_create('--wait-phase', 'upload', '-f', 'json')
        # Saving is not active: the CLI polls on.
        self.still_waiting(proc, 'uploading')
        self.control.release('uploading', sid)
        result = self.finish_timed(proc)
        data = result.json()
        self.assertEqual('active', data['status'])
        self.assertEqual('active', self.control.image(data['id'])['status'])
        self.assertIsNone(self.control.server(sid)['OS-EXT-STS:task_state'])
        self.assert_returned_after(result, data['id'], 'active')
        self.assertEqual(('idle', 'complete'), (data['server_phase'],
                                                data['capture']))
        # Every column of the image read at the end, as after --wait: the
        # active image has its size and checksum.
        self.assertEqual(WAIT_PHASE_KEYS | {'checksum', 'size',
                                            'virtual_size'}, set(data))
        for seconds in data['phase_durations'].values():
            self.assertIsInstance(seconds, (int, float))

    def test_yaml_and_value_formats(self):
        out = self.create('--wait-phase', 'upload', '-f', 'yaml').stdout
        self.assertIn('server_phase: idle', out)
        self.assertIn('phase_durations:', out)
        self.assertIn('status: active', out)
        self.assertIn('capture: complete', out)
        # Another server, its upload held: no need to wait for this one
        # to settle.
        other = self.create_server('vm2')
        self.hold('uploading', other['id'])
        out = self.create('--wait-phase', 'snapshot', '-f', 'value', '-c',
                          'status', '-c', 'server_phase', '-c', 'capture',
                          server=other).stdout
        # Columns come in the order of the output: sorted, as core's.
        capture, phase, status = out.split()
        self.assertEqual(('complete', 'saving'), (capture, status))
        # The server may have been read just before the image went saving.
        self.assertIn(phase, ('pending-upload', 'upload'))

    # -- failures ----------------------------------------------------------

    def _fail_in(self, phase):
        # Held until the CLI polls: the image is read (and printed) by
        # core before the fault deletes it.
        sid = self.server['id']
        self.hold(phase, sid)
        self.control.add_fault(phase, 'driver_error')
        proc = self.start_create('--wait-phase', 'upload', '-f', 'json')
        self.release_after_polls(phase, server=sid, timeout=WAIT)
        result = self.finish(proc, expect=3)
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
        # 5: busy, not an error (retry once the task is over).
        result = self.create('--wait-phase', 'snapshot', expect=5)
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
        # Held in its first step from the request on: the task state
        # never changes while the CLI waits.
        self.hold(self.first_step, self.server['id'])
        result = self.create('--wait-phase', 'upload',
                             '--wait-phase-timeout', '10', expect=124)
        image_id = re.search(r'Image (\S+) of server', result.stderr)
        self.assertIsNotNone(image_id, result.stderr)
        message = result.stderr.strip().splitlines()[-1]
        self.assertIn(image_id.group(1), message)
        self.assertIn('openstack server task-state watch', message)
        self.assertIn('stuck', message)
        self.assertIn(self.first_state, message)

    def test_sigint(self):
        self.hold('uploading', self.server['id'])
        proc = self.start_create('--wait-phase', 'upload', '-f', 'json')
        line = self.read_line(proc, timeout=WAIT, stream='stderr')
        image_id = re.search(r'Image (\S+) of server', line).group(1)
        self.assertIsNotNone(self.control.image(image_id))
        self.interrupt(proc, signal.SIGINT)
        result = self.finish(proc, expect=130)
        self.assertEqual('', result.stdout)
        self.assertIn('goes on in the cloud', result.stderr)
        self.assertIn(image_id, result.stderr.splitlines()[-1])

    # -- without --wait-phase: core's output -------------------------------

    def _core_and_hooked(self, fmt):
        # Two servers, both held in their first step, so that both images
        # are printed in the same state (queued).
        other = self.create_server('vm2')
        self.hold(self.first_step)
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
        self.assertNotIn('capture', hooked)

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
    first_step = 'pending'
    first_state = 'image_snapshot_pending'
    capture_fault_phase = 'snapshot'


class TestBackupCreateWaitPhase(WaitPhaseMixin, base.TestCase):
    noun = 'backup'
    first_step = 'backup'
    first_state = 'image_backup'
    capture_fault_phase = 'backup'
