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

"""Reliability suite, signals and pipes (issue 7).

SIGINT and SIGTERM at each stage: resolving the server (its lookup is
slowed down), creating the image (the createImage POST is slowed down),
waiting, and printing. Exit 130 / 143, ``-f json`` output complete and
valid where it had begun, the image creation never cancelled and its ID
never lost. Signals go with Popen.send_signal: background jobs of a
non-interactive shell would ignore SIGINT.
"""

import json
import signal
import subprocess
import time

from osc_snapphase.tests.functional import base
from osc_snapphase.tests.functional import reliability

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
ACTION_PATH = r'/servers/[0-9a-f-]{36}/action$'
IMAGE_PATH = r'/v2/images/[0-9a-f-]{36}$'


class SignalCase(reliability.ReliabilityTestCase):

    durations = {'pending': 0.3, 'snapshot': 1.5, 'pending_upload': 1.0,
                 'uploading': 4.0}

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')
        self.images_before = {i['id'] for i in self.control.state()['images']}

    def wait_request(self, predicate, timeout=20):
        """Wait for a request matching predicate; return it"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.control.requests()['requests']:
                if predicate(entry):
                    return entry
            time.sleep(0.05)
        self.fail('the expected request never came')

    def wait_fault(self, kind='delay', timeout=20):
        return self.wait_request(lambda e: e['fault'] == kind, timeout)

    def new_images(self):
        state = self.control.state()
        return [i['id'] for i in state['images'] + state['deleted_images']
                if i['id'] not in self.images_before]

    def assert_image_goes_on(self, result=None):
        """The image creation was not cancelled; its ID was printed."""
        new = self.new_images()
        self.assertEqual(1, len(new), 'exactly one image created')
        image_id = new[0]
        self.control.wait_for(
            lambda s: any(i['id'] == image_id and i['status'] == 'active'
                          for i in s['images']), 30)
        if result is not None:
            self.assertIn(image_id, result.stderr, 'the image ID was lost')
        return image_id

    def signalled(self, proc, signum, expect_output):
        result = self.finish(proc, CODES[signum], timeout=30)
        if expect_output:
            result.json()
        return result


class TestWatchSignals(SignalCase):

    durations = {'pending': 1.8, 'snapshot': 1.5, 'pending_upload': 1.0,
                 'uploading': 4.0}

    def watch(self, *extra):
        return self.start('server', 'task-state', 'watch', 'vm1', '--until',
                          'idle', '-f', 'json', *extra)

    def _resolving(self, signum):
        self.control.add_http_fault('delay', 1, seconds=5,
                                    endpoint='compute', method='GET',
                                    path=r'/servers')
        proc = self.watch()
        self.wait_fault()
        time.sleep(0.2)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=30)
        self.assertEqual('', result.stdout)
        self.assertLess(result.ended - result.started, 5.5,
                        'the signal waited for the slow lookup')

    def test_sigint_resolving(self):
        self._resolving(signal.SIGINT)

    def test_sigterm_resolving(self):
        self._resolving(signal.SIGTERM)

    def _waiting(self, signum):
        self.api_create_image(self.server['id'])
        proc = self.watch()
        self.control.wait_task_state(self.server['id'], 'image_uploading',
                                     30)
        time.sleep(0.5)
        self.interrupt(proc, signum)
        result = self.signalled(proc, signum, True)
        rows = result.json()
        self.assertEqual('image_uploading', rows[-1]['Task State'])
        self.assert_watch_complete(rows, self.server['id'], 0.5)
        self.assertIn('To keep following: openstack server task-state '
                      'watch %s' % self.server['id'], result.stderr)
        self.assert_image_goes_on()

    def test_sigint_waiting(self):
        self._waiting(signal.SIGINT)

    def test_sigterm_waiting(self):
        self._waiting(signal.SIGTERM)

    def _printing(self, signum):
        """--stream prints as it goes: every line printed stays whole."""
        self.api_create_image(self.server['id'])
        proc = self.watch('--stream')
        self.control.wait_task_state(self.server['id'], 'image_uploading',
                                     30)
        time.sleep(0.5)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=30)
        rows = result.json_lines()
        self.assertEqual('image_uploading', rows[-1]['Task State'])
        self.assertTrue(result.stdout.endswith('\n'))
        self.assert_image_goes_on()

    def test_sigint_printing_stream(self):
        self._printing(signal.SIGINT)

    def test_sigterm_printing_stream(self):
        self._printing(signal.SIGTERM)

    def test_pipe_to_head(self):
        """``watch ... | head -n 1``: a quiet, prompt exit."""
        # A long upload, so that ending at the next poll and ending with
        # the operation are far apart even on a loaded machine.
        self.control.configure(durations={'uploading': 40})
        self.api_create_image(self.server['id'])
        env = self.environ()
        started = time.monotonic()
        proc = subprocess.run(
            '"%s" server task-state watch vm1 --until idle -f value | '
            'head -n 1; echo "rc=${PIPESTATUS[0]}" >&2' % base.OPENSTACK,
            shell=True, executable='/bin/bash', env=env,
            capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
        self.assertEqual(1, len(proc.stdout.splitlines()), proc.stdout)
        self.assertIn(self.server['id'], proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)
        self.assertNotIn('Broken pipe', proc.stderr)
        self.assertNotIn('Exception ignored', proc.stderr)
        self.assertIn('rc=0', proc.stderr)
        # It ends at the next change or poll, not at the end of the upload.
        self.assertLess(elapsed, 20.0)

    def test_pipe_to_head_idle_server(self):
        """An idle server prints nothing more: the watch still notices."""
        started = time.monotonic()
        proc = subprocess.run(
            '"%s" server task-state watch vm1 -f csv | head -n 1; '
            'echo "rc=${PIPESTATUS[0]}" >&2' % base.OPENSTACK,
            shell=True, executable='/bin/bash', env=self.environ(),
            capture_output=True, text=True, timeout=60)
        self.assertEqual(1, len(proc.stdout.splitlines()), proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)
        self.assertIn('rc=0', proc.stderr)
        self.assertLess(time.monotonic() - started, 10.0)


class TestWaitPhaseSignals(SignalCase):

    def create(self, phase='upload'):
        return self.start('server', 'image', 'create', 'vm1', '--name',
                          'snap', '-f', 'json', '--wait-phase', phase)

    def _resolving(self, signum):
        self.control.add_http_fault('delay', 1, seconds=5,
                                    endpoint='compute', method='GET',
                                    path=r'/servers')
        proc = self.create()
        self.wait_fault()
        time.sleep(0.2)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=30)
        self.assertEqual('', result.stdout)
        time.sleep(5)   # the slow lookup is over: still nothing created
        self.assertEqual([], self.new_images())
        self.assertEqual(0, self.control.request_counts().get(
            'POST /compute/v2.1/servers/{id}/action', 0))

    def test_sigint_resolving(self):
        self._resolving(signal.SIGINT)

    def test_sigterm_resolving(self):
        self._resolving(signal.SIGTERM)

    def _creating(self, signum):
        self.control.add_http_fault('delay', 1, seconds=3,
                                    endpoint='compute', method='POST',
                                    path=ACTION_PATH)
        proc = self.create()
        self.wait_fault()
        time.sleep(0.3)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=30)
        self.assertEqual('', result.stdout)
        self.assert_image_goes_on(result)
        self.assertIn('goes on in the cloud', result.stderr)

    def test_sigint_creating_image(self):
        self._creating(signal.SIGINT)

    def test_sigterm_creating_image(self):
        self._creating(signal.SIGTERM)

    def _waiting(self, signum):
        proc = self.create()
        self.control.wait_task_state(self.server['id'], 'image_uploading',
                                     30)
        time.sleep(0.3)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=30)
        self.assertEqual('', result.stdout)
        self.assert_image_goes_on(result)
        self.assertIn('goes on in the cloud', result.stderr)
        self.assertIn('openstack server task-state watch %s --until idle'
                      % self.server['id'], result.stderr)

    def test_sigint_waiting(self):
        self._waiting(signal.SIGINT)

    def test_sigterm_waiting(self):
        self._waiting(signal.SIGTERM)

    def _printing(self, signum):
        """The phase is over; the final image lookup is slowed down."""
        proc = self.create(phase='snapshot')
        # Slow the image lookups down from the disk capture on: the wait
        # looks at the image at its first poll, then not before the phase
        # is over (its final lookup for the output). Added later, the
        # fault could come after that lookup on a fast run.
        self.control.wait_task_state(self.server['id'], 'image_snapshot', 30)
        self.control.add_http_fault('delay', None, seconds=3,
                                    endpoint='image', method='GET',
                                    path=IMAGE_PATH)
        self.wait_fault()
        time.sleep(0.3)
        self.interrupt(proc, signum)
        result = self.finish(proc, CODES[signum], timeout=30)
        if result.stdout:
            json.loads(result.stdout)
        self.assert_image_goes_on(result)

    def test_sigint_printing(self):
        self._printing(signal.SIGINT)

    def test_sigterm_printing(self):
        self._printing(signal.SIGTERM)
