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


"""Tests of osc_snapphase.conditions."""

import testtools

from osc_snapphase import conditions
from osc_snapphase import records
from osc_snapphase.tests.unit import fakes


def make_track(task_state=None, vm_state='active', status='ACTIVE',
               image_status=None, snapshots=None, model='image-status',
               **attributes):
    """A judged Track; ``attributes`` override the Track's own values."""
    server_id = fakes.new_id()
    track = records.Track(server_id, 'vm1', capture_model=model)
    track.state = fakes.server_state(server_id, task_state, vm_state,
                                     status)
    for name, value in attributes.items():
        # op_active, volume_backed...: the fields of its Operation, named
        # as in phases.CaptureFacts.
        field = name[3:] if name.startswith('op_') else name
        target = track.op if hasattr(track.op, field) else track
        if not hasattr(target, field):
            raise TypeError('a Track has no attribute %s' % name)
        setattr(target, field, value)
    if image_status is not None:
        track.op.image_id = 'img'
        track.op.image_status = image_status
    if snapshots is not None:
        track.op.snapshot_ids = tuple(sorted(snapshots))
        track.op.snapshots = {
            sid: records.SnapshotState(sid, 'vol', status)
            for sid, status in snapshots.items()}
    track.judge()
    return track


IDLE = dict()
SNAPSHOT = dict(task_state='image_snapshot', op_active=True, op_max_step=1,
                image_status='queued')
# Saw image_snapshot, then image_uploading (image_pending_upload skipped),
# the image saving: the copy is over.
UPLOADING = dict(task_state='image_uploading', op_active=True,
                 op_max_step=3, image_status='saving')
# libvirt's bounce, or an RBD direct snapshot: uploading, image queued.
UPLOADING_QUEUED = dict(UPLOADING, image_status='queued')
SUCCEEDED = dict(op_succeeded=True)
# Task state cleared, image not active yet.
SETTLING = dict(op_active=True, op_max_step=3)
DELETED = dict(exists=False, status='DELETED', vm_state='deleted')


class TestParseUntil(testtools.TestCase):

    def holds(self, text, **track):
        return conditions.parse_until(text).holds(make_track(**track))

    def test_until_parse_none(self):
        self.assertIsNone(conditions.parse_until(None))

    def test_until_parse_idle(self):
        condition = conditions.parse_until(' idle ')
        self.assertEqual('idle', str(condition))
        self.assertTrue(condition.holds(make_track(**IDLE)))
        self.assertTrue(condition.holds(make_track(**SUCCEEDED)))
        self.assertFalse(condition.holds(make_track(**SNAPSHOT)))
        self.assertFalse(condition.holds(make_track(**SETTLING)))
        self.assertFalse(condition.holds(make_track(**DELETED)))
        self.assertFalse(condition.holds(make_track(task_state='rebooting')))

    def test_until_parse_disk_safe(self):
        condition = conditions.parse_until('disk-safe')
        self.assertTrue(condition.holds(make_track(**IDLE)))
        self.assertTrue(condition.holds(make_track(**UPLOADING)))
        self.assertTrue(condition.holds(make_track(**SUCCEEDED)))
        self.assertTrue(condition.holds(make_track(task_state='rebooting')))
        self.assertFalse(condition.holds(make_track(**UPLOADING_QUEUED)))
        for busy in ('image_snapshot_pending', 'image_snapshot',
                     'image_backup', 'shelving', 'image_pending_upload',
                     'image_uploading'):
            self.assertFalse(condition.holds(make_track(
                task_state=busy, op_active=True, image_status='queued')))
            # Under the xenserver model, by the task state.
            self.assertEqual(
                busy in ('image_pending_upload', 'image_uploading'),
                condition.holds(make_track(
                    task_state=busy, op_active=True, image_status='queued',
                    model='xenserver')), busy)
        self.assertFalse(condition.holds(make_track(**DELETED)))

    def test_until_parse_deleted(self):
        condition = conditions.parse_until('deleted')
        self.assertTrue(condition.accepts_deleted)
        self.assertTrue(condition.holds(make_track(**DELETED)))
        self.assertFalse(condition.holds(make_track(**IDLE)))

    def test_until_parse_task_state(self):
        self.assertTrue(self.holds('task-state=image_snapshot', **SNAPSHOT))
        # Judged by phase order: passed, or skipped, or the end.
        self.assertTrue(self.holds('task-state=image_snapshot', **UPLOADING))
        self.assertTrue(self.holds('task-state=image_pending_upload',
                                   **UPLOADING))
        self.assertTrue(self.holds('task-state=image_uploading',
                                   **SUCCEEDED))
        self.assertFalse(self.holds('task-state=image_uploading',
                                    **SNAPSHOT))
        self.assertFalse(self.holds('task-state=image_uploading', **IDLE))
        self.assertFalse(self.holds('task-state=image_snapshot', **DELETED))
        # A shelve does not pass the states of a snapshot.
        self.assertFalse(self.holds(
            'task-state=image_snapshot', task_state='shelving_offloading',
            op_active=True, op_max_step=4, op_shelve=True))
        self.assertTrue(self.holds(
            'task-state=shelving', task_state='shelving_offloading',
            op_active=True, op_max_step=4, op_shelve=True))
        # Unknown task states only match exactly.
        self.assertTrue(self.holds('task-state=rebooting',
                                   task_state='rebooting'))
        self.assertFalse(self.holds('task-state=rebooting', **SUCCEEDED))

    def test_until_parse_task_state_null_words(self):
        for text in ('task-state=none', 'task-state=null',
                     'task-state=None'):
            self.assertTrue(self.holds(text, **IDLE))
            self.assertFalse(self.holds(text, **SNAPSHOT))

    def test_until_parse_vm_state(self):
        self.assertTrue(self.holds('vm-state=Stopped', vm_state='stopped'))
        self.assertFalse(self.holds('vm-state=stopped', vm_state='active'))
        self.assertFalse(conditions.parse_until(
            'vm-state=active').accepts_error)
        self.assertTrue(conditions.parse_until(
            'vm-state=error').accepts_error)

    def test_until_parse_status(self):
        self.assertTrue(self.holds('status=shutoff', status='SHUTOFF'))
        self.assertFalse(self.holds('status=SHUTOFF', status='ACTIVE'))
        self.assertTrue(conditions.parse_until('status=error').accepts_error)
        self.assertTrue(
            conditions.parse_until('status=DELETED').accepts_deleted)
        self.assertFalse(
            conditions.parse_until('status=ACTIVE').accepts_deleted)

    def test_until_parse_invalid(self):
        cases = (
            ('unknown',
             "unknown condition 'unknown'; use one of: idle, disk-safe, "
             "deleted, phase-over=<phase>, task-state=<value>, "
             "vm-state=<value>, "
             "status=<value>"),
            ('foo=bar',
             "unknown condition 'foo=bar'; use one of: idle, disk-safe, "
             "deleted, phase-over=<phase>, task-state=<value>, "
             "vm-state=<value>, "
             "status=<value>"),
            ('task-state=',
             'task-state needs a value, for example '
             'task-state=image_uploading (use "idle" for no task)'),
            ('task-state= ',
             'task-state needs a value, for example '
             'task-state=image_uploading (use "idle" for no task)'),
            ('vm-state=',
             'vm-state needs a value, for example vm-state=active'),
            ('status=',
             'status needs a value, for example status=ACTIVE'),
        )
        for text, message in cases:
            exc = self.assertRaises(conditions.ConditionError,
                                    conditions.parse_until, text)
            self.assertEqual(message, str(exc))

    def test_until_parse_task_state_validated(self):
        # A typo is refused, naming the likely one and every Nova state.
        exc = self.assertRaises(conditions.ConditionError,
                                conditions.parse_until,
                                'task-state=image_uploadng')
        message = str(exc)
        self.assertTrue(message.startswith(
            "unknown task state 'image_uploadng' (did you mean "
            "image_uploading"), message)
        for state in ('rebooting', 'powering-off', 'unshelving',
                      'image_backup', 'resize_migrating'):
            self.assertIn(state, message)
        self.assertIn('task-state=+<state>', message)
        self.assertRaises(conditions.ConditionError, conditions.parse_until,
                          'task-state=+')

    def test_until_parse_task_state_any_nova_state(self):
        for state in ('rebooting', 'powering-off', 'soft-deleting',
                      'unshelving', 'resize_finish', 'spawning'):
            self.assertTrue(self.holds('task-state=%s' % state,
                                       task_state=state), state)

    def test_until_parse_task_state_case_insensitive(self):
        self.assertTrue(self.holds('task-state=IMAGE_UPLOADING',
                                   **UPLOADING))
        self.assertTrue(self.holds('task-state=Image_Snapshot',
                                   **SNAPSHOT))
        self.assertTrue(self.holds('task-state=Rebooting',
                                   task_state='rebooting'))

    def test_until_parse_task_state_newer_nova(self):
        condition = conditions.parse_until('task-state=+Image_Quiescing')
        self.assertEqual('task-state=+Image_Quiescing', str(condition))
        self.assertTrue(condition.holds(make_track(
            task_state='image_quiescing')))
        self.assertFalse(condition.holds(make_track(**SNAPSHOT)))

    def test_until_parse_phase_over(self):
        for phase in conditions.WAIT_PHASES:
            condition = conditions.parse_until('phase-over=%s' % phase)
            self.assertEqual('phase-over=%s' % phase, str(condition))
            # The predicate of --wait-phase.
            expected = conditions.phase_over(phase)
            for track in (SNAPSHOT, UPLOADING, UPLOADING_QUEUED,
                          SUCCEEDED, SETTLING, IDLE):
                self.assertEqual(expected.holds(make_track(**track)),
                                 condition.holds(make_track(**track)))
        self.assertRaises(conditions.ConditionError, conditions.parse_until,
                          'phase-over=')
        self.assertRaises(conditions.ConditionError, conditions.parse_until,
                          'phase-over=offload')

    def test_until_parse_phase_over_old_names(self):
        warnings = []
        for old, new in (('disk-capture', 'snapshot'),
                         ('packaging', 'pending-upload')):
            condition = conditions.parse_until('phase-over=' + old,
                                               warn=warnings.append)
            self.assertEqual('phase-over=' + new, str(condition))
        self.assertEqual(
            ["the phase name 'disk-capture' is deprecated and will be "
             "refused in the next release; use 'snapshot' (the phases are "
             "named after Nova's task states)",
             "the phase name 'packaging' is deprecated and will be refused "
             "in the next release; use 'pending-upload' (the phases are "
             "named after Nova's task states)"], warnings)
        # The new names warn of nothing.
        conditions.parse_until('phase-over=snapshot', warn=warnings.append)
        self.assertEqual(2, len(warnings))

    def test_until_phase_over_busy(self):
        busy = conditions.parse_until('phase-over=snapshot').busy
        self.assertTrue(busy(make_track(task_state='rebooting')))
        for track in (IDLE, SNAPSHOT, UPLOADING, SUCCEEDED, SETTLING,
                      DELETED):
            self.assertFalse(busy(make_track(**track)), track)
        # Only phase-over can be kept from its end by another task.
        for text in ('idle', 'disk-safe', 'task-state=image_uploading'):
            self.assertIsNone(conditions.parse_until(text).busy)

    def test_until_all_of(self):
        condition = conditions.all_of([
            conditions.parse_until('disk-safe'),
            conditions.parse_until('vm-state=stopped')])
        self.assertEqual('disk-safe and vm-state=stopped', str(condition))
        self.assertEqual(2, len(condition.parts))
        self.assertTrue(condition.holds(make_track(vm_state='stopped')))
        self.assertFalse(condition.holds(make_track(vm_state='active')))
        self.assertFalse(condition.holds(make_track(
            vm_state='stopped', **UPLOADING_QUEUED)))
        self.assertIsNone(condition.busy)
        with_phase = conditions.all_of([
            conditions.parse_until('idle'),
            conditions.parse_until('phase-over=upload')])
        self.assertTrue(with_phase.busy(make_track(task_state='rebooting')))
        self.assertIsNone(conditions.all_of([]))
        one = conditions.parse_until('idle')
        self.assertIs(one, conditions.all_of([one]))

    def test_until_all_of_deleted_refused(self):
        for text in ('deleted', 'status=DELETED'):
            exc = self.assertRaises(
                conditions.ConditionError, conditions.all_of,
                [conditions.parse_until('idle'),
                 conditions.parse_until(text)])
            self.assertEqual(
                '%s cannot be combined with other conditions: all must '
                'hold, and the others need the server to exist' % text,
                str(exc))


class TestPhaseOver(testtools.TestCase):

    def over(self, phase, **track):
        return conditions.phase_over(phase).holds(make_track(**track))

    def test_phase_over_snapshot(self):
        self.assertFalse(self.over('snapshot', **SNAPSHOT))
        self.assertFalse(self.over(
            'snapshot', task_state='image_snapshot_pending', op_active=True,
            op_max_step=0))
        self.assertFalse(self.over(
            'snapshot', task_state='image_pending_upload', op_active=True,
            op_max_step=2, image_status='queued'))
        self.assertFalse(self.over('snapshot', **UPLOADING_QUEUED))
        self.assertTrue(self.over('snapshot', **UPLOADING))
        self.assertTrue(self.over(
            'snapshot', task_state='image_pending_upload', op_active=True,
            op_max_step=2, image_status='queued', model='xenserver'))
        self.assertTrue(self.over('snapshot', **SUCCEEDED))
        self.assertFalse(self.over('snapshot', **DELETED))

    def test_phase_over_pending_upload(self):
        self.assertFalse(self.over('pending-upload', **SNAPSHOT))
        self.assertFalse(self.over(
            'pending-upload', task_state='image_pending_upload',
            op_active=True, op_max_step=2, model='xenserver'))
        # The second image_pending_upload of libvirt (after the bounce).
        self.assertFalse(self.over(
            'pending-upload', task_state='image_pending_upload',
            op_active=True, op_max_step=3, image_status='queued'))
        self.assertFalse(self.over('pending-upload', **UPLOADING_QUEUED))
        self.assertTrue(self.over('pending-upload', **UPLOADING))
        self.assertTrue(self.over('pending-upload', **SUCCEEDED))

    def test_phase_over_upload(self):
        self.assertFalse(self.over('upload', **SNAPSHOT))
        self.assertFalse(self.over('upload', **UPLOADING))
        self.assertFalse(self.over('upload', **SETTLING))
        self.assertTrue(self.over('upload', **SUCCEEDED))

    def test_phase_over_not_started(self):
        # Expected operation, nothing seen yet: no step reached.
        for phase in conditions.WAIT_PHASES:
            self.assertFalse(self.over(phase, op_active=True))
            self.assertFalse(self.over(phase, **IDLE))

    def test_phase_over_volume_backed(self):
        creating = dict(op_active=True, volume_backed=True,
                        image_status='active',
                        snapshots={'s1': 'available', 's2': 'creating'})
        for phase in conditions.WAIT_PHASES:
            self.assertFalse(self.over(phase, **creating))
        done = dict(creating, snapshots={'s1': 'available',
                                         's2': 'available'})
        self.assertTrue(self.over('snapshot', **done))
        self.assertTrue(self.over('pending-upload', **done))
        # Only the engine ends the operation (op_succeeded).
        self.assertFalse(self.over('upload', **done))

    def test_phase_over_name(self):
        self.assertEqual('phase-over=upload',
                         str(conditions.phase_over('upload')))

    def test_phase_over_invalid(self):
        exc = self.assertRaises(conditions.ConditionError,
                                conditions.phase_over, 'disk')
        self.assertEqual(
            "unknown phase 'disk'; use one of: snapshot, pending-upload, "
            "upload", str(exc))
