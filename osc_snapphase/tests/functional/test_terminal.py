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

"""``openstack server task-state watch`` on a pseudo-terminal, end to end.

The real executable with a pty (200 columns) as its stdout and stderr,
against the simulator: the live table's rows appear while the steps they
show are held, and the timeline follows the table on the terminal. The
assertions are on structure (a header, a row per change, a timeline line
per task state), not on widths or column sets.
"""

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import base
from osc_snapphase.tests import output

WAIT = base.WAIT


def screen(proc):
    """What the terminal got so far, with the tty's CR LF made LF."""
    return proc.pty_text.replace('\r\n', '\n')


class TestWatchOnATerminal(base.TestCase):

    def read_until(self, proc, predicate, what):
        try:
            cli.read_pty(proc, lambda text: predicate(
                text.replace('\r\n', '\n')), WAIT)
        except TimeoutError as exc:
            self.fail('%s: %s' % (what, exc))
        if not predicate(screen(proc)):
            self.fail('the terminal closed before %s:\n%s'
                      % (what, screen(proc)))

    def test_live_rows_and_timeline(self):
        server_id = self.boot('vm1')
        self.script(server_id, hold=('snapshot', 'pending_upload',
                                     'upload'))
        self.create_image(server_id)
        self.wait_held('snapshot', server_id)
        proc = cli.start_on_pty(
            ['server', 'task-state', 'watch', 'vm1', '--until', 'idle',
             '--interval', '0.5', '--timeout', '600'], self.environ(),
            columns=200)
        self.addCleanup(cli.reap, proc)

        def rows(text):
            # The rows printed so far: the lines after the header's rule.
            lines = text.splitlines()
            rules = [i for i, line in enumerate(lines)
                     if line.startswith('+')]
            return lines[rules[1] + 1:] if len(rules) >= 2 else []

        # The header, then the row of each held step while the CLI runs.
        for step, task_state in (('snapshot', 'image_snapshot'),
                                 ('pending_upload', 'image_pending_upload'),
                                 ('upload', 'image_uploading')):
            self.wait_held(step, server_id)
            self.read_until(proc, lambda text: any(
                ' %s ' % task_state in row for row in rows(text)),
                'a row in %s' % task_state)
            self.assertIsNone(proc.poll())
            self.wait_cli_polls(proc, server_id)
            self.release(step, server_id)
        # To the end: the terminal closes when the CLI exits.
        try:
            cli.read_pty(proc, lambda text: False, WAIT)
        except TimeoutError as exc:
            self.fail('the watch did not end: %s' % exc)
        self.assertEqual(0, proc.wait(WAIT), screen(proc))

        lines = screen(proc).splitlines()
        rules = [i for i, line in enumerate(lines) if line.startswith('+')]
        self.assertEqual(3, len(rules), screen(proc))
        header, table_rows = output.table(
            '\n'.join(lines[rules[0]:rules[2] + 1]))
        self.assertIn('Task State', header)
        states = [row[header.index('Task State')].replace(' ', '')
                  for row in table_rows]
        # A row per change (a capture-only change repeats a task state).
        seen = [s for i, s in enumerate(states)
                if i == 0 or s != states[i - 1]]
        self.assertEqual(['image_snapshot', 'image_pending_upload',
                          'image_uploading', 'None'], seen, screen(proc))
        # After the table, on the same terminal: the timeline, a line
        # per task state with its bar, then the outcome.
        after = lines[rules[2] + 1:]
        self.assertIn('vm1 (%s), ' % server_id, after[0])
        self.assertTrue(after[0].endswith(' watched:'), after)
        bars = [line for line in after if line.endswith('|')]
        self.assertEqual(['image_snapshot', 'image_pending_upload',
                          'image_uploading', 'none'],
                         [line.split()[0] for line in bars], after)
        for line in bars:
            self.assertIn('#', line.split('|')[1])
