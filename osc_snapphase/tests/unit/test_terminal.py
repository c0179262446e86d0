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

"""The terminal output, on a fake terminal (isatty() true, a width).

The status line of --wait-phase rewritten in place (common.StatusLine; its
text, report.progress, in test_report), the timeline summary a watch
writes on a terminal's stderr (report.timeline), the live table on a
terminal (live.LiveTable through the watch command), and the width of a
real pseudo-terminal (report.terminal_width).
"""

import fcntl
import io
import os
import struct
import termios
from unittest import mock
import uuid

import testtools

from osc_snapphase import records
from osc_snapphase import report
from osc_snapphase.tests import output
from osc_snapphase.tests.unit import fakes
from osc_snapphase.tests.unit import test_task_state
from osc_snapphase.v1 import common
from osc_snapphase.v1 import task_state

SERVER_ID = '9a7c3f52-1d9e-4b51-8f0e-6a2b1c3d4e5f'


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal.

    It has no file descriptor: its width comes from COLUMNS.
    """

    def isatty(self):
        return True


class TestStatusLine(testtools.TestCase):

    def test_rewritten_in_place_on_a_terminal(self):
        out = FakeTerminal()
        status = common.StatusLine(out)
        status.show('vm1: image_snapshot, 1.0s')
        status.show('vm1: none, 2.0s')
        # The shorter text blanks what is left of the longer one; no
        # newline ever: the line is rewritten, not scrolled.
        self.assertEqual('\rvm1: image_snapshot, 1.0s'
                         '\rvm1: none, 2.0s' + ' ' * 10, out.getvalue())
        status.clear()
        self.assertTrue(out.getvalue().endswith('\r' + ' ' * 15 + '\r'))
        self.assertNotIn('\n', out.getvalue())
        # Cleared twice: nothing more to erase.
        before = out.getvalue()
        status.clear()
        self.assertEqual(before, out.getvalue())

    def test_nothing_when_not_a_terminal(self):
        out = io.StringIO()
        status = common.StatusLine(out)
        status.show('vm1: image_snapshot, 1.0s')
        status.clear()
        self.assertEqual('', out.getvalue())


class TestTimeline(testtools.TestCase):

    def track(self):
        track = records.Track(SERVER_ID, 'vm1')
        track.segments = [
            records.Segment('image_snapshot', 'snapshot', 100.0, 110.0),
            records.Segment('image_uploading', 'upload', 110.0, 130.0),
            records.Segment(None, 'idle', 130.0, None)]
        return track

    def test_one_line_per_task_state_with_proportional_bars(self):
        lines = report.timeline(self.track(), now=140.0)
        self.assertEqual('vm1 (%s), 40.0s watched:' % SERVER_ID, lines[0])
        self.assertEqual(4, len(lines), lines)
        bars = []
        for line, state, phase, took in zip(
                lines[1:], ('image_snapshot', 'image_uploading', 'none'),
                ('snapshot', 'upload', 'idle'), ('10.0s', '20.0s',
                                                 '10.0s')):
            self.assertEqual([state, phase, took],
                             line.split('|')[0].split(), line)
            bar = line.split('|')[1]
            self.assertEqual(report.BAR_WIDTH, len(bar), line)
            bars.append(bar)
        # Where each state lay in the watch: one after the other.
        self.assertEqual(['#' * 10 + ' ' * 30,
                          ' ' * 10 + '#' * 20 + ' ' * 10,
                          ' ' * 30 + '#' * 10], bars)
        # The state names are aligned: the bars start in one column.
        self.assertEqual(1, len({line.index('|') for line in lines[1:]}))

    def test_nothing_observed(self):
        track = records.Track(SERVER_ID, 'vm1')
        self.assertEqual(['vm1 (%s): no state observed' % SERVER_ID],
                         report.timeline(track))


class TestTerminalWidth(testtools.TestCase):

    def test_a_pseudo_terminal_gives_its_width(self):
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack('HHHH', 40, 97, 0, 0))
        stream = os.fdopen(slave, 'w')
        self.addCleanup(stream.close)
        environ = {k: v for k, v in os.environ.items() if k != 'COLUMNS'}
        with mock.patch.dict('os.environ', environ, clear=True):
            self.assertEqual(97, report.terminal_width(stream))
            self.assertIsNone(report.terminal_width(io.StringIO()))


class TestWatchOnATerminal(test_task_state.TestTaskStateWatch):
    """The watch command with a fake terminal as stdout and stderr."""

    # Only the tests below: not those of the harness borrowed.
    locals().update((name, None) for name in dir(
        test_task_state.TestTaskStateWatch) if name.startswith('test'))

    UPLOAD = [(0, {'OS-EXT-STS:task_state': 'image_snapshot_pending'}),
              (1, {'OS-EXT-STS:task_state': 'image_uploading'}),
              (2, {})]

    def run_watch(self, stdout, stderr, columns='400'):
        # An ID as Nova makes them (the table knows they are 36 long).
        self.server = fakes.create_one_server({'name': 'vm1',
                                               'id': str(uuid.uuid4())})
        self.app.stdout, self.app.stderr = stdout, stderr
        self.script({self.server.id: self.UPLOAD})
        self.images = [(0, {'id': self.image_id, 'status': 'queued'}),
                       (1, {'id': self.image_id, 'status': 'saving'}),
                       (2, {'id': self.image_id, 'status': 'active'})]
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--interval', '1', '--until', 'idle'], [])
        with mock.patch.dict('os.environ', {'COLUMNS': columns}):
            return self.cmd.run(parsed_args)

    def test_live_table_and_timeline(self):
        out, err = FakeTerminal(), FakeTerminal()
        self.assertEqual(0, self.run_watch(out, err))
        header, rows = output.table(out.getvalue())
        # The full columns on a wide terminal, a row per change.
        self.assertEqual(list(task_state.WATCH_COLUMNS), header)
        states = [row[header.index('Task State')] for row in rows]
        self.assertEqual(['image_snapshot_pending', 'image_uploading',
                          'None'], states)
        for line in out.getvalue().splitlines():
            self.assertLessEqual(len(line), 400, line)
        # The timeline on the terminal's stderr, then the outcome.
        text = err.getvalue()
        timeline = [line for line in text.splitlines() if '|' in line]
        self.assertIn('vm1 (%s), ' % self.server.id, text)
        self.assertIn(' watched:', text)
        self.assertEqual(['image_snapshot_pending', 'image_uploading',
                          'none'], [line.split()[0] for line in timeline])
        self.assertNotIn('|', text.splitlines()[-1])

    def test_no_timeline_in_a_pipe(self):
        out, err = FakeTerminal(), io.StringIO()
        self.assertEqual(0, self.run_watch(out, err))
        self.assertNotIn('watched:', err.getvalue())
        self.assertNotIn('|', err.getvalue())
        self.assertIn('image_uploading', out.getvalue())

    def test_narrow_terminal_still_a_row_per_change(self):
        out, err = FakeTerminal(), FakeTerminal()
        self.assertEqual(0, self.run_watch(out, err, columns='60'))
        for line in out.getvalue().splitlines():
            self.assertLessEqual(len(line), 60, line)
        header, rows = output.table(out.getvalue())
        self.assertIn('Task State', header)
        self.assertLess(len(header), len(task_state.WATCH_COLUMNS))
        self.assertEqual(['image_snapshot_pending', 'image_uploading',
                          'None'],
                         [row[header.index('Task State')].replace(' ', '')
                          for row in rows])
