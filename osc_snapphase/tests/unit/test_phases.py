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

    # (task state, phase, disk_writes_safe, operation, step)
    TABLE = (
        ('image_snapshot_pending', 'disk-capture', False, 'snapshot', 0),
        ('image_snapshot', 'disk-capture', False, 'snapshot', 1),
        ('image_backup', 'disk-capture', False, 'backup', 1),
        ('image_pending_upload', 'packaging', True, 'snapshot', 2),
        ('image_uploading', 'upload', True, 'snapshot', 3),
        ('shelving', 'disk-capture', False, 'shelve', 1),
        ('shelving_image_pending_upload', 'packaging', True, 'shelve', 2),
        ('shelving_image_uploading', 'upload', True, 'shelve', 3),
        ('shelving_offloading', 'offload', True, 'shelve', 4),
    )

    def test_task_state_describe_table(self):
        for name, phase, safe, operation, step in self.TABLE:
            entry = phases.describe(name)
            self.assertEqual(
                (name, phase, safe, operation, step),
                (entry.name, entry.phase, entry.disk_writes_safe,
                 entry.operation, entry.step))
            self.assertTrue(entry.description)
            self.assertEqual(phase, phases.phase_of(name))
            self.assertEqual(safe, phases.disk_writes_safe(name))
            self.assertEqual(step, phases.step_of(name))
            self.assertFalse(phases.image_create_allowed(name, 'active'))

    def test_task_state_table_complete(self):
        self.assertEqual(sorted(row[0] for row in self.TABLE),
                         sorted(phases.TASK_STATES))

    def test_task_state_sets(self):
        self.assertEqual(
            {'image_snapshot_pending', 'image_snapshot', 'image_backup',
             'shelving'},
            phases.DISK_CAPTURE_STATES)
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
            self.assertTrue(entry.disk_writes_safe)
            self.assertTrue(phases.image_create_allowed(value))

    def test_task_state_describe_unknown(self):
        for value in ('rebooting', 'resize_migrating',
                      'quantum_entangling'):
            entry = phases.describe(value)
            self.assertEqual(
                (value, 'other', None, None, True),
                (entry.name, entry.phase, entry.operation, entry.step,
                 entry.disk_writes_safe))
            self.assertEqual(
                'Server busy with task %s (not an image operation)' % value,
                entry.description)
            self.assertFalse(phases.image_create_allowed(value))

    def test_task_state_describe_non_string(self):
        for value in (42, 3.5, ['image_snapshot'], {'a': 1}, object()):
            entry = phases.describe(value)
            self.assertEqual('other', entry.phase)
            self.assertEqual(str(value), entry.name)
            self.assertTrue(entry.disk_writes_safe)
            self.assertFalse(phases.image_create_allowed(value))
            self.assertFalse(phases.has_passed(value, 'image_snapshot'))


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
        self.assertEqual(0, phases.phase_index('disk-capture'))
        self.assertEqual(3, phases.phase_index('offload'))
        self.assertIsNone(phases.phase_index('idle'))
        self.assertIsNone(phases.phase_index('other'))
