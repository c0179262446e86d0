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

"""What a new user trips over (issue 15 items 1-7), with the real
``openstack`` against the simulator: one vocabulary, rows live in every
format, validated conditions, the busy exit status, honest durations,
hints that fit the wait and a table that fits the terminal.

Every wait is for an event (a step held by the simulator, the CLI's
requests, a line of its output); nothing asserts how long a run took.
"""

import json
import subprocess
import tempfile

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import base
from osc_snapphase.tests.functional import reliability

WATCH = ('server', 'task-state', 'watch')
IMAGE_CREATE = ('server', 'image', 'create')
ACTION = 'POST /compute/v2.1/servers/{id}/action'


class UsabilityTestCase(reliability.ReliabilityTestCase):

    # The steps a test looks at are held; the others pass quickly.
    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'uploading': 0.1}

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')

    def compute_requests(self):
        return [r for r in self.control.requests()['requests']
                if '/compute/' in r['path']]

    def snapshotting(self, step):
        """An image-create of vm1 held at ``step``; the image ID."""
        self.hold(step)
        image_id = self.api_create_image(self.server['id'])
        self.control.wait_held(step, timeout=base.WAIT)
        return image_id

    # -- 3. conditions validated --------------------------------------------

    def test_task_state_typo_is_a_usage_error(self):
        before = len(self.compute_requests())
        result = self.openstack(*WATCH, 'vm1', '--until',
                                'task-state=image_uploadng', expect=2)
        error = result.stderr.splitlines()[-1]
        self.assertIn("unknown task state 'image_uploadng' (did you mean "
                      "image_uploading?)", error)
        # The valid ones are named, and how to give a newer Nova's.
        for state in ('image_snapshot', 'rebooting', 'unshelving'):
            self.assertIn(state, error)
        self.assertIn('task-state=+<state>', error)
        self.assertEqual(before, len(self.compute_requests()),
                         'a usage error reached the cloud')

    def test_task_state_any_case(self):
        self.control.set_server_state(self.server['id'],
                                      task_state='rebooting')
        result = self.openstack(*WATCH, 'vm1', '--until',
                                'task-state=REBOOTING', '--stream')
        self.assertEqual(['rebooting'],
                         [r['Task State'] for r in result.json_lines()])

    # -- 2. rows live everywhere --------------------------------------------

    def test_stream_alone_is_json_lines(self):
        result = self.openstack(*WATCH, 'vm1', '--until', 'idle',
                                '--stream')
        (row,) = result.json_lines()
        self.assertEqual(self.server['id'], row['Server ID'])
        self.assertEqual('idle', row['Phase'])
        self.assertIsNone(row['Task State'])
        # Machine-readable: the power state as Nova gives it.
        self.assertEqual(1, row['Power State'])

    def test_background_watch_to_a_file_shows_rows(self):
        """watch vm1 > file &: the rows are in the file as they happen."""
        self.snapshotting('snapshot')
        out = tempfile.NamedTemporaryFile('w+', suffix='.txt')
        self.addCleanup(out.close)
        proc = cli.start(WATCH + ('vm1', '--until', 'idle'),
                         self.environ(), stdout=out,
                         stderr=subprocess.PIPE)
        self.addCleanup(cli.reap, proc)

        def written():
            with open(out.name) as text:
                return text.read()
        # The header, then the row of the held state, while it runs.
        text = self.wait_cli(
            proc, lambda: 'image_snapshot ' in written() and written(),
            'the row of image_snapshot in the file', timeout=base.WAIT)
        self.assertIsNone(proc.poll())
        lines = text.splitlines()
        self.assertTrue(lines[1].startswith('| Time '), text)
        self.assertIn('| snapshot ', text)
        self.control.release()
        self.finish(proc, timeout=base.WAIT)
        lines = written().splitlines()
        self.assertIn('| idle ', lines[-2])
        self.assertTrue(lines[-1].startswith('+--'), lines[-1])

    # -- 4. busy ---------------------------------------------------------

    def test_busy_server_wait_phase_exit_5(self):
        self.control.set_server_state(self.server['id'],
                                      task_state='rebooting')
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap',
                                '--wait-phase', 'snapshot', expect=5)
        self.assertIn('is busy: task state rebooting', result.stderr)
        self.assertIn('openstack server task-state watch %s --until idle'
                      % self.server['id'], result.stderr)
        self.assertEqual('', result.stdout)
        self.assertEqual(0, self.control.request_counts().get(ACTION, 0))

    def test_busy_server_watch_phase_over_exit_5(self):
        self.control.set_server_state(self.server['id'],
                                      task_state='rebooting')
        result = self.openstack(*WATCH, 'vm1', '--until',
                                'phase-over=snapshot', '--stream', expect=5)
        self.assertIn('is busy: task state rebooting', result.stderr)
        self.assertEqual(['rebooting'],
                         [r['Task State'] for r in result.json_lines()])

    # -- 5. honest durations ----------------------------------------------

    def test_first_change_has_no_duration(self):
        """The state found at the start lasted an unknown time."""
        # The upload is held too: a state that begins under the watch is
        # seen, however short the steps between are on a busy machine.
        self.hold('uploading')
        self.snapshotting('snapshot')
        proc = self.start(*WATCH, 'vm1', '--until', 'idle', '--stream')
        first = json.loads(self.read_line(proc, timeout=base.WAIT))
        self.assertEqual('image_snapshot', first['Task State'])
        self.assertIsNone(first['Previous Duration'])
        self.release_after_polls('snapshot', timeout=base.WAIT)
        change = json.loads(self.read_line(proc, timeout=base.WAIT))
        self.assertNotEqual('image_snapshot', change['Task State'])
        self.release_after_polls('uploading', timeout=base.WAIT)
        # Not the watch's age: unknown, as for the first row.
        self.assertIsNone(change['Previous Duration'])
        # (The lines read are in the result too.)
        rows = self.finish(proc, timeout=base.WAIT).json_lines()
        self.assertEqual([first, change], rows[:2])
        # Later states began under the watch: their durations are known.
        durations = [r['Previous Duration'] for r in rows[2:]]
        self.assertTrue(durations)
        for seconds in durations:
            self.assertIsInstance(seconds, float)

    def test_stall_says_since_when(self):
        self.snapshotting('uploading')
        result = self.openstack(*WATCH, 'vm1', '--stall-timeout', '0.5',
                                '-f', 'value', expect=4)
        self.assertIn('has been in task state image_uploading since the '
                      'watch began', result.stderr)
        self.assertIn('(already in it then)', result.stderr)

    def test_phase_durations_json_in_value(self):
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap',
                                '--wait-phase', 'upload', '-f', 'value',
                                '-c', 'phase_durations', '-c',
                                'server_phase')
        durations, phase = result.stdout.splitlines()
        # JSON, not a Python dict; no entry for an unobserved phase.
        parsed = json.loads(durations)
        self.assertIsInstance(parsed, dict)
        self.assertNotIn('disk-capture', parsed)
        self.assertNotIn('packaging', parsed)
        for seconds in parsed.values():
            self.assertGreater(seconds, 0)
        self.assertEqual('idle', phase)

    # -- 1. one vocabulary --------------------------------------------------

    def test_phase_over(self):
        """--until phase-over=snapshot: the predicate of --wait-phase."""
        self.snapshotting('snapshot')
        proc = self.start(*WATCH, 'vm1', '--until', 'phase-over=snapshot',
                          '--stream')
        self.release_after_polls('snapshot', timeout=base.WAIT)
        rows = self.finish(proc, timeout=base.WAIT).json_lines()
        self.assertEqual('snapshot', rows[0]['Phase'])
        self.assertEqual('complete', rows[-1]['Capture'])
        for row in rows:
            self.assertIn(row['Phase'], ('snapshot', 'pending-upload',
                                         'upload', 'idle'))

    def test_deprecated_phase_name_warns(self):
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap',
                                '--wait-phase', 'disk-capture', '-f', 'json')
        self.assertIn("openstack: warning: --wait-phase disk-capture: the "
                      "phase name 'disk-capture' is deprecated",
                      result.stderr)
        self.assertIn("use 'snapshot'", result.stderr)
        data = result.json()
        self.assertEqual('complete', data['capture'])
        self.assertNotIn(data['server_phase'], ('disk-capture', 'packaging'))

    # -- 6. hints -----------------------------------------------------------

    def test_timeout_hint_repeats_the_condition(self):
        # Held before the copy is proven over: not disk-safe.
        self.snapshotting('snapshot')
        proc = self.start(*WATCH, 'vm1', '--until', 'disk-safe',
                          '--until', 'vm-state=active', '--timeout', '600',
                          '-f', 'value')
        self.wait_cli(proc, lambda: self.request_count(base.GET_SERVER) >= 3,
                      'polls of vm1', timeout=base.WAIT)
        self.interrupt(proc)
        result = self.finish(proc, expect=130, timeout=base.WAIT)
        self.assertIn('To keep following: openstack server task-state watch '
                      'vm1 --until disk-safe --until vm-state=active',
                      result.stderr)

    def test_hint_on_an_idle_server(self):
        result = self.openstack(*WATCH, 'vm1', '--until',
                                'task-state=image_uploading', '--timeout',
                                '1', '-f', 'value', expect=124)
        self.assertIn('Nothing runs on vm1 (%s)' % self.server['id'],
                      result.stderr)
        self.assertNotIn('To keep following', result.stderr)

    def test_wait_phase_timeout_hint_is_the_same_wait(self):
        self.hold('uploading')
        result = self.openstack(*IMAGE_CREATE, 'vm1', '--name', 'snap',
                                '--wait-phase', 'upload',
                                '--wait-phase-timeout', '1', expect=124)
        (image,) = [i for i in self.control.state()['images']
                    if i.get('name') == 'snap']
        self.assertIn('To keep following it: openstack server task-state '
                      'watch --image %s --until phase-over=upload'
                      % image['id'], result.stderr)

    # -- 7. terminal fit ----------------------------------------------------

    def test_narrow_terminal_compact_table(self):
        proc = cli.start_on_pty(WATCH + ('vm1', '--until', 'idle'),
                                self.environ(), columns=80)
        self.addCleanup(cli.reap, proc)
        text = cli.read_pty(proc, lambda t: False, timeout=base.WAIT)
        lines = [line for line in text.replace('\r', '').splitlines()
                 if line.startswith(('|', '+'))]
        self.assertEqual(
            ['Time', 'Server Name', 'Task State', 'Phase', 'Capture'],
            [c.strip() for c in lines[1].strip('|').split('|')])
        for line in lines:
            self.assertLessEqual(len(line), 80, line)
        self.assertEqual(0, proc.wait(timeout=base.WAIT))

    def test_long_and_columns_on_a_narrow_terminal(self):
        proc = cli.start_on_pty(WATCH + ('vm1', '--until', 'idle', '-c',
                                         'Server ID', '-c', 'Power State'),
                                self.environ(), columns=80)
        self.addCleanup(cli.reap, proc)
        text = cli.read_pty(proc, lambda t: False, timeout=base.WAIT)
        header = [line for line in text.replace('\r', '').splitlines()
                  if line.startswith('|')][0]
        self.assertEqual(['Server ID', 'Power State'],
                         [c.strip() for c in header.strip('|').split('|')])
        self.assertIn('Running', text)
        proc = cli.start_on_pty(WATCH + ('vm1', '--until', 'idle', '--long'),
                                self.environ(), columns=80)
        self.addCleanup(cli.reap, proc)
        text = cli.read_pty(proc, lambda t: False, timeout=base.WAIT)
        header = [line for line in text.replace('\r', '').splitlines()
                  if line.startswith('|')][0]
        self.assertIn('Capture Evidence', header)
        self.assertIn('Previous Duration', header)
