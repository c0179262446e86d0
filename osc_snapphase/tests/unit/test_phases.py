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


"""Tests of osc_snapphase.phases."""

import testtools

from osc_snapphase import phases


class TestPhaseTable(testtools.TestCase):

    # (task state, phase, operation, step)
    TABLE = (
        ('image_snapshot_pending', 'snapshot', 'snapshot', 0),
        ('image_snapshot', 'snapshot', 'snapshot', 1),
        ('image_backup', 'snapshot', 'backup', 1),
        ('image_pending_upload', 'pending-upload', 'snapshot', 2),
        ('image_uploading', 'upload', 'snapshot', 3),
        ('shelving', 'snapshot', 'shelve', 1),
        ('shelving_image_pending_upload', 'pending-upload', 'shelve', 2),
        ('shelving_image_uploading', 'upload', 'shelve', 3),
        ('shelving_offloading', 'offload', 'shelve', 4),
    )

    def test_task_state_describe_table(self):
        for name, phase, operation, step in self.TABLE:
            entry = phases.describe(name)
            self.assertEqual(
                (name, phase, operation, step),
                (entry.name, entry.phase, entry.operation, entry.step))
            self.assertTrue(entry.description)
            self.assertEqual(phase, phases.phase_of(name))
            self.assertEqual(step, phases.step_of(name))
            self.assertFalse(phases.image_create_allowed(name, 'active'))

    def test_task_state_descriptions_never_claim_the_copy_is_over(self):
        for entry in phases.TASK_STATES.values():
            self.assertNotIn('captured', entry.description.lower())
            self.assertNotIn('safe', entry.description.lower())

    def test_task_state_table_complete(self):
        self.assertEqual(sorted(row[0] for row in self.TABLE),
                         sorted(phases.TASK_STATES))

    def test_task_state_sets(self):
        self.assertEqual(
            {'image_snapshot_pending', 'image_snapshot', 'image_backup',
             'image_pending_upload', 'image_uploading'},
            phases.IMAGE_CREATE_STATES)

    def test_task_state_describe_idle(self):
        for value in (None, ''):
            entry = phases.describe(value)
            self.assertEqual('idle', entry.phase)
            self.assertIsNone(entry.name)
            self.assertIsNone(entry.operation)
            self.assertIsNone(entry.step)
            self.assertTrue(phases.image_create_allowed(value))

    def test_task_state_describe_unknown(self):
        for value in ('rebooting', 'resize_migrating',
                      'quantum_entangling'):
            entry = phases.describe(value)
            self.assertEqual(
                (value, 'other', None, None),
                (entry.name, entry.phase, entry.operation, entry.step))
            self.assertEqual(
                'Server busy with task %s (not an image operation)' % value,
                entry.description)
            self.assertFalse(phases.image_create_allowed(value))

    def test_task_state_describe_non_string(self):
        for value in (42, 3.5, ['image_snapshot'], {'a': 1}, object()):
            entry = phases.describe(value)
            self.assertEqual('other', entry.phase)
            self.assertEqual(str(value), entry.name)
            self.assertFalse(phases.image_create_allowed(value))
            self.assertFalse(phases.has_passed(value, 'image_snapshot'))


def facts(task_state=None, status=None, **kwargs):
    kwargs.setdefault('op_active', task_state in phases.TASK_STATES)
    kwargs.setdefault('image_id', 'img' if status else None)
    return phases.CaptureFacts(task_state, image_status=status, **kwargs)


class TestJudgeCapture(testtools.TestCase):
    """The one capture judgement: every row is (facts, state, safe)."""

    def judge(self, *args, model='image-status', **kwargs):
        return phases.judge_capture(facts(*args, **kwargs), model)

    def test_capture_image_status_model(self):
        cases = (
            # No operation: nothing is copied.
            ((None, None), 'none', True),
            (('rebooting', None), 'none', True),
            (('image_snapshot_pending', 'queued'), 'not-started', False),
            # No task state proves the copy, whatever the driver.
            (('image_snapshot', 'queued'), 'in-progress', False),
            (('image_backup', 'queued'), 'in-progress', False),
            (('image_pending_upload', 'queued'), 'in-progress', False),
            # libvirt's bounce: image_uploading with a queued image.
            (('image_uploading', 'queued'), 'in-progress', False),
            # The image's status is the proof.
            (('image_uploading', 'saving'), 'complete', True),
            (('image_uploading', 'importing'), 'complete', True),
            (('image_uploading', 'active'), 'complete', True),
            (('shelving_image_uploading', 'saving'), 'complete', True),
            # Image not visible: not known.
            (('image_pending_upload', None), 'unknown', False),
            (('image_uploading', 'killed'), 'failed', False),
        )
        for args, state, safe in cases:
            capture = self.judge(*args)
            self.assertEqual((state, safe), (capture.state, capture.safe),
                             args)
            self.assertEqual('image-status', capture.model)
            self.assertTrue(capture.evidence)

    def test_capture_evidence_names_image_and_time(self):
        capture = self.judge('image_uploading', 'saving',
                             image_since='12:03:04Z')
        self.assertEqual('image img saving since 12:03:04Z',
                         capture.evidence)

    def test_capture_after_the_operation(self):
        capture = self.judge(None, 'active', op_active=False,
                             op_succeeded=True)
        self.assertEqual(('complete', True), (capture.state, capture.safe))
        # Task state cleared, image still saving: settling, proven.
        capture = self.judge(None, 'saving', op_active=True)
        self.assertEqual('complete', capture.state)
        capture = self.judge(None, 'queued', op_active=True)
        self.assertEqual('in-progress', capture.state)

    def test_capture_xenserver_model(self):
        cases = (
            (('image_snapshot_pending', 'queued'), 'not-started'),
            (('image_snapshot', 'queued'), 'in-progress'),
            (('image_backup', 'queued'), 'in-progress'),
            (('image_pending_upload', 'queued'), 'complete'),
            (('image_uploading', 'queued'), 'complete'),
            (('image_uploading', 'killed'), 'failed'),
            ((None, None), 'none'),
        )
        for args, state in cases:
            capture = self.judge(*args, model='xenserver')
            self.assertEqual(state, capture.state, args)
            self.assertEqual('xenserver', capture.model)
        capture = self.judge('image_pending_upload', 'queued',
                             model='xenserver')
        self.assertIn('xenserver model', capture.evidence)
        # Judged by the furthest step seen: a skipped image_snapshot.
        capture = self.judge('image_snapshot', 'queued', op_max_step=2,
                             model='xenserver')
        self.assertEqual('complete', capture.state)

    def snap(self, status, sid='s1', volume='v1'):
        return phases.SnapshotFact(sid, volume, status)

    def test_capture_volume_backed(self):
        cases = (
            (None, 'unknown'),
            ((), 'unknown'),
            ((self.snap('creating'),), 'in-progress'),
            ((self.snap('available'), self.snap('creating', 's2')),
             'in-progress'),
            ((self.snap('available'), self.snap('available', 's2')),
             'complete'),
            ((self.snap('available'), self.snap('error', 's2')), 'failed'),
            ((self.snap(None),), 'failed'),
        )
        for snapshots, state in cases:
            for model in phases.CAPTURE_MODELS:
                capture = self.judge(None, 'active', op_active=True,
                                     volume_backed=True, snapshots=snapshots,
                                     model=model)
                self.assertEqual(state, capture.state, snapshots)
        capture = self.judge(None, 'active', op_active=True,
                             volume_backed=True,
                             snapshots=(self.snap('error', 's2', 'v2'),))
        self.assertEqual('volume snapshot s2 of volume v2 is error',
                         capture.evidence)

    def test_capture_safe_only_complete_or_none(self):
        for state in phases.CAPTURE_STATES:
            capture = phases.Capture(state, 'x', 'image-status')
            self.assertEqual(state in ('complete', 'none'), capture.safe)

    def test_check_model(self):
        self.assertEqual('image-status', phases.check_model(None))
        self.assertEqual('xenserver', phases.check_model(' XenServer '))
        self.assertRaises(ValueError, phases.check_model, 'libvirt')


class TestImageCreateAllowed(testtools.TestCase):

    def test_image_create_allowed_vm_states(self):
        cases = (
            (None, None, True),
            (None, 'active', True),
            (None, 'stopped', True),
            (None, 'paused', True),
            (None, 'suspended', True),
            (None, 'error', False),
            (None, 'building', False),
            (None, 'shelved_offloaded', False),
            ('image_uploading', 'active', False),
            ('rebooting', 'active', False),
            ('image_snapshot', None, False),
        )
        for task_state, vm_state, expected in cases:
            self.assertEqual(
                expected,
                phases.image_create_allowed(task_state, vm_state),
                (task_state, vm_state))


class TestHasPassed(testtools.TestCase):

    def test_task_state_has_passed(self):
        cases = (
            ('image_uploading', 'image_snapshot', True),
            ('image_pending_upload', 'image_snapshot', True),
            ('image_snapshot', 'image_snapshot_pending', True),
            ('image_backup', 'image_snapshot_pending', True),
            ('image_uploading', 'image_backup', True),
            ('image_snapshot', 'image_snapshot', False),
            ('image_snapshot', 'image_uploading', False),
            ('image_backup', 'image_snapshot', False),
            ('shelving_offloading', 'shelving', True),
            ('shelving_image_uploading', 'image_snapshot', False),
            ('image_uploading', 'shelving', False),
            (None, 'image_snapshot', False),
            ('image_uploading', None, False),
            ('rebooting', 'image_snapshot', False),
        )
        for current, target, expected in cases:
            self.assertEqual(expected, phases.has_passed(current, target),
                             (current, target))

    def test_phase_index(self):
        self.assertEqual(0, phases.phase_index('snapshot'))
        self.assertEqual(3, phases.phase_index('offload'))
        self.assertIsNone(phases.phase_index('idle'))
        self.assertIsNone(phases.phase_index('other'))
