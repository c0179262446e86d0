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

"""Background jobs: an inherited SIGINT "ignore" is kept (issue 15 item 8).

A non-interactive shell starts ``cmd &`` with SIGINT ignored, so that a
Ctrl-C meant for the foreground leaves it running (POSIX). Here the real
``openstack`` executable is started as such a job would be (as after
``trap "" INT`` in sh: SIGINT ignored before the exec). After a SIGINT it
must go on: the simulator counts its next polls, and it still reports a
later change (watch) or finishes its wait (``--wait-phase``). SIGTERM still
ends it with exit status 143 and its output intact.

Every step waits for an event (a step held by the simulator, the CLI's
requests in its log, a line of output); nothing waits for a fixed time.
"""

import json
import signal

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import base
from osc_snapphase.tests.functional import reliability

# Generous waits for events on a loaded machine; the start of the CLI
# alone has taken more than a minute under load.
WAIT = 300
# Polls of the server the CLI must make after the SIGINT.
POLLS_AFTER = 3


def ignore_sigint():
    """In the child before exec: what ``trap "" INT`` does in sh."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class TestSigintIgnored(reliability.ReliabilityTestCase):

    # The phases no test looks at are short; the others are held.
    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'uploading': 0.1}

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')

    def start_background(self, *args):
        """Start openstack with SIGINT ignored, as ``cmd &`` in sh does."""
        proc = cli.start(args, self.environ(), preexec_fn=ignore_sigint)
        self.addCleanup(cli.reap, proc)
        return proc

    def polls(self):
        return self.request_count(base.GET_SERVER)

    def polled_while_held(self, proc, step):
        """Wait until ``step`` is held and the CLI has polled it twice."""
        self.wait_cli(proc, lambda: any(
            h['step'] == step for h in self.control.state()['held']),
            'an operation held at %s' % step, timeout=WAIT)
        count = self.polls() + 2
        self.wait_cli(proc, lambda: self.polls() >= count,
                      'two polls of the held server', timeout=WAIT)

    def sigint_goes_unnoticed(self, proc):
        """Send SIGINT; the CLI polls on, POLLS_AFTER times at least."""
        proc.send_signal(signal.SIGINT)
        count = self.polls() + POLLS_AFTER
        self.wait_cli(proc, lambda: self.polls() >= count,
                      '%d polls after SIGINT' % POLLS_AFTER, timeout=WAIT)
        self.assertIsNone(proc.poll())

    def read_row(self, proc, task_state):
        """Read JSON Lines rows until one in ``task_state``."""
        while True:
            line = self.read_line(proc, timeout=WAIT)
            self.assertTrue(line, 'the watch ended before a row in %s'
                            % task_state)
            row = json.loads(line)
            if row['Task State'] == task_state:
                return row

    def test_watch_keeps_running_on_sigint_ends_on_sigterm(self):
        self.hold('pending_upload')
        self.api_create_image(self.server['id'])
        proc = self.start_background('server', 'task-state', 'watch',
                                     'vm1', '--until', 'idle', '--stream',
                                     '-f', 'json')
        self.read_row(proc, 'image_pending_upload')
        self.polled_while_held(proc, 'pending_upload')
        self.sigint_goes_unnoticed(proc)
        # A later change is still reported.
        self.hold('uploading')
        self.control.release('pending_upload')
        self.read_row(proc, 'image_uploading')
        self.polled_while_held(proc, 'uploading')
        proc.send_signal(signal.SIGTERM)
        result = self.finish(proc, 143, timeout=WAIT)
        rows = result.json_lines()
        self.assertTrue(result.stdout.endswith('\n'))
        self.assertEqual('image_uploading', rows[-1]['Task State'])
        self.assertIn('image_pending_upload',
                      [r['Task State'] for r in rows])
        self.assertIn('Terminated after', result.stderr)
        self.assertNotIn('Interrupted', result.stderr)

    def test_watch_json_document_intact_on_sigterm(self):
        self.hold('uploading')
        self.api_create_image(self.server['id'])
        proc = self.start_background('server', 'task-state', 'watch',
                                     'vm1', '--until', 'idle', '-f', 'json')
        self.polled_while_held(proc, 'uploading')
        self.sigint_goes_unnoticed(proc)
        proc.send_signal(signal.SIGTERM)
        result = self.finish(proc, 143, timeout=WAIT)
        rows = result.json()
        self.assertEqual('image_uploading', rows[-1]['Task State'])
        self.assert_watch_complete(rows, self.server['id'])

    def wait_phase_after_sigint(self):
        """--wait-phase upload, held in the upload, SIGINT sent."""
        self.hold('uploading')
        proc = self.start_background('server', 'image', 'create', 'vm1',
                                     '--name', 'snap', '-f', 'json',
                                     '--wait-phase', 'upload')
        self.polled_while_held(proc, 'uploading')
        self.sigint_goes_unnoticed(proc)
        return proc

    def test_wait_phase_keeps_waiting_on_sigint(self):
        proc = self.wait_phase_after_sigint()
        # The wait goes on to its end: the image is printed, exit 0.
        self.control.release('uploading')
        result = self.finish(proc, 0, timeout=WAIT)
        image = result.json()
        self.assertEqual('active', image['status'])
        self.assertEqual('idle', image['server_phase'])
        self.assertNotIn('Interrupted', result.stderr)

    def test_wait_phase_ends_on_sigterm(self):
        proc = self.wait_phase_after_sigint()
        proc.send_signal(signal.SIGTERM)
        result = self.finish(proc, 143, timeout=WAIT)
        self.assertEqual('', result.stdout)
        self.assertIn('goes on in the cloud', result.stderr)
        image_id = [i['id'] for i in self.control.state()['images']
                    if i['name'] == 'snap'][0]
        self.assertIn(image_id, result.stderr)
