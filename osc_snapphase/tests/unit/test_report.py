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


"""Tests of the text for people: progress line, timeline, durations."""

import io
from unittest import mock

import testtools

from osc_snapphase import records
from osc_snapphase import report
from osc_snapphase.tests.unit import fakes
from osc_snapphase.v1 import live


def uploading_track(name='database-primary-1'):
    track = records.Track('c5e2c1d4-8d7a-4f34-9e1a-1f0e4b6b7a21', name,
                          image_id='img')
    track.state = fakes.server_state(track.server_id,
                                     'image_pending_upload', name=name)
    track.op.active = True
    track.op.image_status = 'queued'
    track.judge()
    return track


class TestProgress(testtools.TestCase):

    def test_progress_full(self):
        text = report.progress(uploading_track(), 75.0, 'snapshot')
        self.assertEqual(
            'database-primary-1 (c5e2c1d4-8d7a-4f34-9e1a-1f0e4b6b7a21): '
            'image_pending_upload (pending-upload), capture in-progress, '
            '1m15s elapsed, waiting for the end of the snapshot phase',
            text)

    def test_progress_fits_the_width(self):
        track = uploading_track()
        for width in (120, 100, 80, 60, 40, 20, 5):
            text = report.progress(track, 75.0, 'snapshot', width=width)
            self.assertLessEqual(len(text), width, text)
        # At 80 columns the essentials stay: server, task state, capture.
        self.assertEqual(
            'database-primary-1: image_pending_upload, capture '
            'in-progress, 1m15s',
            report.progress(track, 75.0, 'snapshot', width=79))

    def test_terminal_width(self):
        with mock.patch.dict('os.environ', {'COLUMNS': '93'}):
            self.assertEqual(93, report.terminal_width(io.StringIO()))
        with mock.patch.dict('os.environ', {'COLUMNS': ''}):
            # Not a terminal: no width.
            self.assertIsNone(report.terminal_width(io.StringIO()))


class TestDurations(testtools.TestCase):

    def test_unchanged_known_and_unknown(self):
        track = uploading_track()
        track.task_since = 10.0
        self.assertEqual('since the watch began 5.0s ago (already in it '
                         'then)', track.unchanged(15.0))
        track.task_start_seen = True
        self.assertEqual('for 5.0s', track.unchanged(15.0))

    @staticmethod
    def snapshot_then_pending_upload(end):
        track = uploading_track()
        track.segments = [
            records.Segment('image_snapshot', 'snapshot', 0.0, 2.0),
            records.Segment('image_pending_upload', 'pending-upload', 2.0,
                            end)]
        return track

    def test_phase_durations_only_observed(self):
        track = self.snapshot_then_pending_upload(2.0)
        self.assertEqual({'snapshot': 2.0}, dict(track.phase_durations()))

    def test_timeline_phase_column(self):
        track = self.snapshot_then_pending_upload(3.0)
        lines = report.timeline(track)
        # pending-upload fits its column: the bars stay aligned.
        self.assertEqual(1, len({line.index('|') for line in lines[1:]}))


class TestLive(testtools.TestCase):

    def test_wrap(self):
        self.assertEqual(['image_snapshot_', 'pending'],
                         live.wrap('image_snapshot_pending', 15))
        self.assertEqual(['task state', 'image_pending_', 'upload'],
                         live.wrap('task state image_pending_upload', 14))
        self.assertEqual(['abcdef', 'ghij'], live.wrap('abcdefghij', 6))

    def test_select(self):
        columns = ('Time', 'Server ID', 'Task State')
        self.assertEqual(['Time', 'Task State'],
                         live.select(['task_state', 'Time'], columns))
        self.assertEqual(list(columns), live.select([], columns))
        self.assertRaises(live.ColumnError, live.select, ['bogus'], columns)
